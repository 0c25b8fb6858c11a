/**
 * The Prometheus series (SPEC §5). Core code emits events (src/lib/events.ts); this module subscribes
 * and keeps the counters, so no core code knows about metrics. One registry per daemon.
 */
import { Counter, Gauge, Registry } from 'prom-client';

import type { TrigsyncEvents } from '../lib/events.js';

export class Metrics {
  readonly registry = new Registry();
  readonly conflicts: Counter<'target' | 'table'>;
  readonly syncRows: Gauge<'target' | 'table'>;

  constructor(events: TrigsyncEvents) {
    this.conflicts = new Counter({
      name: 'trigsync_conflicts_total',
      help: "Changes that found the target's row not as the source had it, whatever the policy did",
      labelNames: ['target', 'table'],
      registers: [this.registry],
    });
    events.on('apply:conflict', ({ target, table }) => this.conflicts.inc({ target, table }));
    this.syncRows = new Gauge({
      name: 'trigsync_sync_rows_copied',
      help: 'Rows copied so far by the running (or last) sync of a table to a target',
      labelNames: ['target', 'table'],
      registers: [this.registry],
    });
    events.on('sync:progress', ({ target, table, rows }) => this.syncRows.set({ target, table }, rows));
  }

  /** The current value of a counter for these labels (0 when never counted): for status and tests. */
  async counterValue(counter: Counter<string>, labels: Record<string, string>): Promise<number> {
    const { values } = await counter.get();
    const match = values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
    return match?.value ?? 0;
  }
}
