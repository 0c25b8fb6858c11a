// `trigsync repair`: writes exactly the keys verify finds different while the daemon replicates a
// writer, records each, changes nothing with --dry-run, and never contradicts a change in flight.
import pg from 'pg';
import { describe, expect, it } from 'vitest';

import { repair } from '../../src/verify/repair.js';
import { verify } from '../../src/verify/verify.js';
import { freshDatabase, sharedClusters, waitFor, type FreshDatabase } from '../support/fixtures.js';
import {
  configFile,
  expectSameRows,
  makeConfig,
  runCli,
  startDaemon,
  waitCaughtUp,
} from '../support/replication.js';
import { loopOnSession } from '../support/workload.js';

async function pair(): Promise<{ src: FreshDatabase; dst: FreshDatabase }> {
  const { source, target1 } = sharedClusters();
  const [src, dst] = await Promise.all([freshDatabase(source), freshDatabase(target1)]);
  return { src, dst };
}

const run = <R extends pg.QueryResultRow = Record<string, unknown>>(
  db: FreshDatabase,
  sql: string,
): Promise<R[]> => db.cluster.query<R>(sql, undefined, db.name);

/** The planted differences on the target: still all there? */
async function planted(dst: FreshDatabase): Promise<{ changed: number; missing: number; extra: number }> {
  const [row] = await run<{ changed: number; missing: number; extra: number }>(
    dst,
    `select (select count(*) from big where payload = 'changed')::int as changed,
            (select 200 - count(*) from big where id > 100000 and id <= 300000 and id % 1000 = 500)::int as missing,
            (select count(*) from big where id > 900000)::int as extra`,
  );
  return row!;
}

/** A writer updating and inserting rows away from the planted keys until stopped. */
function writer(url: string): { writes: () => number; stop: () => Promise<void> } {
  let next = 400_001;
  const loop = loopOnSession(url, 'repair-test-writer', async (client) => {
    const id = 1 + Math.floor(Math.random() * 100_000);
    await client.query('update big set v = v + 1, payload = md5(random()::text) where id = $1', [id]);
    await client.query(`insert into big values ($1, 0, 'new', now())`, [next++]);
  });
  return { writes: () => 2 * loop.loops(), stop: () => loop.stop() };
}

describe('trigsync repair', () => {
  it('on 300k rows under a running writer: --dry-run changes nothing; repair writes exactly the differing keys, records them, and verify then finds the tables equal', async () => {
    const { src, dst } = await pair();
    const build = `
      create table big (id int not null, v int not null, payload text, at timestamptz);
      insert into big select g, g % 1000, md5(g::text), timestamptz '2024-01-01' + g * interval '1 second'
        from generate_series(1, 300000) g;
      alter table big add primary key (id);`;
    await Promise.all([run(src, build), run(dst, build)]);
    const raw = {
      source: { url: src.url },
      tables: ['big'],
      targets: [{ name: 'replica', url: dst.url, initialSync: 'none' }],
      apply: { pollIntervalMs: 200 },
      metrics: { enabled: false },
    };
    const config = makeConfig(raw);
    const file = await configFile(raw);
    const daemon = await startDaemon(config);
    await waitCaughtUp(config);

    // Planted on the target, away from the writer's keys: 200 changed, 200 missing, 100 extra rows.
    await run(
      dst,
      `update big set payload = 'changed' where id > 100000 and id % 1000 = 7;
       delete from big where id > 100000 and id % 1000 = 500;
       insert into big select g, 0, 'extra', now() from generate_series(900001, 900100) g;`,
    );
    expect(await planted(dst)).toEqual({ changed: 200, missing: 200, extra: 100 });

    const load = writer(src.url);
    try {
      await waitFor(() => load.writes() >= 200, { what: 'the writer to get going' });

      const dry = await runCli(file, 'repair', 'replica', '--dry-run');
      expect(dry.code, dry.out).toBe(1);
      expect(dry.out).toMatch(/^replica \(dry run: nothing is written\):$/m);
      expect(dry.out).toMatch(/public\.big\s+500\s+200\s+200\s+100\s+500/);
      expect(dry.out).toMatch(/^\s+update\s+\{"id":100007\}$/m);
      expect(dry.out).toMatch(/^\s+insert\s+\{"id":100500\}$/m);
      expect(dry.out).toMatch(/^\s+delete\s+\{"id":900001\}$/m);
      expect(dry.out).toMatch(/would repair 500 key\(s\) in 1 table\(s\); nothing was changed/);
      expect(await planted(dst)).toEqual({ changed: 200, missing: 200, extra: 100 });
      expect(await run(src, 'select * from trigsync.repaired_key')).toEqual([]);

      const before = load.writes();
      const started = performance.now();
      const report = await repair(config, { target: 'replica', batchSize: 128 });
      const seconds = (performance.now() - started) / 1000;
      const writes = load.writes() - before;
      console.log(
        `repair of 500 keys in 300k rows under load: ${seconds.toFixed(2)} s, ${report.targets[0]!.passes} ` +
          `comparison(s), ${report.targets[0]!.rounds} round(s); the writer wrote ${writes} rows meanwhile`,
      );
      expect(writes).toBeGreaterThan(0);
      expect(report.equal).toBe(true);
      expect(report.targets[0]).toMatchObject({ name: 'replica', equal: true, replicating: true });
      expect(report.targets[0]!.tables).toEqual([
        {
          table: 'public.big',
          targetTable: 'public.big',
          found: 500,
          inserted: 200,
          updated: 200,
          deleted: 100,
          left: 0,
          keys: [],
        },
      ]);
      expect(await planted(dst)).toEqual({ changed: 0, missing: 0, extra: 0 });
    } finally {
      await load.stop();
    }
    await waitCaughtUp(config);

    const checked = await runCli(file, 'verify', 'replica');
    expect(checked.code, checked.out).toBe(0);
    expect(checked.out).toMatch(/^verify: equal$/m);
    await expectSameRows(
      { url: src.url, query: 'select * from big' },
      { url: dst.url, query: 'select * from big' },
      'id',
    );

    const records = await run<{
      action: string;
      n: number;
      keys: number[];
      by: string;
      os: boolean;
      snapshots: number;
    }>(
      src,
      `select action, count(*)::int as n, array_agg((key ->> 'id')::int order by (key ->> 'id')::int) as keys,
              min(repaired_by) as by, bool_and(os_user is not null) as os, count(distinct snapshot::text)::int as snapshots
         from trigsync.repaired_key where target = 'replica' and table_name = 'public.big'
        group by action order by action`,
    );
    const ids = (from: number, step: number, n: number): number[] =>
      Array.from({ length: n }, (_, i) => from + i * step);
    expect(records.map((r) => [r.action, r.n, r.keys])).toEqual([
      ['delete', 100, ids(900001, 1, 100)],
      ['insert', 200, ids(100500, 1000, 200)],
      ['update', 200, ids(100007, 1000, 200)],
    ]);
    const [role] = await run<{ user: string }>(src, 'select session_user as user');
    for (const r of records) expect(r).toMatchObject({ by: role!.user, os: true });

    // Nothing left: a second repair finds nothing and writes nothing.
    const again = await runCli(file, 'repair', 'replica');
    expect(again.code, again.out).toBe(0);
    expect(again.out).toMatch(/^repair: 0 key\(s\) repaired; the target equals the source$/m);
    await daemon.stop();
  });

  it('leaves a key whose change the target has not applied yet, and the daemon then brings it', async () => {
    const { src, dst } = await pair();
    const build = `create table t (id int primary key, v int not null);
      insert into t select g, g from generate_series(1, 1000) g;`;
    await Promise.all([run(src, build), run(dst, build)]);
    const raw = {
      source: { url: src.url },
      tables: ['t'],
      targets: [{ name: 'replica', url: dst.url, initialSync: 'none' }],
      metrics: { enabled: false },
    };
    const config = makeConfig(raw);
    let daemon = await startDaemon(config);
    await waitCaughtUp(config);
    await run(dst, `update t set v = -1 where id in (10, 20)`);
    await daemon.stop();
    // A change of key 10 that the target has not applied: repair must not write key 10 past it.
    await run(src, `update t set v = 5000 where id = 10`);

    const report = await repair(config, { target: 'replica', waitMs: 300, rounds: 2 });
    expect(report.equal).toBe(false);
    expect(report.targets[0]!.tables[0]).toMatchObject({
      found: 2,
      updated: 1,
      left: 1,
      keys: [{ key: { id: 10 }, action: 'update' }],
    });
    expect(await run(dst, 'select id, v from t where id in (10, 20) order by id')).toEqual([
      { id: 10, v: -1 },
      { id: 20, v: 20 },
    ]);
    expect(await run(src, `select key::text, action from trigsync.repaired_key`)).toEqual([
      { key: '{"id": 20}', action: 'update' },
    ]);

    daemon = await startDaemon(config);
    await waitCaughtUp(config);
    const after = await verify(config, { target: 'replica' });
    expect(after.equal).toBe(true);
    await daemon.stop();
  });

  it('converges while the writer keeps changing the very keys it repairs', async () => {
    const { src, dst } = await pair();
    const build = `create table t (id int primary key, v int not null, note text);
      insert into t select g, g, 'row' from generate_series(1, 3000) g;`;
    await Promise.all([run(src, build), run(dst, build)]);
    const raw = {
      source: { url: src.url },
      tables: ['t'],
      targets: [{ name: 'replica', url: dst.url, initialSync: 'none' }],
      metrics: { enabled: false },
    };
    const config = makeConfig(raw);
    const daemon = await startDaemon(config);
    await waitCaughtUp(config);
    await run(dst, `update t set v = -1 where id <= 300; delete from t where id > 2900`);

    const client = new pg.Client({ connectionString: src.url });
    await client.connect();
    let writing = true;
    let writes = 0;
    const load = (async () => {
      while (writing) {
        // Hot: changed keys 1..100 and missing keys 2901..2950; the other planted keys stay cold.
        const id = 1 + Math.floor(Math.random() * 100);
        await client.query(`update t set v = v + 1, note = md5(random()::text) where id in ($1, $1 + 2850)`, [
          id,
        ]);
        writes++;
      }
    })();
    try {
      await waitFor(() => writes >= 50, { what: 'the writer to get going' });
      const report = await repair(config, { target: 'replica', batchSize: 40 });
      const table = report.targets[0]!.tables[0]!;
      console.log(
        `repair of hot keys: found ${table.found}, wrote ${table.inserted + table.updated + table.deleted}, ` +
          `left ${table.left} after ${report.targets[0]!.rounds} round(s); ${writes} writes so far`,
      );
      // The cold keys at least: 200 changed rows and 50 missing ones that no change brings.
      expect(table.updated).toBeGreaterThanOrEqual(200);
      expect(table.inserted).toBeGreaterThanOrEqual(50);
    } finally {
      writing = false;
      await load;
      await client.end();
    }
    await waitCaughtUp(config);
    // What repair did not write, the daemon brought; what it wrote, the daemon never had to undo.
    const after = await verify(config, { target: 'replica' });
    expect(after.targets[0]!.tables[0]!.differences).toEqual([]);
    await expectSameRows(
      { url: src.url, query: 'select * from t' },
      { url: dst.url, query: 'select * from t' },
      'id',
    );
    await daemon.stop();
  });

  it('exits 2 without a target, naming an unknown target or table, and refuses a source without trigsync', async () => {
    const unreachable = await configFile({
      source: { url: 'postgres://nobody@127.0.0.1:1/none' },
      tables: ['public.orders'],
      targets: [{ name: 'replica', url: 'postgres://nobody@127.0.0.1:1/none', initialSync: 'none' }],
      metrics: { enabled: false },
    });
    const none = await runCli(unreachable, 'repair');
    expect(none.code).toBe(2);
    expect(none.out).toMatch(/repair needs TARGET/);
    const target = await runCli(unreachable, 'repair', 'nosuch');
    expect(target.code).toBe(2);
    expect(target.out).toMatch(/no target named nosuch in the config \(targets: replica\)/);
    const table = await runCli(unreachable, 'repair', 'replica', '--table', 'public.invoices');
    expect(table.code).toBe(2);
    expect(table.out).toMatch(/no table public\.invoices among the captured tables/);

    // Nothing installed on the source: nowhere to record, so nothing is written; --dry-run still tells.
    const { src, dst } = await pair();
    await run(
      src,
      `create table orders (id int primary key, v int); insert into orders values (1, 1), (2, 2)`,
    );
    await run(dst, `create table orders (id int primary key, v int); insert into orders values (1, 1)`);
    const file = await configFile({
      source: { url: src.url },
      tables: ['public.orders'],
      targets: [{ name: 'replica', url: dst.url, initialSync: 'none' }],
      metrics: { enabled: false },
    });
    const refused = await runCli(file, 'repair', 'replica');
    expect(refused.code).toBe(2);
    expect(refused.out).toMatch(/trigsync is not installed on the source/);
    const dry = await runCli(file, 'repair', 'replica', '--dry-run');
    expect(dry.code).toBe(1);
    expect(dry.out).toMatch(/^\s+insert\s+\{"id":2\}$/m);
    expect(await run(dst, 'select count(*)::int as n from orders')).toEqual([{ n: 1 }]);
  });
});
