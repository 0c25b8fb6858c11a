// Positions the change log cannot serve (issue #18, points 1 and 2): a target restored from an old
// backup, a target replaced by an empty database, and a source restored from a backup (its transaction
// ids went back). Each either converges from the log, when the log still holds what the target needs,
// or is parked with a message that names the cause and `trigsync sync`, which brings it back.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

import { describe, expect, it } from 'vitest';

import type { Config } from '../../src/config/types.js';
import {
  freshDatabase,
  ident,
  privateCluster,
  sharedClusters,
  uniqueName,
  waitFor,
  type FreshDatabase,
  type PgCluster,
} from '../support/fixtures.js';
import {
  configFile,
  expectSameRows,
  makeConfig,
  runCli,
  runEach,
  startDaemon,
  targetStatus,
  waitCaughtUp,
} from '../support/replication.js';

const run = promisify(execFile);
const table = 'create table items (id int primary key, v text not null)';

function itemsConfig(src: FreshDatabase, targets: { name: string; url: string }[]): Record<string, unknown> {
  return {
    source: { url: src.url },
    tables: ['items'],
    targets: targets.map((t) => ({ ...t, initialSync: 'none' })),
    apply: { pollIntervalMs: 200 },
    retry: { initialDelayMs: 100, maxDelayMs: 1000, dataErrorDelayMs: 1000 },
    metrics: { enabled: false },
  };
}

async function expectItemsEqual(src: FreshDatabase, dst: FreshDatabase): Promise<void> {
  await expectSameRows(
    { url: src.url, query: 'select * from items' },
    { url: dst.url, query: 'select * from items' },
    'id',
  );
}

/** Writes of all three kinds: `from` new rows, and updates and deletes of older ones. */
async function write(src: FreshDatabase, from: number, rows: number): Promise<void> {
  await runEach(
    src.url,
    `insert into items select g, 'v' || g from generate_series(${from}, ${from + rows - 1}) g`,
    `update items set v = v || '+' where id % 7 = ${from % 7}`,
    `delete from items where id % 11 = ${from % 11} and id < ${from}`,
  );
}

async function sameItems(src: FreshDatabase, dst: FreshDatabase): Promise<boolean> {
  const q = `select count(*)::text || ':' || coalesce(sum(hashtext(t::text)), 0)::text as f from items t`;
  const [a, b] = await Promise.all([src.cluster.query(q, [], src.name), dst.cluster.query(q, [], dst.name)]);
  return a[0]!.f === b[0]!.f;
}

/** A copy of the database as it is now, as a backup would hold it (no session may be connected). */
async function backup(db: FreshDatabase): Promise<string> {
  const name = uniqueName('backup');
  await db.cluster.query(`create database ${ident(name)} template ${ident(db.name)}`);
  return name;
}

async function restore(db: FreshDatabase, backupName: string): Promise<void> {
  await db.cluster.query(`drop database ${ident(db.name)} with (force)`);
  await db.cluster.query(`alter database ${ident(backupName)} rename to ${ident(db.name)}`);
}

async function parkedWith(config: Config, target: string, cause: string): Promise<string> {
  const status = await waitFor(
    async () => {
      const t = await targetStatus(config, target);
      return t.state === 'parked' && t.lastError?.includes(cause) === true ? t : undefined;
    },
    { what: `${target} to park: ${cause}`, timeoutMs: 30_000 },
  );
  expect(status.lastError).toContain(`trigsync sync ${target}`);
  return status.lastError!;
}

/**
 * A source and a target with `items`, the daemon's config (a target that never connects holds the log
 * when `hold`), and a first run of the daemon that applies 100 rows and stops.
 */
async function followed(options: { source?: PgCluster; hold?: boolean } = {}): Promise<{
  src: FreshDatabase;
  dst: FreshDatabase;
  raw: Record<string, unknown>;
  config: Config;
}> {
  const { source, target1 } = sharedClusters();
  const [src, dst] = await Promise.all([freshDatabase(options.source ?? source), freshDatabase(target1)]);
  await Promise.all([runEach(src.url, table), runEach(dst.url, table)]);
  const hold = { name: 'hold', url: target1.url(uniqueName('missing')) };
  const raw = itemsConfig(src, [{ name: 'dst', url: dst.url }, ...(options.hold === true ? [hold] : [])]);
  const config = makeConfig(raw);
  const daemon = await startDaemon(config);
  await write(src, 1, 100);
  await waitFor(() => sameItems(src, dst), { what: 'the first rows on the target' });
  await daemon.stop();
  return { src, dst, raw, config };
}

describe('positions the change log cannot serve', () => {
  it('a target restored from a backup the log still covers resumes from it and converges', async () => {
    // A second target that never connects holds the log from the start (its position does not move).
    const { src, dst, config } = await followed({ hold: true });
    const old = await backup(dst);

    let daemon = await startDaemon(config);
    await write(src, 101, 100);
    await waitFor(() => sameItems(src, dst), { what: 'the second rows on the target' });
    await daemon.stop();
    await restore(dst, old);
    expect(await sameItems(src, dst)).toBe(false);

    daemon = await startDaemon(config);
    await waitFor(() => sameItems(src, dst), { what: 'the restored target to converge' });
    const status = await targetStatus(config, 'dst');
    expect(status.lastError).toBeNull();
    expect(status.state).not.toBe('parked');
    await daemon.stop();
    await expectItemsEqual(src, dst);
  }, 120_000);

  it('a target restored from before the pruned horizon is parked until `sync` copies it again', async () => {
    const { source, target1 } = sharedClusters();
    const { src, dst, raw, config } = await followed();
    const old = await backup(dst);
    const [stored] = await target1.query<{ needs: string }>(
      'select pg_snapshot_xmin(from_snapshot::pg_snapshot)::text as needs from trigsync.applied_position',
      [],
      old,
    );
    const needs = stored!.needs;

    let daemon = await startDaemon(config);
    await write(src, 101, 100);
    await waitCaughtUp(config);
    // The pruner (every 5 s) removes what the backup's position still needs.
    await waitFor(
      async () =>
        (
          await source.query<{ gone: boolean }>(
            'select pruned_below > $1::xid8 as gone from trigsync.log_horizon',
            [needs],
            src.name,
          )
        )[0]!.gone,
      { what: 'the log to be pruned past the backup', timeoutMs: 30_000 },
    );
    await daemon.stop();
    await restore(dst, old);

    daemon = await startDaemon(config);
    const message = await parkedWith(config, 'dst', 'the log was pruned');
    console.info(`restored target: ${message}`);
    expect(await sameItems(src, dst)).toBe(false);
    const synced = await runCli(await configFile(raw), 'sync', 'dst');
    expect(synced.code, synced.out).toBe(0);
    await write(src, 201, 50);
    await waitCaughtUp(config);
    await expectItemsEqual(src, dst);
    expect((await targetStatus(config, 'dst')).lastError).toBeNull();
    await daemon.stop();
  }, 120_000);

  it('a target replaced by an empty database is parked, not served from now on', async () => {
    const { src, dst, raw, config } = await followed();
    await runEach(dst.url, 'drop schema trigsync cascade', 'drop table items', table);

    const daemon = await startDaemon(config);
    await write(src, 101, 10);
    await parkedWith(config, 'dst', 'holds no record of what it applied');
    const synced = await runCli(await configFile(raw), 'sync', 'dst');
    expect(synced.code, synced.out).toBe(0);
    await waitCaughtUp(config);
    await expectItemsEqual(src, dst);
    await daemon.stop();
  }, 120_000);

  it('a source restored from a backup (its transaction ids went back) parks its targets until `sync`', async () => {
    const cluster = await privateCluster('restored-source');
    const { src, dst, raw, config } = await followed({ source: cluster });
    // A file-level backup of the whole server, taken while it is stopped.
    const saved = `${cluster.dataDir}.backup`;
    await cluster.stop();
    await run('cp', ['-a', cluster.dataDir, saved]);
    await cluster.start();

    let daemon = await startDaemon(config);
    await write(src, 101, 100);
    await waitCaughtUp(config);
    await daemon.stop();
    await cluster.stop();
    await run('rm', ['-rf', cluster.dataDir]);
    await run('mv', [saved, cluster.dataDir]);
    await cluster.start();
    // The restored server hands out the same transaction ids again, to other writes, and goes past the
    // target's position: only the position's ticks, which this server never took, tell.
    await write(src, 101, 30);
    await runEach(
      src.url,
      `do $$ begin for i in 1..2000 loop perform pg_current_xact_id(); commit; end loop; end $$`,
    );
    const [held] = await dst.cluster.query<{ xid: string }>(
      `select greatest(from_next_xid::xid8, coalesce(to_next_xid::xid8, '0'))::text as xid
         from trigsync.applied_position`,
      [],
      dst.name,
    );
    const [now] = await cluster.query<{ xid: string }>(
      'select pg_current_xact_id()::text as xid',
      [],
      src.name,
    );
    expect(BigInt(now!.xid)).toBeGreaterThan(BigInt(held!.xid));

    daemon = await startDaemon(config);
    const message = await parkedWith(config, 'dst', 'which this source never ran');
    console.info(`restored source: ${message}`);
    const synced = await runCli(await configFile(raw), 'sync', 'dst');
    expect(synced.code, synced.out).toBe(0);
    await write(src, 201, 20);
    await waitCaughtUp(config);
    await expectItemsEqual(src, dst);
    await daemon.stop();
  }, 180_000);
});
