/**
 * Applying changes to a target: one transaction holding the set-based steps and the position they
 * reach (exactly once). When a chunk fails with a data error, halves are applied and committed in turn
 * until the one change that fails stands alone: everything before it is applied, and it is named.
 */
import type pg from 'pg';

import { classifyError } from '../failure/errors.js';
import type { LogChange, Position } from '../log/window.js';
import { buildSteps } from './batch.js';
import type { TablePlan } from './plan.js';
import { deleteKeys, insertRows, saveAppliedPosition, truncateTable } from './statements.js';

/** Where a target's position is recorded: trigsync's schema, this source's origin, the target's name. */
export interface PositionKey {
  schema: string;
  origin: string;
  target: string;
}

/** The one change that a target refuses. */
export class ChangeRefused extends Error {
  constructor(
    readonly change: LogChange,
    override readonly cause: unknown,
  ) {
    super(`change ${change.id} refused by the target`, { cause });
  }
}

/** What a target takes: its tables, and the changes operators skipped for it. */
export interface TargetScope {
  tables: ReadonlyMap<number, TablePlan>;
  skipped: ReadonlySet<number>;
}

/** Apply `changes` (less the skipped ones) and record `next` in one target transaction. */
export async function applyChunk(
  client: pg.ClientBase,
  scope: TargetScope,
  changes: readonly LogChange[],
  key: PositionKey,
  next: Position,
): Promise<void> {
  const taken = scope.skipped.size === 0 ? changes : changes.filter((c) => !scope.skipped.has(c.id));
  const steps = buildSteps(taken, scope.tables);
  await client.query('begin');
  try {
    for (const step of steps) {
      if (step.kind === 'truncate') {
        await truncateTable(client, step.table);
      } else {
        await deleteKeys(client, step.table, step.deleteKeys);
        await insertRows(client, step.table, step.insertRows, step.insertJson);
      }
    }
    await saveAppliedPosition(client, key.schema, key.origin, key.target, next);
    await client.query('commit');
  } catch (thrown) {
    await client.query('rollback').catch(() => undefined);
    throw thrown;
  }
}

/**
 * Apply `changes` (in id order, all within the window of `position`) and record `next` (the window
 * closed, for its last chunk), halving on data errors. Each part that applies is committed with its
 * position, reported through `applied`. Throws ChangeRefused
 * for the first change that fails alone, or the error itself when it is not a data error.
 */
export async function applyFindingCulprit(
  client: pg.ClientBase,
  scope: TargetScope,
  changes: readonly LogChange[],
  key: PositionKey,
  position: Position,
  applied: (next: Position, part: readonly LogChange[]) => Promise<void>,
  next: Position = { ...position, appliedId: changes.at(-1)!.id },
): Promise<void> {
  try {
    await applyChunk(client, scope, changes, key, next);
  } catch (thrown) {
    if (classifyError(thrown) !== 'data') throw thrown;
    if (changes.length === 1) throw new ChangeRefused(changes[0]!, thrown);
    const half = Math.ceil(changes.length / 2);
    await applyFindingCulprit(client, scope, changes.slice(0, half), key, position, applied);
    const after = { ...position, appliedId: changes[half - 1]!.id };
    await applyFindingCulprit(client, scope, changes.slice(half), key, after, applied);
    return;
  }
  await applied(next, changes);
}
