// One run of the fan-out benchmark: a backlog of single-row changes written while the daemon is stopped,
// then `trigsync start` run on it (a process per group) and timed until every target has committed the
// last change (its position, read on the target). Meanwhile the bench counts the source database's
// buffer accesses (pg_stat_database) from before the start to after the stop, and the same for a start and
// stop that apply one change, to tell the drain's part; each daemon's peak RSS is its kernel's count.
import type pg from 'pg';

import { insertWorkload } from '../support/load.js';
import { BenchChildDaemon } from '../support/child-daemon.js';
import { rowCount } from '../support/servers.js';
import { drainLog, schema } from '../support/trigsync.js';
import { delay, waitFor } from '../../test/support/wait.js';
import {
  checkTargets,
  fanoutConfig,
  fanoutRawConfig,
  fanoutTable,
  resetTables,
  sourceDatabase,
  type Rig,
} from './setup.js';
import type { TargetDatabase } from '../support/trigsync.js';

const payload = 'trigsync fan-out benchmark: a short text column';
/** Writers of the backlog: enough to produce it quickly. */
export const writers = 8;

/** How a run spreads its targets: the first `targets` of the rig, over `groups` daemons of a group each. */
export interface Layout {
  targets: number;
  /** 1: one daemon of the default group; more: groups a, b, ... with a daemon each. */
  groups: number;
}

export interface FanoutResult extends Layout {
  /** Changes each target applies. */
  changes: number;
  /** From the daemons' spawn until the last target is done. */
  seconds: number;
  /** Each target's changes ÷ its own seconds. */
  perTarget: number[];
  /** changes × targets ÷ seconds. */
  rowsPerSecond: number;
  /** blks_hit + blks_read of the source database, from before the daemons' start to after their stop. */
  sourceBlocks: number;
  /** The same for a start and stop that apply one change: the part of `sourceBlocks` that is not the drain. */
  idleBlocks: number;
  /** Each daemon's peak RSS over the run (VmHWM), in MB, in group order. */
  daemonPeakMB: number[];
}

/** One daemon's share of a layout. */
interface GroupPart {
  group: string | undefined;
  targets: TargetDatabase[];
}

export async function measureFanout(rig: Rig, layout: Layout): Promise<FanoutResult> {
  const targets = rig.targets.slice(0, layout.targets);
  const parts = splitIntoGroups(targets, layout.groups);
  const config = fanoutConfig(rig.sourceUrl, targets);
  // Install and register the targets (a new one starts from now; a group takes over the default group's
  // targets, whose daemon is stopped), and empty the log: each run starts with live targets and an empty
  // log.
  await drain(rig, parts, undefined, () => drainLog(rig.admin, config));
  // What the daemons' start and stop cost the source, whatever the log holds: one change, applied.
  await rig.admin.query(`insert into ${fanoutTable} (id, a, b, c) values (0, 0, 'start and stop', now())`);
  const idle = await countBlocks(rig, async () => drain(rig, parts, await nextXid(rig.admin)));

  await resetTables(rig, targets);
  const last = await lastChangeId(rig.admin);
  await rig.load.run(insertWorkload(fanoutTable, payload), {
    url: rig.sourceUrl,
    clients: writers,
    transactions: Math.ceil(rig.options.fanoutRows / writers),
  });
  // The log may still hold the one change of the start and stop, applied already.
  const changes = await rowCount(rig.admin, `${schema}.change_log where id > ${last}`);
  // What autovacuum would do to the log during the drain is done now, outside the counted span.
  await rig.quietSource.query(`vacuum analyze ${schema}.change_log`);
  const run = await countBlocks(rig, async () => drain(rig, parts, await nextXid(rig.admin)));
  await checkTargets(rig, targets);

  const perTarget = targets.map((t) => (changes * 1000) / run.result.doneAt.get(t.name)!);
  const seconds = Math.max(...run.result.doneAt.values()) / 1000;
  return {
    ...layout,
    changes,
    seconds,
    perTarget,
    rowsPerSecond: (changes * layout.targets) / seconds,
    sourceBlocks: run.blocks,
    idleBlocks: idle.blocks,
    daemonPeakMB: run.result.peakMB,
  };
}

/** `targets` dealt in order into `groups` equal parts; one part of the default group when `groups` is 1. */
function splitIntoGroups(targets: TargetDatabase[], groups: number): GroupPart[] {
  if (groups === 1) return [{ group: undefined, targets }];
  const size = Math.ceil(targets.length / groups);
  return Array.from({ length: groups }, (_, i) => ({
    group: String.fromCharCode('a'.charCodeAt(0) + i),
    targets: targets.slice(i * size, (i + 1) * size),
  }));
}

interface Drained {
  /** Per target, ms from the daemons' spawn until it committed every transaction before `beforeXid`. */
  doneAt: Map<string, number>;
  /** Each daemon's peak RSS, in MB. */
  peakMB: number[];
}

/**
 * Start a daemon per part (`trigsync start`, a process each), wait until every target's position covers
 * every source transaction before `beforeXid` (read on the targets, which the source's counters do not
 * see) or, with no `beforeXid`, until `whileRunning` is done; then stop them.
 */
async function drain(
  rig: Rig,
  parts: readonly GroupPart[],
  beforeXid: string | undefined,
  whileRunning?: () => Promise<void>,
): Promise<Drained> {
  const daemons = await Promise.all(
    parts.map(({ group, targets }) =>
      BenchChildDaemon.create(group ?? 'default', fanoutRawConfig(rig.sourceUrl, targets, group)),
    ),
  );
  const targets = parts.flatMap((part) => part.targets);
  const doneAt = new Map<string, number>();
  try {
    const started = performance.now();
    await Promise.all(daemons.map((daemon) => daemon.start()));
    await whileRunning?.();
    if (beforeXid !== undefined) {
      await waitFor(
        async () => {
          await Promise.all(
            targets
              .filter((t) => !doneAt.has(t.name))
              .map(async (t) => {
                if (await covers(t, beforeXid)) doneAt.set(t.name, performance.now() - started);
              }),
          );
          return doneAt.size === targets.length;
        },
        { what: 'every target to apply every change', timeoutMs: 600_000, intervalMs: 25 },
      );
    }
    const peakMB = await Promise.all(daemons.map((daemon) => daemon.peakRssMB()));
    await Promise.all(daemons.map((daemon) => daemon.stop()));
    return { doneAt, peakMB };
  } finally {
    await Promise.all(daemons.map((daemon) => daemon.dispose()));
  }
}

/** The source's next transaction id: every transaction committed so far is below it. */
async function nextXid(source: pg.Client): Promise<string> {
  const result = await source.query<{ xid: string }>(
    `select pg_snapshot_xmax(pg_current_snapshot())::text as xid`,
  );
  return result.rows[0]!.xid;
}

/**
 * Whether the target has applied every source transaction below `xid`: its position's closed window
 * (from_snapshot, written in the transaction of the batch that closed it) has no transaction older than
 * `xid` in progress, so every change before it is applied (SPEC G1).
 */
async function covers(target: TargetDatabase, xid: string): Promise<boolean> {
  const result = await target.client.query<{ done: boolean | null }>(
    `select bool_or(pg_snapshot_xmin(from_snapshot::pg_snapshot) >= $2::xid8) as done
       from ${schema}.applied_position where target = $1`,
    [target.name, xid],
  );
  return result.rows[0]?.done === true;
}

/** The source database's blks_hit + blks_read that `work` adds. */
async function countBlocks<T>(rig: Rig, work: () => Promise<T>): Promise<{ result: T; blocks: number }> {
  const before = await settledBlocks(rig);
  const result = await work();
  return { result, blocks: (await settledBlocks(rig)) - before };
}

async function sourceBlocks(stats: pg.Client): Promise<number> {
  // A fresh read, not the snapshot of an earlier one (stats_fetch_consistency).
  await stats.query('select pg_stat_clear_snapshot()');
  const result = await stats.query<{ blocks: string }>(
    `select (blks_hit + blks_read)::text as blocks from pg_stat_database where datname = $1`,
    [sourceDatabase],
  );
  return Number(result.rows[0]!.blocks);
}

/**
 * The source database's counter once every session has reported. Sessions report lazily: at exit (the
 * daemon's and the writers', which have ended), and an idle one within 10 s of its last statement
 * unless asked to at once, which pg_stat_force_next_flush() (PostgreSQL 15+) does for the session that
 * calls it: the bench's own sessions on the source database call it. Then read until two reads a second
 * apart agree.
 */
async function settledBlocks(rig: Rig): Promise<number> {
  for (const client of [rig.admin, rig.quietSource]) await client.query('select pg_stat_force_next_flush()');
  let last = await sourceBlocks(rig.stats);
  for (let attempt = 0; attempt < 30; attempt++) {
    await delay(1_100);
    const now = await sourceBlocks(rig.stats);
    if (now === last) return now;
    last = now;
  }
  throw new Error(`the block counters of ${sourceDatabase} did not settle within 30 s`);
}

async function lastChangeId(client: pg.Client): Promise<number> {
  const result = await client.query<{ id: string }>(
    `select coalesce(max(id), 0)::text as id from ${schema}.change_log`,
  );
  return Number(result.rows[0]!.id);
}
