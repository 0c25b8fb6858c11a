/** What a committed batch tells the metrics: changes per table and operation, and their latencies. */
import type { TrigsyncEventMap } from '../lib/events.js';
import type { LogChange } from '../changelog/window.js';
import type { BulkRun } from '../changelog/bulk-window.js';
import type { TargetPlan } from './plan.js';

export type AppliedEvent = TrigsyncEventMap['batch:applied'][0];

export function appliedEvent(
  target: string,
  plan: TargetPlan,
  changes: readonly LogChange[],
  durationMs: number,
): AppliedEvent {
  const byTable = new Map<number, AppliedEvent['counts'][number]>();
  const now = Date.now();
  const latencies: AppliedEvent['latencies'] = [];
  let last: AppliedEvent['latencies'][number] | undefined;
  let lastMs = NaN;
  for (const change of changes) {
    const table = plan.tables.get(change.relid);
    if (table === undefined) continue;
    let counts = byTable.get(change.relid);
    if (counts === undefined) {
      counts = { table: table.sourceName, insert: 0, update: 0, delete: 0, truncate: 0 };
      byTable.set(change.relid, counts);
    }
    if (change.op === 'I') counts.insert++;
    else if (change.op === 'U') counts.update++;
    else if (change.op === 'D') counts.delete++;
    else if (change.op === 'T' || change.op === 'P') counts.truncate++;
    // An update is two changes (old image V, new image U): one latency.
    if (change.op === 'V') continue;
    if (last !== undefined && change.capturedMs === lastMs) {
      last.changes++;
    } else {
      lastMs = change.capturedMs;
      last = { seconds: (now - lastMs) / 1000, changes: 1 };
      latencies.push(last);
    }
  }
  return {
    target,
    changes: changes.length,
    durationMs,
    counts: [...byTable.values()],
    latencies,
    copiedThrough: 0,
  };
}

/** What a run of inserts copied through tells the metrics (src/apply/copy-through.ts). */
export function runAppliedEvent(
  target: string,
  plan: TargetPlan,
  run: BulkRun,
  durationMs: number,
): AppliedEvent {
  const now = Date.now();
  const latencies = run.captured.map(({ ms, changes }) => ({ seconds: (now - ms) / 1000, changes }));
  return {
    target,
    changes: run.changes,
    durationMs,
    counts: run.tables.map((t) => ({
      table: plan.tables.get(t.relid)?.sourceName ?? String(t.relid),
      insert: t.changes,
      update: 0,
      delete: 0,
      truncate: 0,
    })),
    latencies,
    copiedThrough: run.changes,
  };
}
