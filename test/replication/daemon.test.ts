// The daemon's contract around the log: no echo (G3), long transactions (G1), resume after a stop and
// a config edit (G6), pruning and what holds the log (G7), install and uninstall.
import { describe, expect, it } from 'vitest';

import { uninstallSource } from '../../src/capture/install.js';
import { ConfigError } from '../../src/failure/errors.js';
import { installSource } from '../../src/operator/install-source.js';
import { withClient } from '../support/cluster.js';
import { freshDatabase, sharedClusters, waitFor, type FreshDatabase } from '../support/fixtures.js';
import { clientAs, expectSameRows, makeConfig, startDaemon, waitCaughtUp } from '../support/replication.js';

const table = 'create table items (id int primary key, v text)';

async function pair(): Promise<{ src: FreshDatabase; dst: FreshDatabase }> {
  const { source, target1 } = sharedClusters();
  const [src, dst] = await Promise.all([freshDatabase(source), freshDatabase(target1)]);
  await src.cluster.query(table, [], src.name);
  await dst.cluster.query(table, [], dst.name);
  return { src, dst };
}

/** A config capturing items, with one target per database given. */
function itemsConfig(
  src: FreshDatabase,
  targets: Record<string, FreshDatabase>,
): ReturnType<typeof makeConfig> {
  return makeConfig({
    source: { url: src.url },
    tables: ['items'],
    targets: Object.entries(targets).map(([name, db]) => ({ name, url: db.url, initialSync: 'none' })),
  });
}

/** A second target database on the other shared target cluster, with the items table. */
async function otherTarget(): Promise<FreshDatabase> {
  const db = await freshDatabase(sharedClusters().target2);
  await db.cluster.query(table, [], db.name);
  return db;
}

const count = async (db: FreshDatabase, sql: string): Promise<number> =>
  Number((await db.cluster.query<{ n: string }>(sql, [], db.name))[0]!.n);

describe('the daemon', () => {
  it('does not capture writes made under its application_name (no echo)', async () => {
    const { src, dst } = await pair();
    const config = itemsConfig(src, { dst });
    const daemon = await startDaemon(config);
    const own = await clientAs(src.url, 'trigsync');
    await own.query(`insert into items values (1, 'written as trigsync')`);
    await own.end();
    await src.cluster.query(`insert into items values (2, 'written by a client')`, [], src.name);
    await waitCaughtUp(config);
    expect(await count(src, `select count(*) as n from trigsync.change_log where row->>'id' = '1'`)).toBe(0);
    expect(await dst.cluster.query(`select id from items order by id`, [], dst.name)).toEqual([{ id: 2 }]);
    await daemon.stop();
  });

  it('is woken by the doorbell, not by polling, again and again', async () => {
    const { src, dst } = await pair();
    const config = makeConfig({
      source: { url: src.url },
      tables: ['items'],
      targets: [{ name: 'dst', url: dst.url, initialSync: 'none' }],
      apply: { pollIntervalMs: 600_000 },
    });
    const daemon = await startDaemon(config);
    await waitCaughtUp(config);
    for (let i = 1; i <= 3; i++) {
      await src.cluster.query(`insert into items values ($1, 'ring')`, [i], src.name);
      // Far sooner than the 10-minute poll: only the notification can have woken the worker.
      await waitFor(async () => (await count(dst, 'select count(*) as n from items')) === i, {
        what: `write ${i} to arrive`,
        timeoutMs: 10_000,
      });
    }
    await daemon.stop();
  });

  it('applies other transactions while a long one stays open, and the long one when it commits', async () => {
    const { src, dst } = await pair();
    const config = itemsConfig(src, { dst });
    const daemon = await startDaemon(config);
    const long = await clientAs(src.url, 'long-transaction');
    await long.query(`begin; insert into items values (1, 'long')`);
    for (let i = 2; i <= 50; i++)
      await src.cluster.query(`insert into items values ($1, 'short')`, [i], src.name);
    await waitFor(async () => (await count(dst, 'select count(*) as n from items')) === 49, {
      what: 'the short ones',
      timeoutMs: 20_000,
    });
    await long.query('commit');
    await long.end();
    await waitCaughtUp(config);
    await expectSameRows(
      { url: src.url, query: 'select * from items' },
      { url: dst.url, query: 'select * from items' },
      'id',
    );
    await daemon.stop();
  });

  it('resumes from its stored position after a stop, and a target added to the config follows from then', async () => {
    const { src, dst } = await pair();
    const second = await otherTarget();
    const one = itemsConfig(src, { dst });
    let daemon = await startDaemon(one);
    await src.cluster.query(
      `insert into items select g, 'first' from generate_series(1, 100) g`,
      [],
      src.name,
    );
    await waitCaughtUp(one);
    await daemon.stop();

    // While stopped: more changes, and the config gains a target.
    await src.cluster.query(
      `update items set v = 'while stopped' where id <= 50; delete from items where id > 90`,
      [],
      src.name,
    );
    const two = itemsConfig(src, { dst, second });
    daemon = await startDaemon(two);
    await src.cluster.query(`insert into items values (1000, 'after restart')`, [], src.name);
    await waitCaughtUp(two);
    await expectSameRows(
      { url: src.url, query: 'select * from items' },
      { url: dst.url, query: 'select * from items' },
      'id',
    );
    // The new target follows from when it appeared: it has only what came after.
    expect(await second.cluster.query('select id, v from items', [], second.name)).toEqual([
      { id: 1000, v: 'after restart' },
    ]);
    // The position is stored on the target itself, in the transaction of each batch.
    expect(await count(dst, `select count(*) as n from trigsync.applied_position where target = 'dst'`)).toBe(
      1,
    );
    await daemon.stop();
  });

  it('prunes what every target applied, and shows a target removed from the config holding the log', async () => {
    const { src, dst } = await pair();
    const gone = await otherTarget();
    const both = itemsConfig(src, { dst, gone });
    let daemon = await startDaemon(both);
    await src.cluster.query(`insert into items select g, 'x' from generate_series(1, 200) g`, [], src.name);
    await waitCaughtUp(both);
    await waitFor(async () => (await count(src, 'select count(*) as n from trigsync.change_log')) === 0, {
      what: 'the log to be pruned',
      timeoutMs: 20_000,
    });
    await daemon.stop();

    const one = itemsConfig(src, { dst });
    daemon = await startDaemon(one);
    await src.cluster.query(`update items set v = 'y'`, [], src.name);
    const status = await waitCaughtUp(one);
    const removed = status.targets.find((t) => t.name === 'gone');
    // 200 updates, each one change (its old and new row together).
    expect(removed).toMatchObject({ state: 'removed', backlog: 200 });
    expect(status.log.rows).toBe(200);
    await daemon.stop();
  });

  it('refuses to run against a schema that a newer trigsync installed', async () => {
    const { src } = await pair();
    const config = makeConfig({ source: { url: src.url }, tables: ['items'], targets: [] });
    await withClient(src.url, async (client) => {
      await installSource(client, config);
      await client.query(
        `insert into trigsync.schema_version (track, version, name) values ('source', 999, 'future')`,
      );
      await expect(installSource(client, config)).rejects.toThrow(
        /source version 999 is newer than this trigsync knows/,
      );
    });
  });

  it('install refuses a table without a primary key, a partition listed beside or without its partitioned table, and names a view, a sequence or a missing table for what it is; uninstall removes exactly what install made', async () => {
    const { src } = await pair();
    await src.cluster.query('create table loose (a int, b text)', [], src.name);
    const objects = `select (select count(*) from pg_class) || '/' || (select count(*) from pg_proc) || '/' ||
                            (select count(*) from pg_trigger) || '/' || (select count(*) from pg_namespace) as n`;
    const before = (await src.cluster.query<{ n: string }>(objects, [], src.name))[0]!.n;

    await src.cluster.query(
      `create view items_view as select * from items;
       create materialized view items_totals as select count(*) from items;
       create sequence numbers;
       create table parts (id int, k int, primary key (id, k)) partition by list (k);
       create table parts_1 partition of parts for values in (1) partition by range (id);
       create table parts_1a partition of parts_1 for values from (0) to (10);
       create table other (id int primary key) partition by range (id);
       create table other_1 partition of other for values from (0) to (10);`,
      [],
      src.name,
    );
    const bad = makeConfig({
      source: { url: src.url },
      tables: [
        'items',
        'loose',
        'items_view',
        'items_totals',
        'numbers',
        'nowhere',
        'parts_1a',
        'parts',
        'other_1',
      ],
      targets: [],
    });
    await withClient(src.url, async (client) => {
      const refused = await installSource(client, bad).catch((thrown: unknown) => thrown);
      expect(refused).toBeInstanceOf(ConfigError);
      // Each named, with what it is and what trigsync captures instead.
      expect((refused as ConfigError).problems).toEqual([
        expect.stringMatching(/public\.loose has no primary key/),
        'tables: public.items_view is a view, which no trigger captures: list the tables it reads (and make it on the targets)',
        'tables: public.items_totals is a materialized view, which no trigger captures: list the tables it reads (and make it on the targets)',
        'tables: public.numbers is a sequence: list it under `sequences`, or it follows the table that owns it',
        'tables: public.nowhere does not exist on the source',
        'tables: public.parts_1a is a partition of public.parts, which is listed too and captures its rows: list one of them',
        'tables: public.other_1 is a partition of public.other, and writes through public.other would not be ' +
          "captured: list public.other (a where on its partition key keeps to this partition's rows)",
      ]);
      await client.query(
        'drop view items_view; drop materialized view items_totals; drop sequence numbers; drop table parts, other',
      );

      const good = makeConfig({ source: { url: src.url }, tables: ['items'], targets: [] });
      await installSource(client, good);
      expect((await client.query<{ n: string }>(objects)).rows[0]!.n).not.toBe(before);
      await uninstallSource(client, good);
      expect((await client.query<{ n: string }>(objects)).rows[0]!.n).toBe(before);
    });
  });
});
