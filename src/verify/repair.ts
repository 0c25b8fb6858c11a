/**
 * `repair`: make a target's tables equal to the source's by writing exactly the keys `verify` finds
 * different (insert the missing, update the different, delete the extra), online and recorded.
 *
 * A pass compares as verify does (verify.ts, compareTarget: ranges, catch-up, re-checks); its
 * differing keys are then written in batches (repair-batch.ts says how each batch keeps out of the
 * running worker's way). A key that a change in flight touches is left for the next round, after the
 * target has caught up again; after `rounds` rounds, keys still in flight are reported as left. A
 * comparison keeps at most `narrowing.keep` differences per table: when a table had more, another pass
 * finds the rest.
 */
import { applyAsReplica } from '../apply/session-role.js';
import type { Config } from '../config/types.js';
import { ConfigError } from '../failure/errors.js';
import { ident } from '../config/identifiers.js';
import { beginSnapshot, endTransaction, waitForTarget } from './catch-up.js';
import type { NarrowingOptions } from './ranges.js';
import { repairBatch, type BatchSessions, type BatchTable } from './repair-batch.js';
import { actionOf, chunks, type RepairAction } from './repair-plan.js';
import { forEachTarget, type TargetSession } from './session.js';
import { keyId, type Key } from './table-side.js';
import { compareTarget, keyObject, type Compared } from './verify.js';
import { relationExists } from '../db/relation-exists.js';

export interface RepairOptions {
  /** The target to repair, by name. */
  target: string;
  /** One source table, as written in the config; all of the target's tables when absent. */
  table?: string | undefined;
  /** Find and report what would be done; write nothing, record nothing. */
  dryRun?: boolean;
  /** How long to wait for the target to catch up with a source snapshot, each time. */
  waitMs?: number;
  /** Keys per target transaction. */
  batchSize?: number;
  /** Rounds over the keys left in flight, per pass. */
  rounds?: number;
  /** Comparisons at most (one more for each time a table had more than `narrowing.keep` differences). */
  passes?: number;
  /** Keys listed per table (planned in a dry run, else left differing); all are counted. */
  limit?: number;
  narrowing?: Partial<NarrowingOptions>;
}

export interface TableRepair {
  /** The source table, and the target table it maps to. */
  table: string;
  targetTable: string;
  /** Differing keys the first comparison found. */
  found: number;
  /** Keys written (in a dry run: to be written), by action. */
  inserted: number;
  updated: number;
  deleted: number;
  /** Keys still differing at the end: in flight through every round, not written, or not holding. */
  left: number;
  /** Dry run: the planned keys and actions; else the keys left, with the action they need. */
  keys: { key: Record<string, string | number>; action: RepairAction }[];
}

export interface TargetRepair {
  name: string;
  dryRun: boolean;
  /** Whether the target ended equal to the source (a dry run: whether it was). */
  equal: boolean;
  /** False when trigsync does not replicate to this target from this source. */
  replicating: boolean;
  /**
   * An operator paused the target (`trigsync pause`): nothing was written, since the changes waiting
   * for it show as differences, and repair writes none of those.
   */
  paused: boolean;
  passes: number;
  rounds: number;
  tables: TableRepair[];
}

export interface RepairReport {
  equal: boolean;
  dryRun: boolean;
  targets: TargetRepair[];
}

/** The count of TableRepair that each action adds to. */
const counted = { insert: 'inserted', update: 'updated', delete: 'deleted' } as const;

const defaults = { waitMs: 30_000, batchSize: 500, rounds: 5, passes: 10, limit: 100, keep: 50_000 };

export async function repair(config: Config, options: RepairOptions): Promise<RepairReport> {
  const targets = await forEachTarget(config, options, (session) => repairTarget(session, options));
  return {
    equal: targets.every((t) => t.equal),
    dryRun: options.dryRun === true,
    targets,
  };
}

/** Where repair records what it writes; refuses a source without it, before anything is written. */
async function checkRecordTable(session: TargetSession): Promise<void> {
  const { config, source, work } = session;
  if (work.follower === undefined) {
    throw new ConfigError(
      `trigsync is not installed on the source, and repair records every key it writes there ` +
        `(${config.schema}.repaired_key): run trigsync install first, or use --dry-run`,
    );
  }
  const found = await relationExists(source, `${ident(config.schema)}.repaired_key`);
  if (!found) {
    throw new ConfigError(
      `the source's trigsync schema ${config.schema} predates repair (no ${config.schema}.repaired_key): ` +
        'run trigsync install to upgrade it',
    );
  }
}

/** Wait until the target has applied everything of a new source snapshot (or the wait runs out). */
async function waitCaughtUp(session: TargetSession, waitMs: number): Promise<void> {
  const { follower } = session.work;
  if (follower === undefined) return;
  const snapshot = await beginSnapshot(session.source);
  try {
    await waitForTarget(snapshot, session.client, follower, waitMs);
  } finally {
    await endTransaction(session.source);
  }
}

function listed(c: Compared, keys: readonly Key[], action: (key: Key) => RepairAction, limit: number) {
  return keys
    .slice(0, limit)
    .map((key) => ({ key: keyObject(c.table, c.keyTypes, key), action: action(key) }));
}

async function repairTarget(session: TargetSession, options: RepairOptions): Promise<TargetRepair> {
  const { config, work } = session;
  const dryRun = options.dryRun === true;
  const waitMs = options.waitMs ?? defaults.waitMs;
  const limit = options.limit ?? defaults.limit;
  const compareOptions = { waitMs, narrowing: { keep: defaults.keep, ...options.narrowing } };
  if (!dryRun) {
    await checkRecordTable(session);
    // As the worker applies: the target's triggers and foreign keys see the writes as replicated ones.
    await applyAsReplica(session.client);
  }
  const stats = new Map<string, TableRepair>(
    work.tables.map((t) => [
      t.sourceName,
      {
        table: t.sourceName,
        targetTable: t.targetName,
        found: 0,
        inserted: 0,
        updated: 0,
        deleted: 0,
        left: 0,
        keys: [],
      },
    ]),
  );
  const report: TargetRepair = {
    name: work.name,
    dryRun,
    equal: false,
    replicating: true,
    paused: false,
    passes: 0,
    rounds: 0,
    tables: [...stats.values()],
  };
  const sessions: BatchSessions | undefined =
    dryRun || work.follower === undefined
      ? undefined
      : {
          source: session.source,
          target: session.client,
          recorder: work.follower.changeLog,
          schema: config.schema,
          targetName: work.name,
          follower: work.follower,
        };

  for (;;) {
    report.passes++;
    const comparison = await compareTarget(session.source, session.client, work, compareOptions);
    report.replicating = comparison.catchUp.replicating;
    report.paused = comparison.paused;
    const unchecked = comparison.compared.reduce((n, c) => n + c.unchecked, 0);
    for (const c of comparison.compared) {
      const s = stats.get(c.table.sourceName)!;
      if (report.passes === 1) s.found = c.differences.length + c.unchecked;
      s.left = c.differences.length + c.unchecked;
      const kindOf = new Map(c.differences.map((d) => [keyId(d.key), d.kind]));
      const keys = c.differences.map((d) => d.key);
      s.keys = listed(c, keys, (key) => actionOf[kindOf.get(keyId(key))!], limit);
      if (dryRun) for (const d of c.differences) s[counted[actionOf[d.kind]]]++;
    }
    if (sessions === undefined || comparison.paused) break;
    report.rounds += await repairRounds(session, sessions, comparison.compared, stats, options, limit);
    // Tables with more differences than a comparison keeps: the next pass finds the rest.
    if (unchecked === 0 || report.passes >= (options.passes ?? defaults.passes)) break;
  }
  report.equal = report.tables.every((t) => t.left === 0);
  return report;
}

/** Write the differing keys of each table, in rounds while changes in flight leave some for later. */
async function repairRounds(
  session: TargetSession,
  sessions: BatchSessions,
  compared: readonly Compared[],
  stats: Map<string, TableRepair>,
  options: RepairOptions,
  limit: number,
): Promise<number> {
  const pending = new Map(compared.map((c) => [c, c.differences.map((d) => d.key)]));
  const kinds = new Map(compared.map((c) => [c, new Map(c.differences.map((d) => [keyId(d.key), d.kind]))]));
  const failed = new Map<Compared, Key[]>(compared.map((c) => [c, []]));
  const maxRounds = options.rounds ?? defaults.rounds;
  let rounds = 0;
  while ([...pending.values()].some((keys) => keys.length > 0) && rounds < maxRounds) {
    // The comparison has just waited for the target; later rounds wait for the changes left in flight.
    if (rounds > 0) await waitCaughtUp(session, options.waitMs ?? defaults.waitMs);
    rounds++;
    for (const [c, keys] of pending) {
      const s = stats.get(c.table.sourceName)!;
      const table: BatchTable = {
        table: c.table,
        sides: c.sides,
        columns: session.work.columnsOf(c.table),
        keyTypes: c.keyTypes,
      };
      const later: Key[] = [];
      for (const batch of chunks(keys, options.batchSize ?? defaults.batchSize)) {
        const result = await repairBatch(sessions, table, batch);
        for (const { action } of result.written) s[counted[action]]++;
        later.push(...result.later);
        failed.get(c)!.push(...result.failed);
      }
      pending.set(c, later);
    }
  }
  for (const c of compared) {
    const s = stats.get(c.table.sourceName)!;
    const left = [...pending.get(c)!, ...failed.get(c)!];
    const kindOf = kinds.get(c)!;
    s.left = left.length + c.unchecked;
    s.keys = listed(c, left, (key) => actionOf[kindOf.get(keyId(key)) ?? 'different'], limit);
  }
  return rounds;
}
