// ALTER TABLE on a captured table, followed by capture at the moment it happens, whether a daemon runs
// or not. Columns renamed or dropped on a table whose capture names columns (those written through their
// text, hstore here and PostGIS types alike, and json ones): the triggers named them as they were when
// made, so every write to the table failed until the daemon made them anew, and for as long as no daemon
// ran; a migration that renames a column and fills it could not commit. A partition detached: its
// triggers logged its writes as the partitioned table's, so rows written to the detached table were
// written to the partitioned table on the targets.
import { describe, expect, it } from 'vitest';

import type { Config } from '../../src/config/types.js';
import { withClient } from '../support/cluster.js';
import { freshDatabase, sharedClusters, type FreshDatabase } from '../support/fixtures.js';
import { expectSameRows, makeConfig, startDaemon, waitCaughtUp } from '../support/replication.js';

interface Pair {
  src: FreshDatabase;
  b: FreshDatabase;
  config: Config;
  onBoth(sql: string): Promise<void>;
}

/** A source and a target with the same tables, `tables` captured. */
async function pair(schemaSql: string, tables: string[]): Promise<Pair> {
  const { source, target1 } = sharedClusters();
  const [src, b] = await Promise.all([freshDatabase(source), freshDatabase(target1)]);
  const onBoth = async (sql: string) => {
    for (const db of [src, b]) await db.cluster.query(sql, [], db.name);
  };
  await onBoth(`create extension if not exists hstore; ${schemaSql}`);
  const config = makeConfig({
    source: { url: src.url },
    tables,
    targets: [{ name: 'b', url: b.url, initialSync: 'none' }],
    apply: { pollIntervalMs: 100 },
    metrics: { enabled: false },
  });
  return { src, b, config, onBoth };
}

/** Runs `sql` on the source in one transaction, as a migration tool does. */
async function inOneTransaction(db: FreshDatabase, sql: string): Promise<void> {
  await withClient(db.url, async (client) => {
    await client.query('begin');
    await client.query(sql);
    await client.query('commit');
  });
}

const items = 'create table items (id int primary key, v text, n int, h hstore, j jsonb)';

function sameItems(p: Pair, columns: string): Promise<void> {
  return expectSameRows(
    { url: p.src.url, query: `select ${columns} from items` },
    { url: p.b.url, query: `select ${columns} from items` },
    'id',
  );
}

describe('capture after ALTER TABLE', () => {
  it('while no daemon runs: a migration that renames and drops columns, then writes, commits, and the target follows', async () => {
    const p = await pair(items, ['items']);
    let daemon = await startDaemon(p.config);
    await p.src.cluster.query(
      `insert into items select g, 'v' || g, g, hstore('k', g::text), jsonb_build_object('g', g)
         from generate_series(1, 10) g`,
      [],
      p.src.name,
    );
    await waitCaughtUp(p.config);
    await daemon.stop();

    const alter = `alter table items rename column n to amount;
                   alter table items drop column v;
                   alter table items rename column h to tags;
                   alter table items rename column j to doc;`;
    await inOneTransaction(
      p.src,
      `${alter}
       update items set amount = amount * 10, tags = tags || 'x=>"y z"' where id <= 3;
       insert into items (id, amount, tags, doc) values (11, 11, 'a=>1, b=>NULL', null), (12, 12, null, 'null');
       update items set doc = '{"k": [1, null]}' where id in (4, 11);
       delete from items where id = 5;`,
    );
    await p.b.cluster.query(alter, [], p.b.name);

    daemon = await startDaemon(p.config);
    await waitCaughtUp(p.config);
    await daemon.stop();
    // SQL NULL and JSON null stay apart, and hstore arrives whole: compare their text, and which are null.
    await sameItems(p, 'id, amount, tags::text, doc::text, doc is null as doc_null');
  });

  it('under a running daemon: a partitioned table (a partition named directly, its columns in another order) and a table that inherits', async () => {
    const p = await pair(
      `create table parts (id int not null, k int not null, h hstore, j json, primary key (id, k))
         partition by list (k);
       create table parts_1 partition of parts for values in (1);
       create table parts_2 (j json, h hstore, k int not null, id int not null);
       alter table parts attach partition parts_2 for values in (2);
       create table base (id int primary key, h hstore, n int);
       create table child (id int primary key) inherits (base);`,
      ['parts', 'base', 'child'],
    );
    const daemon = await startDaemon(p.config);
    const write = (sql: string) => p.src.cluster.query(sql, [], p.src.name);
    await write(`insert into parts select g, 1 + g % 2, hstore('g', g::text), json_build_object('g', g)
                   from generate_series(1, 10) g`);
    await write(
      `insert into child values (1, 'a=>1', 1), (2, 'b=>2', 2); insert into base values (3, 'c=>3', 3)`,
    );
    await waitCaughtUp(p.config);

    // The target first, while nothing is written: changes in flight keep the names they were captured under.
    const alter = `alter table parts rename column h to tags;
                   alter table parts rename column j to doc;
                   alter table base rename column h to tags;
                   alter table base drop column n;`;
    await p.b.cluster.query(alter, [], p.b.name);
    await inOneTransaction(
      p.src,
      `${alter}
       update parts set tags = tags || 'x=>y' where id <= 4;
       insert into parts_2 (id, k, tags, doc) values (12, 2, 'p=>2', null), (14, 2, null, 'null');
       update parts_2 set doc = '{"z": 1}' where id = 6;
       delete from parts_1 where id = 7;
       update base set tags = tags || 'u=>1' where id in (1, 3);
       delete from base where id = 2;
       insert into child values (4, 'd=>4');`,
    );
    await waitCaughtUp(p.config);
    await daemon.stop();
    for (const [table, columns] of [
      ['parts', 'id, k, tags::text, doc::text, doc is null as doc_null'],
      ['base', 'id, tags::text'],
      ['only base', 'id, tags::text'],
    ] as const) {
      await expectSameRows(
        { url: p.src.url, query: `select ${columns} from ${table}` },
        { url: p.b.url, query: `select ${columns} from ${table}` },
        'id',
      );
    }
  });

  it('triggers made by the previous release (columns by name) capture as before until install makes them anew', async () => {
    const p = await pair(items, ['items']);
    let daemon = await startDaemon(p.config);
    await daemon.stop();
    // sql/source/007's layout: the select list and the json columns by name.
    const { schema, applicationName } = p.config;
    const [{ oid }] = (await p.src.cluster.query<{ oid: string }>(
      `select 'items'::regclass::oid::text as oid`,
      [],
      p.src.name,
    )) as [{ oid: string }];
    await p.src.cluster.query(
      `drop trigger trigsync_capture_insert on items;
       create trigger trigsync_capture_insert after insert on items referencing new table as new_rows
         for each statement execute function ${schema}.capture('${applicationName}', '', '${oid}',
           'image."id", image."v", image."n", image."h"::text as "h", image."j"', 'j')`,
      [],
      p.src.name,
    );
    await p.src.cluster.query(
      `insert into items values (1, 'a', 1, 'a=>1', null), (2, 'b', 2, null, 'null')`,
      [],
      p.src.name,
    );
    const logged = await p.src.cluster.query<{ h: string; nulls: string[] | null }>(
      `select row->>'h' as h, nulls from ${schema}.change_log order by id`,
      [],
      p.src.name,
    );
    expect(logged).toEqual([
      { h: '"a"=>"1"', nulls: ['j'] },
      { h: null, nulls: [] },
    ]);
    daemon = await startDaemon(p.config);
    await waitCaughtUp(p.config);
    await daemon.stop();
    await sameItems(p, 'id, v, n, h::text, j::text, j is null as j_null');
  });

  it('a partition detached is captured no more, at once: its writes never reach the partitioned table on the targets', async () => {
    const p = await pair(
      `create table parts (id int not null, k int not null, v text, primary key (id, k)) partition by list (k);
       create table parts_1 partition of parts for values in (1);
       create table parts_2 partition of parts for values in (2);
       create table parts_3 partition of parts for values in (3) partition by range (id);
       create table parts_3a partition of parts_3 for values from (0) to (1000);`,
      ['parts'],
    );
    const daemon = await startDaemon(p.config);
    const write = (sql: string) => p.src.cluster.query(sql, [], p.src.name);
    await write(`insert into parts select g, 1 + g % 3, 'v' || g from generate_series(1, 30) g`);
    await waitCaughtUp(p.config);
    const detachedRows = `select id, k, v from parts where k = 2`;
    const before = await p.b.cluster.query(`${detachedRows} order by id`, [], p.b.name);
    expect(before).toHaveLength(10);

    // Detached on the source alone: the target keeps the rows (docs/operations.md, "Partitions").
    await write('alter table parts detach partition parts_2');
    await write(`insert into parts_2 values (100, 2, 'new');
                 update parts_2 set v = 'changed' where id in (2, 5);
                 delete from parts_2 where id = 8;`);
    await write('truncate parts_2');
    // Partitions still attached, named directly, at any depth, are captured as before.
    await write(`insert into parts_3a values (101, 3, 'deep'); update parts_1 set v = 'one' where id = 3;
                 delete from parts_3a where id = 3`);
    await waitCaughtUp(p.config);
    await daemon.stop();
    expect(await p.b.cluster.query(`${detachedRows} order by id`, [], p.b.name)).toEqual(before);
    const attached = 'select id, k, v from parts where k <> 2';
    await expectSameRows({ url: p.src.url, query: attached }, { url: p.b.url, query: attached }, 'id');
  });
});
