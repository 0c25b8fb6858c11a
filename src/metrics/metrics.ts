/**
 * The Prometheus series (SPEC §5). Core code emits events (src/lib/events.ts); this module subscribes
 * and keeps the counters, so no core code knows about metrics. One registry per daemon.
 */
import { Counter, Registry } from 'prom-client';

import type { TrigsyncEvents } from '../lib/events.js';

export class Metrics {
  readonly registry = new Registry();
  readonly conflicts: Counter<'target' | 'table'>;

  constructor(events: TrigsyncEvents) {
    this.conflicts = new Counter({
      name: 'trigsync_conflicts_total',
      help: "Changes that found the target's row not as the source had it, whatever the policy did",
      labelNames: ['target', 'table'],
      registers: [this.registry],
    });
    events.on('apply:conflict', ({ target, table }) => this.conflicts.inc({ target, table }));
  }

  /** The current value of a counter for these labels (0 when never counted): for status and tests. */
  async counterValue(counter: Counter<string>, labels: Record<string, string>): Promise<number> {
    const { values } = await counter.get();
    const match = values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
    return match?.value ?? 0;
  }
}
