/**
 * Applying changes to a target: one transaction holding the set-based steps and the position they
 * reach (exactly once). When a chunk fails with a data error, halves are applied and committed in turn
 * until the one change that fails stands alone: everything before it is applied, and it is named.
 */
import type pg from 'pg';

import type { ConflictMode } from '../config/types.js';
import { classifyError, ConflictError, sqlState, TrigsyncError } from '../failure/errors.js';
import { visibleIn, type Snapshot } from '../changelog/snapshot.js';
import type { LogChange, Position } from '../changelog/window.js';
import { sendPipelined, valuesOrFirstFailure } from '../db/pipeline.js';
import { buildSteps, type ApplyStep, type RowsStep } from './batch.js';
import { copyInto, stepCopyText, type RoundTrip } from './copy-in.js';
import {
  applyRowsStep,
  settleCascaded,
  describeConflict,
  rowsStepStatement,
  stepOutcome,
  type Conflict,
} from './conflicts.js';
import type { TablePlan } from './plan.js';
import {
  mismatchesFoundCode,
  reportMismatches,
  truncateStatements,
  type KeyMismatch,
  type MismatchReport,
  type Statement,
} from './statements.js';
import { savePositionStatement } from './applied-position.js';

/** Where a target's position is recorded: trigsync's schema, this source's origin, the target's name. */
export interface PositionKey {
  schema: string;
  origin: string;
  target: string;
}

/** The one change that a target refuses: an error it raised, or a conflict under the `park` policy. */
export class ChangeRefused extends TrigsyncError {
  constructor(
    readonly change: LogChange,
    override readonly cause: unknown,
    readonly conflict?: Conflict,
  ) {
    super(`change ${change.id} refused by the target`, 'data', { cause });
  }
}

/** What a target takes: its tables, the changes operators skipped for it, and its conflict policy. */
export interface TargetScope {
  tables: ReadonlyMap<number, TablePlan>;
  skipped: ReadonlySet<number>;
  conflict: ConflictMode;
  /** Per table copied by a sync, the copy's snapshot: the changes it sees are in the copy already. */
  floors: ReadonlyMap<number, Snapshot>;
  /** Per table the target no longer takes, what it still applies: the changes this snapshot sees. */
  ceilings: ReadonlyMap<number, Snapshot>;
  /** The link's round trip: insert steps of enough rows go by COPY on the bet of no conflict (copy-in.ts). */
  roundTrip: RoundTrip;
  /**
   * A chunk that more chunks of its window follow may commit without waiting for its flush: nothing
   * relies on it before a later commit that waits (src/worker/position-mirror.ts says when).
   */
  relaxed: boolean;
}

/** The changes of the chunk that the target still needs. */
function needed(scope: TargetScope, changes: readonly LogChange[]): readonly LogChange[] {
  if (scope.skipped.size === 0 && scope.floors.size === 0 && scope.ceilings.size === 0) return changes;
  return changes.filter((c) => {
    if (scope.skipped.has(c.id)) return false;
    const ceiling = scope.ceilings.get(c.relid);
    if (ceiling !== undefined && !visibleIn(c.txid, ceiling)) return false;
    const floor = scope.floors.get(c.relid);
    return floor === undefined || !visibleIn(c.txid, floor);
  });
}

/**
 * Steps made ahead of their chunk's turn (prepareChunk), by the very array of changes they are of and
 * the plan's tables they were made with (several targets share a chunk read once: src/apply/shared-log.ts).
 */
const prepared = new WeakMap<readonly LogChange[], WeakMap<ReadonlyMap<number, TablePlan>, ApplyStep[]>>();

/**
 * Make a chunk's steps now, while the chunk before it applies: the target's work and this process's
 * overlap, and applyChunk finds them ready. A chunk of which the scope leaves changes out is made at its
 * turn, as before.
 */
export function prepareChunk(scope: TargetScope, changes: readonly LogChange[]): void {
  if (needed(scope, changes) !== changes) return;
  let byTables = prepared.get(changes);
  if (byTables === undefined) {
    byTables = new WeakMap();
    prepared.set(changes, byTables);
  }
  let steps = byTables.get(scope.tables);
  if (steps === undefined) {
    steps = buildSteps(changes, scope.tables);
    byTables.set(scope.tables, steps);
  }
  for (const step of steps) if (step.kind !== 'truncate') stepCopyText(step, scope.roundTrip.copyFromRows);
}

function stepsOf(changes: readonly LogChange[], tables: ReadonlyMap<number, TablePlan>): ApplyStep[] {
  return prepared.get(changes)?.get(tables) ?? buildSteps(changes, tables);
}

/** Conflicts found under the `park` policy; the transaction was rolled back. */
class ConflictsFound extends Error {
  constructor(readonly conflicts: Conflict[]) {
    super(`${conflicts.length} conflict(s)`);
  }
}

/** An attempt at a chunk: committed, or rolled back on the conflicts of its first step that had any. */
interface Attempt {
  committed: boolean;
  conflicts: Conflict[];
}

/** What a transaction sends: a statement, with the step it writes (truncates write none), or a COPY. */
type Sent = { step?: RowsStep; statement: Statement } | { step: RowsStep; copy: string };

/**
 * A chunk's transaction up to its commit: begin, the statements of `steps`, each with the step it writes,
 * and the position they reach. Insert steps of `copyFromRows` rows or more go by COPY where they can.
 */
function transaction(
  steps: readonly ApplyStep[],
  how: MismatchReport,
  key: PositionKey,
  next: Position,
  copyFromRows = Infinity,
  relaxed = false,
): Sent[] {
  const sent: Sent[] = [{ statement: { text: 'begin' } }];
  // Inside a window (more chunks follow) the commit may not wait for the flush: a later commit that
  // waits makes it durable with the rest. A crash of the target that lost it leaves its record of the
  // position before it, where the log still serves it: the source's copy, by which the log is pruned,
  // is only ever of flushed positions.
  if (!commitWaits(relaxed, next)) sent.push({ statement: relaxedCommit });
  for (const step of steps) {
    if (step.kind === 'truncate') {
      for (const statement of truncateStatements(step.tables, step.partitions)) sent.push({ statement });
      continue;
    }
    const copy = stepCopyText(step, copyFromRows);
    if (copy !== undefined) {
      sent.push({ step, copy });
      continue;
    }
    const statement = rowsStepStatement(step, how);
    if (statement !== undefined) sent.push({ step, statement });
  }
  sent.push({ statement: savePositionStatement(key.schema, key.origin, key.target, next) });
  return sent;
}

/** Makes a chunk's commit not wait for its flush (commitWaits says when). */
export const relaxedCommit: Statement = { text: `set local synchronous_commit = off` };

/**
 * Whether a chunk's commit that reaches `next` waits for its flush: where it closes its window, or
 * where the scope is not `relaxed`.
 */
export function commitWaits(relaxed: boolean, next: Position): boolean {
  return !relaxed || next.to === undefined;
}

/** A COPY met a key that holds a row: the bet of no conflict is lost, as a guarded statement's would be. */
class CopyMetRow extends Error {}

/**
 * Send a transaction's statements pipelined, in runs between its COPYs (which a pipeline cannot hold);
 * returns the last statement's result, or throws the first failure. The first answer times the link.
 */
async function sendInRuns(
  client: pg.Client,
  sent: readonly Sent[],
  roundTrip: RoundTrip,
): Promise<pg.QueryResult | undefined> {
  let run: Statement[] = [];
  let last: pg.QueryResult | undefined;
  let timed = false;
  const flush = async (): Promise<void> => {
    const statements = run;
    run = [];
    if (statements.length === 0) return;
    const started = performance.now();
    const settled = await sendPipelined(client, () =>
      statements.map((s, i) =>
        i > 0 || timed
          ? client.query(s)
          : client.query(s).finally(() => roundTrip.observe(performance.now() - started)),
      ),
    );
    timed = true;
    last = valuesOrFirstFailure(settled).at(-1);
  };
  for (const item of sent) {
    if ('statement' in item) {
      run.push(item.statement);
      continue;
    }
    await flush();
    last = undefined;
    await copyInto(client, item.step.table, item.copy).catch((thrown: unknown) => {
      throw sqlState(thrown) === uniqueViolation ? new CopyMetRow('', { cause: thrown }) : thrown;
    });
  }
  await flush();
  return last;
}

const uniqueViolation = '23505';

/**
 * One attempt at a chunk in one transaction. First on the bet that it meets no conflict: begin, every
 * step, the position and the commit in one round trip, each step failing with mismatchesFoundCode if
 * any key is not as expected (which rolls the transaction back, its COMMIT then answering ROLLBACK).
 * When the bet is lost, the chunk is made again with its conflicts read (attemptReporting).
 */
async function attemptChunk(
  client: pg.Client,
  scope: TargetScope,
  changes: readonly LogChange[],
  key: PositionKey,
  next: Position,
): Promise<Attempt> {
  const steps = stepsOf(changes, scope.tables);
  const sent: Sent[] = [
    ...transaction(steps, { guarded: key.schema }, key, next, scope.roundTrip.copyFromRows, scope.relaxed),
    { statement: { text: 'commit' } },
  ];
  try {
    const last = await sendInRuns(client, sent, scope.roundTrip);
    // Every statement answered: the commit did too, unless the transaction was aborted meanwhile.
    if (last?.command === 'COMMIT') return { committed: true, conflicts: [] };
    throw new Error(`commit of a batch answered ${last?.command}`);
  } catch (thrown) {
    // The transaction is over by now, committed or rolled back: a rollback makes sure of it.
    await client.query('rollback').catch(() => undefined);
    if (!(thrown instanceof CopyMetRow) && sqlState(thrown) !== mismatchesFoundCode) throw thrown;
  }
  return attemptReporting(client, scope, steps, key, next);
}

/**
 * A chunk's attempt that reads its conflicts, its statements pipelined: begin, every step and the
 * position cost one round trip, the commit a second. Under `skip` and `park`, the first step with
 * conflicts rolls the transaction back and its conflicts are returned (committed: false). Under `apply`,
 * a conflict that needs a write of its own (an overwrite, a missing row) has the chunk made again step
 * by step (attemptInTurn), so that the write comes before the steps after it, as their foreign keys
 * may need.
 */
async function attemptReporting(
  client: pg.Client,
  scope: TargetScope,
  steps: readonly ApplyStep[],
  key: PositionKey,
  next: Position,
): Promise<Attempt> {
  const sent = transaction(steps, reportMismatches, key, next, Infinity, scope.relaxed).filter(
    (s) => 'statement' in s,
  );
  const settled = await sendPipelined(client, () => sent.map(({ statement }) => client.query(statement)));
  const conflicts: Conflict[] = [];
  let inTurn = false;
  try {
    const results = valuesOrFirstFailure(settled);
    for (const [i, { step }] of sent.entries()) {
      if (step === undefined) continue;
      const outcome = stepOutcome(step, results[i]!.rows as KeyMismatch[]);
      await settleCascaded(client, step, outcome);
      if (outcome.conflicts.length === 0) continue;
      if (scope.conflict !== 'apply') {
        await client.query('rollback');
        return { committed: false, conflicts: outcome.conflicts };
      }
      inTurn ||= outcome.overwrite.length > 0 || outcome.insert.length > 0;
      conflicts.push(...outcome.conflicts);
    }
    if (inTurn) {
      await client.query('rollback');
      return await attemptInTurn(client, steps, key, next);
    }
    await client.query('commit');
    return { committed: true, conflicts };
  } catch (thrown) {
    await client.query('rollback').catch(() => undefined);
    throw thrown;
  }
}

/** The chunk's steps one after another under `apply`, each conflict's own write right after its step. */
async function attemptInTurn(
  client: pg.Client,
  steps: readonly ApplyStep[],
  key: PositionKey,
  next: Position,
): Promise<Attempt> {
  const conflicts: Conflict[] = [];
  await client.query('begin');
  try {
    for (const step of steps) {
      if (step.kind === 'truncate') {
        for (const statement of truncateStatements(step.tables, step.partitions))
          await client.query(statement);
        continue;
      }
      conflicts.push(...(await applyRowsStep(client, step, 'apply')));
    }
    await client.query(savePositionStatement(key.schema, key.origin, key.target, next));
    await client.query('commit');
    return { committed: true, conflicts };
  } catch (thrown) {
    await client.query('rollback').catch(() => undefined);
    throw thrown;
  }
}

/**
 * Apply `changes` (less the skipped ones) and record `next` in one target transaction; returns the
 * conflicts it met and resolved. Under `skip`, each conflicting key's changes of its run are left out
 * and the chunk is tried again; under `park`, throws ConflictsFound.
 */
export async function applyChunk(
  client: pg.Client,
  scope: TargetScope,
  changes: readonly LogChange[],
  key: PositionKey,
  next: Position,
): Promise<Conflict[]> {
  const taken = needed(scope, changes);
  const leftOut = new Set<number>();
  const skipped: Conflict[] = [];
  for (;;) {
    const attempt = await attemptChunk(
      client,
      scope,
      leftOut.size === 0 ? taken : taken.filter((c) => !leftOut.has(c.id)),
      key,
      next,
    );
    if (attempt.committed) return [...skipped, ...attempt.conflicts];
    if (scope.conflict === 'park') throw new ConflictsFound(attempt.conflicts);
    // Every attempt leaves out more changes, so this ends.
    for (const conflict of attempt.conflicts) for (const id of conflict.ids) leftOut.add(id);
    skipped.push(...attempt.conflicts);
  }
}

/**
 * Apply `changes` (in id order, all within the window of `position`) and record `next` (the window
 * closed, for its last chunk), halving on data errors. Each part that applies is committed with its
 * position, reported through `applied` with the conflicts it resolved. Throws ChangeRefused for the
 * first change that fails alone or conflicts under `park` (everything before it applied), or the error
 * itself when it is not a data error.
 */
export async function applyFindingCulprit(
  client: pg.Client,
  scope: TargetScope,
  changes: readonly LogChange[],
  key: PositionKey,
  position: Position,
  applied: (next: Position, part: readonly LogChange[], conflicts: Conflict[]) => Promise<void>,
  next: Position = { ...position, appliedId: changes.at(-1)!.id },
): Promise<void> {
  let conflicts: Conflict[];
  try {
    conflicts = await applyChunk(client, scope, changes, key, next);
  } catch (thrown) {
    if (thrown instanceof ConflictsFound) {
      // The runs before the conflicting change are the same without it: they apply.
      const conflict = thrown.conflicts[0]!;
      const before = changes.filter((c) => c.id < conflict.first.id);
      if (before.length > 0) await applyFindingCulprit(client, scope, before, key, position, applied);
      throw new ChangeRefused(conflict.first, new ConflictError(describeConflict(conflict)), conflict);
    }
    if (classifyError(thrown) !== 'data') throw thrown;
    if (changes.length === 1) throw new ChangeRefused(changes[0]!, thrown);
    const half = Math.ceil(changes.length / 2);
    await applyFindingCulprit(client, scope, changes.slice(0, half), key, position, applied);
    const after = { ...position, appliedId: changes[half - 1]!.id };
    await applyFindingCulprit(client, scope, changes.slice(half), key, after, applied);
    return;
  }
  await applied(next, changes, conflicts);
}
