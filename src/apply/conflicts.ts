/**
 * Conflicts: a change that finds the target's row not as the source had it. An insert whose key holds a
 * row of other content, an update or delete whose key is missing or whose row differs from the change's
 * old row. Found while deleting a run's keys (statements.ts deleteKeysChecking), at no extra round trip
 * unless a key that should be free holds a row; then resolved by the target's `conflict` policy in
 * chunk.ts: `apply` (the change wins), `skip` (the target's row stays), `park`.
 */
import type pg from 'pg';

import type { TrigsyncEvents } from '../lib/events.js';
import type { Logger } from '../lib/logger.js';
import type { LogChange } from '../log/window.js';
import { emptyImages, pushImage, type KeyRun, type RowsStep } from './batch.js';
import type { TablePlan } from './plan.js';
import { deleteKeysChecking, rowTexts } from './statements.js';

/** exists: a row where the change expects none; missing: no row where it expects one; differs. */
export type ConflictKind = 'exists' | 'missing' | 'differs';

export interface Conflict {
  table: TablePlan;
  /** The key as a JSON object text. */
  key: string;
  kind: ConflictKind;
  /** The key's first change in its run: the one that met the unexpected row. */
  first: LogChange;
  /** Every change of the key in its run: what `skip` leaves out. */
  ids: number[];
}

const operation: Record<LogChange['op'], string> = {
  I: 'insert',
  U: 'update',
  V: 'update',
  D: 'delete',
  T: 'truncate',
};

export function conflictOperation(conflict: Conflict): string {
  return operation[conflict.first.op];
}

export function describeConflict(conflict: Conflict): string {
  const found = {
    exists: 'found a row of other content under that key on the target',
    missing: 'found no row under that key on the target',
    differs: "found the target's row different from the source's old row",
  }[conflict.kind];
  return `conflict: ${conflictOperation(conflict)} of ${conflict.table.targetName} ${conflict.key} ${found}`;
}

/** Conflicts logged one by one per batch; the rest are counted in one line (and in the metrics). */
const conflictsLoggedPerBatch = 20;

/** Log each conflict (the first few of a batch; a count of the rest) and tell the metrics. */
export function reportConflicts(
  conflicts: readonly Conflict[],
  context: {
    target: string;
    resolution: 'applied' | 'skipped' | 'parked';
    events: TrigsyncEvents;
    log: Logger;
  },
): void {
  const { target, resolution, events, log } = context;
  conflicts.forEach((conflict, i) => {
    const event = {
      target,
      table: conflict.table.sourceName,
      key: conflict.key,
      kind: conflict.kind,
      operation: conflictOperation(conflict),
      changeId: conflict.first.id,
      resolution,
    };
    events.emit('apply:conflict', event);
    if (i < conflictsLoggedPerBatch) log.warn(event, describeConflict(conflict));
  });
  if (conflicts.length > conflictsLoggedPerBatch) {
    log.warn(
      { conflicts: conflicts.length, resolution },
      `${conflicts.length - conflictsLoggedPerBatch} more conflicts in this batch`,
    );
  }
}

function conflictOf(run: KeyRun, table: TablePlan, kind: ConflictKind): Conflict {
  return { table, key: run.key, kind, first: run.first, ids: run.ids };
}

/** Delete the run's keys; returns its conflicts, in change id order. */
export async function deleteFindingConflicts(client: pg.ClientBase, step: RowsStep): Promise<Conflict[]> {
  const mismatches = await deleteKeysChecking(client, step);
  if (mismatches.length === 0) return [];
  const { table } = step;
  const conflicts: Conflict[] = [];
  // A key that should be free held a row: no conflict when it is the very row the change brings (a
  // writer on each side inserted the same), which takes one more look, in the target's types.
  const occupied: { run: KeyRun; found: string }[] = [];
  for (const mismatch of mismatches) {
    const run = step.keys[mismatch.n - 1]!;
    if (mismatch.expected !== null) {
      conflicts.push(conflictOf(run, table, mismatch.found === null ? 'missing' : 'differs'));
    } else if (run.first.keep && (run.first.op === 'I' || run.first.op === 'U')) {
      occupied.push({ run, found: mismatch.found! });
    } else {
      conflicts.push(conflictOf(run, table, 'exists'));
    }
  }
  if (occupied.length > 0) {
    const images = emptyImages(table);
    for (const { run } of occupied) pushImage(images, table, run.first);
    const texts = await rowTexts(client, table, images);
    occupied.forEach(({ run, found }, i) => {
      if (texts[i] !== found) conflicts.push(conflictOf(run, table, 'exists'));
    });
  }
  return conflicts.sort((a, b) => a.first.id - b.first.id);
}
