/**
 * Conflicts: a change that finds the target's row not as the source had it. An insert whose key holds a
 * row of other content, an update or delete whose key is missing or whose row differs from the change's
 * old row. Found by the statements that apply a step, in the same round trip, and resolved by the
 * target's `conflict` policy: `apply` (the change wins), `skip` (the target's row stays), `park`.
 */
import type pg from 'pg';

import type { TrigsyncEvents } from '../lib/events.js';
import type { Logger } from '../lib/logger.js';
import type { LogChange } from '../changelog/window.js';
import type { ConflictMode } from '../config/types.js';
import { imagesOf, type Image, type KeyChange, type RowsStep } from './batch.js';
import { deletedByCascade } from './cascade-deleted.js';
import type { TablePlan } from './plan.js';
import {
  deleteExpectedStatement,
  deleteStatement,
  insertRows,
  insertStatement,
  reportMismatches,
  runMismatches,
  settleMovedRows,
  updateRows,
  updateStatement,
  type KeyMismatch,
  type MismatchReport,
  type Statement,
} from './statements.js';

/** exists: a row where the change expects none; missing: no row where it expects one; differs. */
export type ConflictKind = 'exists' | 'missing' | 'differs';

export interface Conflict {
  table: TablePlan;
  /** The key as a JSON object text. */
  key: string;
  kind: ConflictKind;
  /** The key's first change in its step: the one that met the unexpected row. */
  first: LogChange;
  /** Every change of the key in its step: what `skip` leaves out. */
  ids: number[];
}

const operation: Record<LogChange['op'], string> = {
  I: 'insert',
  U: 'update',
  V: 'update',
  D: 'delete',
  T: 'truncate',
  P: 'truncate',
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

function conflictOf(change: KeyChange, table: TablePlan, kind: ConflictKind): Conflict {
  return { table, key: change.key, kind, first: change.first, ids: change.ids };
}

/** A step's conflicts, and what the `apply` policy then writes so that each change wins. */
export interface StepOutcome {
  conflicts: Conflict[];
  /** Keys whose row the change brings although the target did not hold what it expected. */
  overwrite: KeyChange[];
  /** Keys whose row should have been there: the change's row is inserted. */
  insert: KeyChange[];
}

/**
 * The one statement that applies a step (statements.ts), comparing each key's row as it writes, and
 * reporting the keys not as expected as `how` says.
 */
export function rowsStepStatement(
  step: RowsStep,
  how: MismatchReport = reportMismatches,
): Statement | undefined {
  const { table, keys } = step;
  if (step.kind === 'insert')
    return insertStatement(
      table,
      imagesOf(table, keys, (k) => k.after!),
      how,
    );
  if (step.kind === 'update' || step.kind === 'move') {
    const before = imagesOf(table, keys, (k) => k.before!);
    const after = imagesOf(table, keys, (k) => k.after!);
    return updateStatement(table, before, after, step.kind === 'move', how);
  }
  const expectedAt: number[] = [];
  keys.forEach((k, i) => k.before !== undefined && expectedAt.push(i + 1));
  const expected = imagesOf(
    table,
    keys.filter((k) => k.before !== undefined),
    (k) => k.before!,
  );
  if (expectedAt.length === keys.length) {
    // Keys changed before their delete in the same batch may find the row as those changes (some done by
    // the target's own cascade) left it.
    const changedFirst = keys.some((k) => k.lastBefore !== undefined);
    const last = changedFirst ? imagesOf(table, keys, (k) => k.lastBefore ?? k.before!) : undefined;
    return deleteExpectedStatement(table, expected, last, how);
  }
  const keyImages = imagesOf(table, keys, (k) => ({ row: k.key, nulls: null }));
  return deleteStatement(table, keyImages, expected, expectedAt, how);
}

/** What the keys a step's statement reported as not as expected mean, in change id order. */
export function stepOutcome(step: RowsStep, mismatches: readonly KeyMismatch[]): StepOutcome {
  const { table, keys } = step;
  const outcome: StepOutcome = { conflicts: [], overwrite: [], insert: [] };
  const at = (m: KeyMismatch): KeyChange => keys[m.n - 1]!;
  for (const m of mismatches) {
    if (step.kind === 'insert') {
      outcome.conflicts.push(conflictOf(at(m), table, 'exists'));
      outcome.overwrite.push(at(m));
    } else if (step.kind === 'update' || step.kind === 'move') {
      if (!m.found) {
        outcome.conflicts.push(conflictOf(at(m), table, 'missing'));
        outcome.insert.push(at(m));
      } else {
        outcome.conflicts.push(conflictOf(at(m), table, 'differs'));
      }
    } else {
      const kind = !m.expected ? 'exists' : !m.found ? 'missing' : 'differs';
      outcome.conflicts.push(conflictOf(at(m), table, kind));
    }
  }
  outcome.conflicts.sort((a, b) => a.first.id - b.first.id);
  return outcome;
}

/** Under `apply`, the change wins: a key that should have been free is overwritten, a missing row inserted. */
export async function applyOverConflicts(
  client: pg.ClientBase,
  table: TablePlan,
  outcome: StepOutcome,
): Promise<void> {
  const images = (list: KeyChange[]) => imagesOf(table, list, (k) => k.after!);
  const { overwrite, insert } = outcome;
  if (overwrite.length > 0) await updateRows(client, table, images(overwrite), images(overwrite), false);
  if (insert.length === 0) return;
  // An update whose old row was missing may find its new key taken: the target's own ON UPDATE CASCADE
  // moved the row there, without what else the source's change wrote (a last_update its trigger set). The
  // change wins there too.
  const taken = (await insertRows(client, table, images(insert))).map((m) => insert[m.n - 1]!);
  if (taken.length > 0) await updateRows(client, table, images(taken), images(taken), false);
}

/**
 * Apply one step on its own and return its conflicts, in change id order. Under `apply` the change wins
 * at once; under the other policies the caller rolls back a step that had conflicts.
 */
export async function applyRowsStep(
  client: pg.ClientBase,
  step: RowsStep,
  policy: ConflictMode,
): Promise<Conflict[]> {
  const outcome = stepOutcome(step, await runMismatches(client, rowsStepStatement(step)));
  await settleCascaded(client, step, outcome);
  if (policy === 'apply') await applyOverConflicts(client, step.table, outcome);
  return outcome.conflicts;
}

/**
 * What a target applying as origin did itself, told from conflicts. Its own ON UPDATE CASCADE moves a
 * child's key with its parent's, without what else the source's change wrote on the child (a
 * last_update its trigger set). A move of the child then finds its old key missing and the row under
 * its new key; where the batch made the move a delete of the old key and an insert (or a delete) of the
 * new one (KeyChange.arrivedFrom), the insert finds the row there already and the delete the old key
 * missing. A row found on its way from the old row to the new (onTheWay) becomes the change's
 * (settleMovedRows): no conflict, nor its old key's missing row. A row the same delete step took from a
 * key the batch moved it to, its old key being missing, is the cascade's too. And a delete that finds no
 * row whose parent the target no longer holds was its ON DELETE CASCADE's (deletedByCascade).
 */
export async function settleCascaded(
  client: pg.ClientBase,
  step: RowsStep,
  outcome: StepOutcome,
): Promise<void> {
  const { table } = step;
  // A step's keys differ in text; a moved row's old and new key share their first change.
  const byKey = new Map(step.keys.map((k) => [k.key, k]));
  const drop = (gone: ReadonlySet<KeyChange>): void => {
    if (gone.size === 0) return;
    outcome.conflicts = outcome.conflicts.filter((c) => !gone.has(byKey.get(c.key)!));
    outcome.insert = outcome.insert.filter((k) => !gone.has(k));
    outcome.overwrite = outcome.overwrite.filter((k) => !gone.has(k));
  };
  const completed = async (keys: KeyChange[], old: (k: KeyChange) => Image): Promise<Set<KeyChange>> => {
    if (keys.length === 0) return new Set();
    const before = imagesOf(table, keys, old);
    const after = imagesOf(table, keys, (k) => k.after!);
    return new Set((await settleMovedRows(client, table, before, after)).map((n) => keys[n - 1]!));
  };
  if (step.kind === 'move') {
    drop(await completed(outcome.insert, (k) => k.before!));
  } else if (step.kind === 'insert') {
    for (const k of step.keys) if (k.arrivedFrom !== undefined) k.settled = false;
    const settled = await completed(
      outcome.overwrite.filter((k) => k.arrivedFrom !== undefined),
      (k) => k.arrivedFrom!,
    );
    for (const k of settled) k.settled = true;
    drop(settled);
  } else if (step.kind === 'delete') {
    const kinds = new Map(outcome.conflicts.map((c) => [byKey.get(c.key)!, c.kind]));
    const gone = new Set<KeyChange>();
    for (const [k, kind] of kinds) {
      const to = k.movedTo;
      if (kind !== 'missing' || to === undefined) continue;
      if (to.settled === true) gone.add(k);
      else if (kinds.get(to) === 'exists') gone.add(k).add(to);
    }
    const missing = [...kinds].filter(
      ([k, kind]) => kind === 'missing' && !gone.has(k) && k.before !== undefined,
    );
    const cascaded = await deletedByCascade(
      client,
      table,
      imagesOf(
        table,
        missing.map(([k]) => k),
        (k) => k.before!,
      ),
    );
    for (const n of cascaded) gone.add(missing[n - 1]![0]);
    drop(gone);
  }
}
