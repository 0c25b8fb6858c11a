/**
 * Turn a chunk of changes into set-based steps. Consecutive changes of one table form a run; in a run
 * each key keeps only its last state, all touched keys are deleted first, then the rows whose last state
 * is present (and pass the row filter) are inserted. A TRUNCATE is a barrier applied in its place.
 */
import type { LogChange } from '../log/window.js';

export interface RowsStep {
  kind: 'rows';
  relid: number;
  /** Key objects as JSON texts, one per touched key. */
  deleteKeys: string[];
  /** Row images as JSON texts, one per key whose last state is present. */
  insertRows: string[];
  /** Counts by operation, for metrics: each captured change, before collapsing. */
  counts: { insert: number; update: number; delete: number };
  /** The capture time of the run's first change, for latency. */
  firstCapturedAt: Date;
}

export interface TruncateStep {
  kind: 'truncate';
  relid: number;
}

export type ApplyStep = RowsStep | TruncateStep;

export function buildSteps(changes: readonly LogChange[], takes: (relid: number) => boolean): ApplyStep[] {
  const steps: ApplyStep[] = [];
  let run: { relid: number; last: Map<string, LogChange>; step: RowsStep } | undefined;

  const flush = (): void => {
    if (run === undefined) return;
    for (const [key, change] of run.last) {
      run.step.deleteKeys.push(key);
      if ((change.op === 'I' || change.op === 'U') && change.keep && change.row !== null) {
        run.step.insertRows.push(change.row);
      }
    }
    steps.push(run.step);
    run = undefined;
  };

  for (const change of changes) {
    if (!takes(change.relid)) continue;
    if (change.op === 'T') {
      flush();
      steps.push({ kind: 'truncate', relid: change.relid });
      continue;
    }
    if (run !== undefined && run.relid !== change.relid) flush();
    run ??= {
      relid: change.relid,
      last: new Map(),
      step: {
        kind: 'rows',
        relid: change.relid,
        deleteKeys: [],
        insertRows: [],
        counts: { insert: 0, update: 0, delete: 0 },
        firstCapturedAt: change.capturedAt,
      },
    };
    if (change.key === null) continue;
    // Re-inserting moves the key to the end of the map; order does not matter within a run.
    run.last.delete(change.key);
    run.last.set(change.key, change);
    if (change.op === 'I') run.step.counts.insert++;
    else if (change.op === 'U') run.step.counts.update++;
    else if (change.op === 'D') run.step.counts.delete++;
  }
  flush();
  return steps;
}
