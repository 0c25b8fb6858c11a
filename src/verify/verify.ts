/**
 * `verify`: compare each selected table of the source with each target, by hashing key ranges on both
 * servers (ranges.ts), in a source snapshot the target has caught up with (catch-up.ts), re-checking
 * the differing keys once the target has caught up again, so that changes in flight are not reported.
 */
import type pg from 'pg';

import type { TablePlan } from '../apply/plan.js';
import { describeTable } from '../capture/catalog.js';
import { configSecrets, redactSecrets } from '../config/redact.js';
import type { Config } from '../config/types.js';
import { pausePruning, resumePruning } from '../changelog/pruner.js';
import { loadTargetPaused } from '../changelog/targets.js';
import {
  beginSnapshot,
  endTransaction,
  measureCatchUp,
  waitForTarget,
  keysInFlight,
  type CatchUp,
  type SourceSnapshot,
} from './catch-up.js';
import {
  compareTable,
  defaultNarrowing,
  recheckKeys,
  type Difference,
  type DifferenceKind,
  type NarrowingOptions,
} from './ranges.js';
import { forEachTarget, keyTypesOf, type TargetWork } from './session.js';
import { keyId, tableSides, type Key, type TableSide } from './table-side.js';

export interface VerifyOptions {
  /** One target by name; all configured targets when absent. */
  target?: string | undefined;
  /** One source table, as written in the config; all of each target's tables when absent. */
  table?: string | undefined;
  /** How long to wait for a target to catch up with the source snapshot. */
  waitMs?: number;
  /** Differing keys listed per table; all are counted. */
  limit?: number;
  /** Rounds of re-checking differing keys, at most. */
  rechecks?: number;
  narrowing?: Partial<NarrowingOptions>;
}

export interface TableReport {
  /** The source table. */
  table: string;
  targetTable: string;
  equal: boolean;
  /**
   * Rows on the source under the mapping's row filter, in the source snapshot, and on the target, in the
   * target's snapshot (the first pass). The two snapshots are apart by the changes the target applied
   * in between: an equal table's counts differ by at most `inFlight`.
   */
  sourceRows: number;
  targetRows: number;
  /**
   * Keys that changes touched between the two snapshots (or that differed in the first pass and no
   * longer did when re-checked): compared by key, and again once the target had applied their changes.
   */
  inFlight: number;
  differences: { key: Record<string, string | number>; kind: DifferenceKind }[];
  differencesTotal: number;
  /** Rows each side hashed in the database, and rows (keys with a row hash) it sent to the client. */
  rowsHashed: { source: number; target: number };
  rowsFetched: { source: number; target: number };
  /** Duration of the first pass (re-checks come after every table's first pass). */
  seconds: number;
}

export interface TargetReport {
  name: string;
  state: 'compared';
  equal: boolean;
  /** The source snapshot compared against, and when it was taken (source clock). */
  comparedAt: { snapshot: string; at: string };
  /** False when trigsync does not replicate to this target from this source: compared as it is. */
  replicating: boolean;
  /** Whether the target had applied everything of the snapshot when compared (else see lagSeconds). */
  caughtUp: boolean;
  lagSeconds: number;
  /** Rounds of re-checking differing keys. */
  rechecks: number;
  /**
   * An operator paused the target (`trigsync pause`): it applies nothing until resumed, so it was not
   * waited for, and the changes waiting for it show as differences.
   */
  paused: boolean;
  tables: TableReport[];
}

/** A target verify could not reach, or that broke off: not compared, so not equal. */
export interface UnreachableTarget {
  name: string;
  state: 'unreachable';
  /** Why, as the connection said it (without the target's name, which `name` gives). */
  reason: string;
  equal: false;
  tables: TableReport[];
}

export interface VerifyReport {
  /** Every selected target was compared and found equal. */
  equal: boolean;
  targets: (TargetReport | UnreachableTarget)[];
}

/** A key as JSON: integers as numbers where exact, everything else as its text. */
export function keyObject(
  table: TablePlan,
  types: readonly string[],
  key: Key,
): Record<string, string | number> {
  const integer = /^(smallint|integer|bigint)$/;
  return Object.fromEntries(
    table.key.map((column, i) => {
      const text = key[i]!;
      const value = Number(text);
      return [column, integer.test(types[i]!) && Number.isSafeInteger(value) ? value : text];
    }),
  );
}

/** One table compared: its two sides (kept for re-checks) and the differences still standing. */
export interface Compared {
  table: TablePlan;
  sides: { source: TableSide; target: TableSide };
  keyTypes: string[];
  sourceRows: number;
  targetRows: number;
  /** Differences still standing, re-checked in every round. */
  differences: Difference[];
  /** Differences beyond those kept for re-checking: counted as found. */
  unchecked: number;
  /** keyId of the keys compared by key because changes touched them between the two snapshots. */
  byKey: Set<string>;
  /** keyId of the keys that differed in a pass and no longer did when re-checked. */
  settled: Set<string>;
  seconds: number;
}

/** Keys changed between the two sides' snapshots that are compared by key, at most. */
const maxKeysInFlight = 100_000;

/**
 * Compare every selected target. A target that cannot be reached, or whose connection breaks midway,
 * is reported unreachable and the others are still compared; the source's failure fails it all.
 */
export async function verify(config: Config, options: VerifyOptions = {}): Promise<VerifyReport> {
  const secrets = configSecrets(config);
  const targets = await forEachTarget(
    config,
    options,
    (session): Promise<TargetReport | UnreachableTarget> =>
      verifyTarget(session.source, session.client, session.work, options),
    (target, error): UnreachableTarget => ({
      name: target.name,
      state: 'unreachable',
      reason: redactSecrets(error.reason, secrets),
      equal: false,
      tables: [],
    }),
  );
  return { equal: targets.every((t) => t.equal), targets };
}

/**
 * Take the source snapshot S of a comparison with the pruner paused on the log session, so that every
 * change of S and after stays in the log until `openComparison` has read it (which resumes the pruner).
 */
async function beginComparison(source: pg.ClientBase, work: TargetWork): Promise<SourceSnapshot> {
  const follower = work.follower;
  if (follower === undefined) return beginSnapshot(source);
  await pausePruning(follower.changeLog, follower.schema);
  try {
    return await beginSnapshot(source);
  } catch (thrown) {
    await resumePruning(follower.changeLog, follower.schema).catch(() => undefined);
    throw thrown;
  }
}

/**
 * Open the target's comparing transaction, once the target has caught up with the source snapshot S
 * (or the wait ran out), and find each table's keys changed between the two: those are compared by
 * key. The change log is read in a snapshot L taken after the target's: every change applied at the
 * target's position was read by the daemon before that position committed, so committed before L;
 * every change of S committed before it too; and the pruner, paused since before S
 * (`beginComparison`), has removed none of them. L thus sees exactly the changes that can tell S and
 * the target apart. The caller ends the target's transaction.
 */
async function openComparison(
  snapshot: SourceSnapshot,
  target: pg.ClientBase,
  work: TargetWork,
  waitMs: number,
  tables: readonly TablePlan[],
): Promise<{ catchUp: CatchUp; inFlight: Map<TablePlan, Key[] | undefined> }> {
  const follower = work.follower;
  try {
    await waitForTarget(snapshot, target, follower, waitMs);
    // The target's own snapshot: every range of it is read at one position, the one measured here.
    await target.query('begin isolation level repeatable read read only');
    const catchUp = await measureCatchUp(snapshot, target, follower);
    const inFlight = new Map<TablePlan, Key[] | undefined>();
    if (follower === undefined || catchUp.position === undefined) {
      for (const table of tables) inFlight.set(table, []);
      return { catchUp, inFlight };
    }
    await beginSnapshot(follower.changeLog);
    try {
      for (const table of tables) {
        const keys = await keysInFlight(
          follower.changeLog,
          snapshot.snapshot,
          follower,
          catchUp.position,
          { relid: table.relid, relation: table.source, key: table.key, renamed: table.renamed },
          maxKeysInFlight,
        );
        inFlight.set(table, keys);
      }
    } finally {
      await endTransaction(follower.changeLog);
    }
    return { catchUp, inFlight };
  } finally {
    // A session that broke holds no lock: its error is the one to report.
    if (follower !== undefined)
      await resumePruning(follower.changeLog, follower.schema).catch(() => undefined);
  }
}

/** A target compared at a source snapshot, its differences re-checked. */
export interface Comparison {
  snapshot: SourceSnapshot;
  catchUp: CatchUp;
  compared: Compared[];
  /** Rounds of re-checking differing keys. */
  rechecks: number;
  /** The target is paused: not waited for (TargetReport.paused). */
  paused: boolean;
}

/**
 * Compare every table of `work` at one source snapshot the target has caught up with, then re-check
 * the differing keys until no change in flight can explain them (or the rounds run out). A paused
 * target is not waited for: it would not catch up.
 */
export async function compareTarget(
  source: pg.ClientBase,
  target: pg.ClientBase,
  work: TargetWork,
  options: VerifyOptions,
): Promise<Comparison> {
  const follower = work.follower;
  const paused = follower !== undefined && (await loadTargetPaused(source, follower.schema, work.name));
  const waitMs = paused ? 0 : (options.waitMs ?? 30_000);
  const narrowing = { ...defaultNarrowing, ...options.narrowing };
  const snapshot = await beginComparison(source, work);
  let catchUp: CatchUp | undefined;
  const compared: Compared[] = [];
  try {
    try {
      const opened = await openComparison(snapshot, target, work, waitMs, work.tables);
      catchUp = opened.catchUp;
      for (const table of work.tables) {
        const started = performance.now();
        const targetInfo = await describeTable(target, table.target);
        const sides = await tableSides({
          source: {
            client: source,
            relation: table.source,
            columns: work.columnsOf(table),
            filter: work.whereOf(table),
            only: table.inherits,
          },
          target: {
            client: target,
            relation: table.target,
            columns: targetInfo?.columns ?? [],
            only: !table.partitioned,
          },
          columns: table.columns,
          key: table.key,
        });
        // Keys changed in between are compared by key; when unknown (a TRUNCATE, too many), the
        // ranges find them and the re-check settles them.
        const byKey = opened.inFlight.get(table) ?? [];
        const result = await compareTable(sides.source, sides.target, narrowing, byKey);
        compared.push({
          table,
          sides,
          keyTypes: keyTypesOf(work, table),
          sourceRows: result.sourceRows,
          targetRows: result.targetRows,
          differences: result.differences,
          unchecked: result.differencesTotal - result.differences.length,
          byKey: new Set(byKey.map(keyId)),
          settled: new Set(),
          seconds: (performance.now() - started) / 1000,
        });
      }
    } finally {
      await endTransaction(target);
    }
  } finally {
    await endTransaction(source);
  }

  const rechecks =
    catchUp.replicating && options.rechecks !== 0
      ? await recheck(source, target, work, compared, catchUp.caughtUp ? waitMs : 0, options)
      : 0;
  return { snapshot, catchUp, compared, rechecks, paused };
}

async function verifyTarget(
  source: pg.ClientBase,
  target: pg.ClientBase,
  work: TargetWork,
  options: VerifyOptions,
): Promise<TargetReport> {
  const { snapshot, catchUp, compared, rechecks, paused } = await compareTarget(
    source,
    target,
    work,
    options,
  );
  const tables = compared.map((c): TableReport => {
    const total = c.differences.length + c.unchecked;
    return {
      table: c.table.sourceName,
      targetTable: c.table.targetName,
      equal: total === 0,
      sourceRows: c.sourceRows,
      targetRows: c.targetRows,
      inFlight: new Set([...c.byKey, ...c.settled]).size,
      differences: c.differences
        .slice(0, options.limit ?? 100)
        .map((d) => ({ key: keyObject(c.table, c.keyTypes, d.key), kind: d.kind })),
      differencesTotal: total,
      rowsHashed: { source: c.sides.source.counters.hashed, target: c.sides.target.counters.hashed },
      rowsFetched: { source: c.sides.source.counters.fetched, target: c.sides.target.counters.fetched },
      seconds: Math.round(c.seconds * 1000) / 1000,
    };
  });
  return {
    name: work.name,
    state: 'compared',
    equal: tables.every((t) => t.equal),
    comparedAt: { snapshot: snapshot.snapshot, at: snapshot.at.toISOString() },
    replicating: catchUp.replicating,
    caughtUp: catchUp.caughtUp,
    lagSeconds: Math.round(catchUp.lagSeconds * 1000) / 1000,
    rechecks,
    paused,
    tables,
  };
}

/**
 * Re-check the differing keys in a new source snapshot, once the target has caught up with it again:
 * a key the first pass found different may have been changed on the source after its snapshot, or
 * applied to the target after it. A key that still differs and that no change touched between the two
 * sides' snapshots of this round does differ; while some differing key was touched again, another
 * round follows, up to `options.rechecks` (3).
 */
async function recheck(
  source: pg.ClientBase,
  target: pg.ClientBase,
  work: TargetWork,
  compared: Compared[],
  waitMs: number,
  options: VerifyOptions,
): Promise<number> {
  const maxRounds = options.rechecks ?? 3;
  let rounds = 0;
  let unsettled = compared.some((c) => c.differences.length > 0);
  while (unsettled && rounds < maxRounds) {
    rounds++;
    unsettled = false;
    const differing = compared.filter((c) => c.differences.length > 0);
    const snapshot = await beginComparison(source, work);
    try {
      try {
        const { inFlight } = await openComparison(
          snapshot,
          target,
          work,
          waitMs,
          differing.map((c) => c.table),
        );
        for (const c of differing) {
          const keys = c.differences.map((d) => d.key);
          c.differences = await recheckKeys(c.sides.source, c.sides.target, keys);
          const standing = new Set(c.differences.map((d) => keyId(d.key)));
          for (const key of keys) if (!standing.has(keyId(key))) c.settled.add(keyId(key));
          const touched = inFlight.get(c.table);
          const touchedIds = new Set(touched?.map(keyId));
          if (c.differences.some((d) => touched === undefined || touchedIds.has(keyId(d.key)))) {
            unsettled = true;
          }
        }
      } finally {
        await endTransaction(target);
      }
    } finally {
      await endTransaction(source);
    }
  }
  return rounds;
}
