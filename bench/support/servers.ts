// The PostgreSQL servers of one benchmark: durable clusters in a temporary run root that is removed at
// the end, on Ctrl-C (a synchronous reaper in the signal handler) and, should this process be killed,
// by the tests' detached watchdog.
import { chmod, mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type pg from 'pg';

import { LocalCluster } from '../../test/support/local-cluster.js';
import { startWatchdog } from '../../test/support/run-root.js';
import { reapRunRoot, sweepStaleRuns } from '../../test/support/watchdog.js';

/**
 * What users run: every commit flushed to disk (the test servers turn fsync and full_page_writes off).
 * min_wal_size keeps the segments that warmWal() leaves for recycling through the checkpoints we take.
 */
export const durableSettings = [
  'fsync=on',
  'full_page_writes=on',
  'synchronous_commit=on',
  'min_wal_size=1GB',
];

export interface Servers {
  runRoot: string;
  clusters: LocalCluster[];
}

/** Starts one durable cluster per name, runs `work`, then stops and removes everything. */
export async function withServers<T>(
  names: readonly string[],
  work: (servers: Servers) => Promise<T>,
  /** Further `name=value` settings for every cluster: `wal_level=logical` for native replication, say. */
  settings: readonly string[] = [],
): Promise<T> {
  const base = join(tmpdir(), 'trigsync-bench');
  // Run roots of benchmarks that were killed before their watchdog could act.
  sweepStaleRuns(base);
  await mkdir(base, { recursive: true });
  const runRoot = await mkdtemp(join(base, `run-${process.pid}-`));
  // The servers run as the "postgres" OS user when we are root: it must reach its data dirs.
  await chmod(base, 0o755);
  await chmod(runRoot, 0o755);
  startWatchdog(runRoot);
  const onSignal = (signal: NodeJS.Signals): void => {
    reapRunRoot(runRoot);
    process.kill(process.pid, signal);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const clusters = names.map(
    (name) =>
      new LocalCluster({ name, dataDir: join(runRoot, name), settings: [...durableSettings, ...settings] }),
  );
  try {
    await Promise.all(clusters.map((cluster) => cluster.start()));
    for (const cluster of clusters) await warmWal(cluster);
    return await work({ runRoot, clusters });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await Promise.allSettled(clusters.map((cluster) => cluster.destroy()));
    reapRunRoot(runRoot);
  }
}

/** A database of its own on a cluster; its superuser URL. */
export async function createDatabase(cluster: LocalCluster, name: string): Promise<string> {
  await cluster.query(`create database ${name}`);
  return cluster.url(name);
}

/**
 * A new cluster creates each WAL segment as it needs it, zero-filling and syncing 16 MB in some
 * writer's commit; a server that has run for a while renames old segments instead. Write ~600 MB of WAL
 * and checkpoint, so that every measurement sees the server that users have.
 */
async function warmWal(cluster: LocalCluster): Promise<void> {
  await cluster.query(
    `create table wal_warmup as select g, repeat('x', 900) as pad from generate_series(1, 600000) g`,
  );
  await cluster.query('drop table wal_warmup');
  await cluster.query('checkpoint');
}

/** The rows of `table` (SQL text, quoted where it needs to be). */
export async function rowCount(client: pg.ClientBase, table: string): Promise<number> {
  const result = await client.query<{ n: string | number }>(`select count(*) as n from ${table}`);
  return Number(result.rows[0]!.n);
}

/** Row count and a hash of every row of `table`, for comparing a source with its target. */
export async function tableFingerprint(
  client: pg.ClientBase,
  table: string,
): Promise<{ rows: number; hash: string }> {
  // The text of a timestamptz depends on the session's time zone: pin it.
  await client.query(`set timezone = 'UTC'`);
  const result = await client.query<{ rows: string; hash: string }>(
    `select count(*) as rows, coalesce(sum(hashtext(t::text)), 0)::text as hash from ${table} t`,
  );
  const { rows, hash } = result.rows[0]!;
  return { rows: Number(rows), hash };
}
