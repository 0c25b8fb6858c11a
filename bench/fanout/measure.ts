// One run of the fan-out benchmark: a backlog of single-row changes written while the daemon is stopped,
// then the daemon started on it with `count` targets and timed until every target has committed the last
// change (its batch:applied events). Meanwhile the bench samples its own RSS (the daemon runs in this
// process) and counts the source database's buffer accesses (pg_stat_database) from before the start
// to after the stop; and the same for a start and stop that apply one change, to tell the drain's part.
import type pg from 'pg';

import { insertWorkload } from '../support/load.js';
import type { Config } from '../../src/config/types.js';
import { rowCount } from '../support/servers.js';
import { drainLog, schema } from '../support/trigsync.js';
import { delay, waitFor } from '../../test/support/wait.js';
import { checkTargets, fanoutConfig, fanoutTable, resetTables, sourceDatabase, type Rig } from './setup.js';

const payload = 'trigsync fan-out benchmark: a short text column';
/** Writers of the backlog: enough to produce it quickly. */
export const writers = 8;
const rssIntervalMs = 100;

export interface FanoutResult {
  targets: number;
  /** Changes each target applies. */
  changes: number;
  /** From the daemon's start until the last target is done. */
  seconds: number;
  /** Each target's changes ÷ its own seconds. */
  perTarget: number[];
  /** changes × targets ÷ seconds. */
  rowsPerSecond: number;
  /** blks_hit + blks_read of the source database, from before the daemon's start to after its stop. */
  sourceBlocks: number;
  /** The same for a start and stop that apply one change: the part of `sourceBlocks` that is not the drain. */
  idleBlocks: number;
  /** Of this process, before the daemon started, and the most sampled while it drained. */
  rssBeforeMB: number;
  rssPeakMB: number;
  /** process.memoryUsage() at the sample of the most RSS, in MB: what the RSS held then. */
  atPeakMB: { heapUsed: number; heapTotal: number; external: number; arrayBuffers: number };
}

export async function measureFanout(rig: Rig, count: number): Promise<FanoutResult> {
  const targets = rig.targets.slice(0, count);
  const config = fanoutConfig(rig.sourceUrl, targets);
  // Install and register the targets (a new one starts from now), and empty the log: each run starts with
  // live targets and an empty log.
  await rig.daemon.start(config);
  await drainLog(rig.admin, config);
  await rig.daemon.stop();
  // What the daemon's start and stop cost the source, whatever the log holds: one change, applied.
  await rig.admin.query(`insert into ${fanoutTable} (id, a, b, c) values (0, 0, 'start and stop', now())`);
  const idle = await countBlocks(rig, () => drain(rig, config, 1));

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
  const run = await countBlocks(rig, () => drain(rig, config, changes));
  await checkTargets(rig, targets);

  const perTarget = targets.map((t) => (changes * 1000) / run.result.doneAt.get(t.name)!);
  const seconds = Math.max(...run.result.doneAt.values()) / 1000;
  return {
    targets: count,
    changes,
    seconds,
    perTarget,
    rowsPerSecond: (changes * count) / seconds,
    sourceBlocks: run.blocks,
    idleBlocks: idle.blocks,
    rssBeforeMB: run.result.rssBefore / 2 ** 20,
    rssPeakMB: run.result.rssPeak / 2 ** 20,
    atPeakMB: inMB(run.result.atPeak),
  };
}

interface Drained {
  /** Per target, ms from the daemon's start until it committed the last change. */
  doneAt: Map<string, number>;
  rssBefore: number;
  rssPeak: number;
  atPeak: NodeJS.MemoryUsage;
}

function inMB(usage: NodeJS.MemoryUsage): FanoutResult['atPeakMB'] {
  const mb = (bytes: number): number => Math.round(bytes / 2 ** 20);
  return {
    heapUsed: mb(usage.heapUsed),
    heapTotal: mb(usage.heapTotal),
    external: mb(usage.external),
    arrayBuffers: mb(usage.arrayBuffers),
  };
}

/** Start the daemon, wait until every target has applied `changes`, stop it; RSS sampled meanwhile. */
async function drain(rig: Rig, config: Config, changes: number): Promise<Drained> {
  let atPeak = process.memoryUsage();
  const rssBefore = atPeak.rss;
  const doneAt = new Map<string, number>();
  const applied = new Map<string, number>();
  const sample = (): void => {
    const usage = process.memoryUsage();
    if (usage.rss > atPeak.rss) atPeak = usage;
  };
  const sampler = setInterval(sample, rssIntervalMs);
  const started = performance.now();
  try {
    await rig.daemon.start(config, (events) =>
      events.on('batch:applied', (batch) => {
        const total = (applied.get(batch.target) ?? 0) + batch.changes;
        applied.set(batch.target, total);
        if (total >= changes && !doneAt.has(batch.target))
          doneAt.set(batch.target, performance.now() - started);
      }),
    );
    await waitFor(() => doneAt.size === config.targets.length, {
      what: 'every target to apply every change',
      timeoutMs: Math.max(600_000, changes * config.targets.length),
      intervalMs: 20,
    });
  } finally {
    clearInterval(sampler);
  }
  sample();
  await rig.daemon.stop();
  return { doneAt, rssBefore, rssPeak: atPeak.rss, atPeak };
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
