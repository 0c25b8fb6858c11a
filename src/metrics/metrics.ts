/**
 * The Prometheus series (SPEC §5). Core code emits events (src/lib/events.ts); this module subscribes
 * and keeps the series, so no core code knows about metrics. One registry per daemon.
 *
 * Labelled series start at 0 for every target, table and operation the config names, so that a scrape
 * shows every series from the start and `rate()` sees the first increment.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

import type { Config } from '../config/types.js';
import { formatQualifiedName } from '../config/identifiers.js';
import type { ErrorKind } from '../failure/errors.js';
import type { TrigsyncEvents } from '../lib/events.js';
import { CountedHistogram } from './counted-histogram.js';

const operations = ['insert', 'update', 'delete', 'truncate'] as const;
const errorKinds: readonly ErrorKind[] = ['connection', 'data', 'config'];

/** Seconds, from a 5 ms batch to a 10-minute stall. */
const latencyBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

type TargetLabel = 'target';

export class Metrics {
  readonly registry = new Registry();
  readonly backlog: Gauge<TargetLabel>;
  readonly lag: Gauge<TargetLabel>;
  readonly parked: Gauge<TargetLabel>;
  readonly paused: Gauge<TargetLabel>;
  readonly errorQueue: Gauge<TargetLabel>;
  readonly applied: Counter<'target' | 'table' | 'op'>;
  readonly errors: Counter<'target' | 'kind'>;
  readonly batchDuration: Histogram<TargetLabel>;
  readonly latency: CountedHistogram;
  readonly logRows: Gauge;
  readonly conflicts: Counter<'target' | 'table'>;
  readonly syncRows: Gauge<'target' | 'table'>;
  readonly leader: Gauge;
  readonly sampleAge: Gauge;
  private sampledAt = 0;

  constructor(events: TrigsyncEvents, config?: Config) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.backlog = new Gauge({
      name: 'trigsync_target_backlog_changes',
      help: 'Changes captured and not yet applied to the target (0 exactly when it has applied all)',
      labelNames: ['target'],
      registers,
    });
    this.lag = new Gauge({
      name: 'trigsync_target_lag_seconds',
      help: 'Age of the oldest change the target has not applied; 0 when it has applied all',
      labelNames: ['target'],
      registers,
    });
    this.parked = new Gauge({
      name: 'trigsync_target_parked',
      help: '1 while the target is parked behind its error queue or a failure, else 0',
      labelNames: ['target'],
      registers,
    });
    this.paused = new Gauge({
      name: 'trigsync_target_paused',
      help: '1 while an operator has paused the target (trigsync pause), else 0',
      labelNames: ['target'],
      registers,
    });
    this.errorQueue = new Gauge({
      name: 'trigsync_target_error_queue_changes',
      help: "Changes in the target's error queue",
      labelNames: ['target'],
      registers,
    });
    this.applied = new Counter({
      name: 'trigsync_changes_applied_total',
      help: 'Captured changes applied to the target, by source table and operation',
      labelNames: ['target', 'table', 'op'],
      registers,
    });
    this.errors = new Counter({
      name: 'trigsync_apply_errors_total',
      help: 'Failed attempts to apply to the target, by error kind (connection, data, config)',
      labelNames: ['target', 'kind'],
      registers,
    });
    this.batchDuration = new Histogram({
      name: 'trigsync_batch_duration_seconds',
      help: 'Time to apply one batch to the target, read to commit',
      labelNames: ['target'],
      buckets: latencyBuckets,
      registers,
    });
    this.latency = new CountedHistogram(
      'trigsync_replication_latency_seconds',
      "From a change's capture on the source to its commit on the target",
      latencyBuckets,
      this.registry,
    );
    this.logRows = new Gauge({
      name: 'trigsync_change_log_rows',
      help: "Rows in the source's change log (pruned once every target has applied them)",
      registers,
    });
    this.conflicts = new Counter({
      name: 'trigsync_conflicts_total',
      help: "Changes that found the target's row not as the source had it, whatever the policy did",
      labelNames: ['target', 'table'],
      registers,
    });
    this.syncRows = new Gauge({
      name: 'trigsync_sync_rows_copied',
      help: 'Rows copied so far by the running (or last) sync of a table to a target',
      labelNames: ['target', 'table'],
      registers,
    });
    this.leader = new Gauge({
      name: 'trigsync_leader',
      help: "1 while this daemon holds the leader's lock and applies, 0 while it stands by",
      registers,
    });
    this.sampleAge = new Gauge({
      name: 'trigsync_status_age_seconds',
      help: 'Age of the status the target gauges show (read from the source every second)',
      registers,
      collect: () => {
        if (this.sampledAt > 0) this.sampleAge.set((Date.now() - this.sampledAt) / 1000);
      },
    });
    if (config !== undefined) this.startAtZero(config);
    this.subscribe(events);
  }

  private startAtZero(config: Config): void {
    this.leader.set(0);
    for (const target of config.targets) {
      for (const kind of errorKinds) this.errors.inc({ target: target.name, kind }, 0);
      for (const table of target.tables) {
        const name = formatQualifiedName(table.source);
        this.conflicts.inc({ target: target.name, table: name }, 0);
        for (const op of operations) this.applied.inc({ target: target.name, table: name, op }, 0);
      }
      this.batchDuration.zero({ target: target.name });
      this.latency.zero(target.name);
    }
  }

  private subscribe(events: TrigsyncEvents): void {
    events.on('apply:conflict', ({ target, table }) => this.conflicts.inc({ target, table }));
    events.on('sync:progress', ({ target, table, rows }) => this.syncRows.set({ target, table }, rows));
    events.on('target:error', ({ target, kind }) => this.errors.inc({ target, kind }));
    events.on('leader:changed', ({ leader }) => this.leader.set(leader ? 1 : 0));
    events.on('batch:applied', ({ target, durationMs, counts, latencies }) => {
      this.batchDuration.observe({ target }, durationMs / 1000);
      for (const { seconds, changes } of latencies) this.latency.observe(target, seconds, changes);
      for (const c of counts) {
        for (const op of operations) if (c[op] > 0) this.applied.inc({ target, table: c.table, op }, c[op]);
      }
    });
    events.on('status:sampled', ({ status, at }) => {
      this.sampledAt = at;
      this.logRows.set(status.log.rows);
      for (const t of status.targets) {
        this.backlog.set({ target: t.name }, t.backlog);
        this.lag.set({ target: t.name }, t.lagSeconds);
        this.parked.set({ target: t.name }, t.state === 'parked' ? 1 : 0);
        this.paused.set({ target: t.name }, t.pausedSince === null ? 0 : 1);
        this.errorQueue.set({ target: t.name }, t.errorQueue);
      }
    });
  }

  /** The current value of a counter for these labels (0 when never counted): for status and tests. */
  async counterValue(counter: Counter<string>, labels: Record<string, string>): Promise<number> {
    const { values } = await counter.get();
    const match = values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
    return match?.value ?? 0;
  }
}
