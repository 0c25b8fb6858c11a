// Tables that inherit (CREATE TABLE .. INHERITS, not partitions), on a target with the same tables. A
// statement on the parent without ONLY reaches the child's rows too; a statement-level trigger fires for
// the table a statement names alone, and sees the child's rows in its transition tables. Each row must
// end on the target in the table it is in on the source, once: by the initial copy too, where a parent
// and its child hold the same key, and where only the children are captured (partitioning the old way,
// rows routed to the children by the parent's trigger, updated and deleted through the parent).
import { describe, expect, it } from 'vitest';

import { triggerName } from '../../src/capture/triggers.js';
import { verify } from '../../src/verify/verify.js';
import { withClient } from '../support/cluster.js';
import { freshDatabase, sharedClusters, waitFor } from '../support/fixtures.js';
import {
  conflictsCounted,
  expectSameRows,
  makeConfig,
  startDaemon,
  waitCaughtUp,
} from '../support/replication.js';

const tables = `
  create table parent (id int primary key, v text, doc jsonb);
  create table child (extra int) inherits (parent);
  alter table child add primary key (id);`;

/** Each table's rows, keyed by table and id: a parent and its child may hold the same id. */
const queries = [
  `select tableoid::regclass || ':' || id as row_key, * from parent`,
  `select tableoid::regclass || ':' || id as row_key, * from child`,
];

/** Statements on the parent that reach the child's rows, with and without ONLY, keys moved, a TRUNCATE. */
const statements = [
  `insert into parent select g, 'p' || g from generate_series(1, 50) g`,
  `insert into child (id, v, extra) select g, 'c' || g, g from generate_series(101, 150) g`,
  // Keys the parent holds too.
  `insert into child (id, v, extra) select g, 'shared' || g, -g from generate_series(1, 20) g`,
  // A json column, where SQL NULL and JSON null look alike in an image.
  `update parent set doc = case when id % 2 = 0 then 'null'::jsonb else jsonb_build_object('n', id) end where id % 6 = 0`,
  `update child set doc = null where id % 12 = 0`,
  `update parent set v = v || '!' where id % 3 = 0`,
  `delete from parent where id in (5, 105)`,
  `update parent set id = id + 1000 where id in (7, 107)`,
  `update only parent set v = 'only' where id % 4 = 0`,
  `delete from only parent where id in (8, 108)`,
  `update child set extra = -extra where id % 5 = 0`,
  `begin; truncate only child; insert into child (id, v, extra) values (200, 'after', 1); commit`,
  `insert into child (id, v, extra) select g, 'c' || g, g from generate_series(201, 240) g`,
  `update parent set v = 'moved', id = id + 2000 where id in (9, 209)`,
];

describe('inheriting tables', () => {
  it('keep each row in its own table through statements on the parent, with and without ONLY', async () => {
    const { source, target1 } = sharedClusters();
    const src = await freshDatabase(source);
    const dst = await freshDatabase(target1);
    for (const db of [src, dst]) await db.cluster.query(tables, [], db.name);
    // Rows before the start: the initial copy takes each table's own.
    await source.query(
      `insert into parent values (500, 'seed'), (501, 'seed'); insert into child (id, v, extra) values (600, 'seed', 1)`,
      [],
      src.name,
    );
    const config = makeConfig({
      source: { url: src.url },
      tables: ['parent', 'child'],
      targets: [{ name: 'dst', url: dst.url }],
    });
    const daemon = await startDaemon(config);
    try {
      await waitCaughtUp(config);
      for (const query of queries) {
        await expectSameRows({ url: src.url, query }, { url: dst.url, query }, 'row_key');
      }
      for (const sql of statements) {
        await withClient(src.url, (db) => db.query(sql));
        await waitCaughtUp(config);
      }
      for (const query of queries) {
        await expectSameRows({ url: src.url, query }, { url: dst.url, query }, 'row_key');
      }
      // And all of them again as one backlog, applied in one batch.
      await withClient(src.url, (db) => db.query(`truncate parent`));
      await waitCaughtUp(config);
    } finally {
      await daemon.stop();
    }
    await withClient(src.url, async (db) => {
      for (const sql of statements) await db.query(sql);
    });
    const again = await startDaemon(config);
    try {
      await waitCaughtUp(config);
      for (const query of queries) {
        await expectSameRows({ url: src.url, query }, { url: dst.url, query }, 'row_key');
      }
      const onlyParent = await source.query<{ n: number }>(
        `select count(*)::int as n from only parent`,
        [],
        src.name,
      );
      expect(onlyParent[0]!.n).toBeGreaterThan(30);
      expect(await conflictsCounted(again)).toBe(0);
      const report = await verify(config);
      expect(report.targets[0]!.tables.map((t) => [t.table, t.equal, t.sourceRows])).toEqual([
        ['public.parent', true, onlyParent[0]!.n],
        ['public.child', true, expect.any(Number)],
      ]);
    } finally {
      await again.stop();
    }
  });
});

describe('tables partitioned by inheritance', () => {
  it('capture the changes made through a parent that is not captured, each in its child', async () => {
    const { source, target1 } = sharedClusters();
    const src = await freshDatabase(source);
    const dst = await freshDatabase(target1);
    const schema = `
      create table measurement (id int primary key, at date not null, v int);
      create table measurement_2024 (check (at < '2025-01-01')) inherits (measurement);
      create table measurement_2025 (check (at >= '2025-01-01')) inherits (measurement);
      alter table measurement_2024 add primary key (id);
      alter table measurement_2025 add primary key (id);
      create function measurement_route() returns trigger language plpgsql as $$
      begin
        if new.at < '2025-01-01' then insert into measurement_2024 values (new.*);
        else insert into measurement_2025 values (new.*);
        end if;
        return null;
      end $$;
      create trigger route before insert on measurement for each row execute function measurement_route();`;
    for (const db of [src, dst]) await db.cluster.query(schema, [], db.name);
    const children = ['measurement_2024', 'measurement_2025'];
    const config = makeConfig({
      source: { url: src.url },
      tables: children,
      targets: [{ name: 'dst', url: dst.url }],
    });
    // Through the parent only, as an application partitioning this way writes.
    const writes = [
      `insert into measurement select g, date '2024-09-01' + g, g from generate_series(1, 400) g`,
      `update measurement set v = v * 10 where id % 7 = 0`,
      `delete from measurement where id % 11 = 0`,
      `update measurement set id = id + 1000, v = -v where id % 13 = 0`,
      `begin; update measurement set v = 0 where id < 50; delete from measurement where id between 390 and 400; commit`,
    ];
    const same = async (): Promise<void> => {
      for (const table of children) {
        const query = `select * from ${table}`;
        await expectSameRows({ url: src.url, query }, { url: dst.url, query }, 'id');
      }
      const parentRows = await target1.query<{ n: number }>(
        `select count(*)::int as n from only measurement`,
        [],
        dst.name,
      );
      expect(parentRows[0]!.n).toBe(0);
    };
    // As a backlog the daemon finds at its start, then live, a statement at a time.
    const daemon = await startDaemon(config);
    try {
      await waitCaughtUp(config);
    } finally {
      await daemon.stop();
    }
    await withClient(src.url, async (db) => {
      for (const sql of writes) await db.query(sql);
    });
    const again = await startDaemon(config);
    try {
      await waitCaughtUp(config);
      await same();
      await withClient(src.url, async (db) => {
        for (const sql of writes.slice(1)) {
          await db.query(`truncate measurement_2024, measurement_2025`);
          await db.query(writes[0]!);
          await db.query(sql);
        }
      });
      await waitCaughtUp(config);
      await same();
      expect(await conflictsCounted(again)).toBe(0);
    } finally {
      await again.stop();
    }
  });
});

describe('a captured table that begins to inherit', () => {
  it('has its capture made by row while the daemon runs, then a statement through it leaves its new child alone', async () => {
    const { source, target1 } = sharedClusters();
    const src = await freshDatabase(source);
    const dst = await freshDatabase(target1);
    for (const db of [src, dst])
      await db.cluster.query(`create table base (id int primary key, v text)`, [], db.name);
    const config = makeConfig({
      source: { url: src.url },
      tables: ['base'],
      targets: [{ name: 'dst', url: dst.url }],
    });
    const daemon = await startDaemon(config);
    try {
      await source.query(`insert into base select g, 'b' || g from generate_series(1, 20) g`, [], src.name);
      await waitCaughtUp(config);
      // A child neither captured nor on the target's side of the mapping: its rows are its own.
      const child = `create table extra (note text) inherits (base); alter table extra add primary key (id)`;
      for (const db of [src, dst]) await db.cluster.query(child, [], db.name);
      await target1.query(`insert into extra values (1, 'target', 'kept')`, [], dst.name);
      // The capture watcher makes the parent's UPDATE trigger one per row (pg_trigger.tgtype bit 0).
      await waitFor(
        async () => {
          const rows = await source.query<{ by_row: boolean }>(
            `select tgtype & 1 = 1 as by_row from pg_trigger
            where tgrelid = 'base'::regclass and tgname = $1`,
            [triggerName(config.schema, 'update')],
            src.name,
          );
          return rows[0]?.by_row === true;
        },
        { what: 'the update trigger of base made by row' },
      );
      await withClient(src.url, async (db) => {
        await db.query(`insert into extra values (1, 'source', 'x'), (2, 'source', 'y')`);
        await db.query(`update base set v = v || '!' where id <= 5`);
        await db.query(`delete from base where id in (2, 6)`);
      });
      await waitCaughtUp(config);
      const query = `select * from only base`;
      await expectSameRows({ url: src.url, query }, { url: dst.url, query }, 'id');
      expect(await target1.query(`select * from extra`, [], dst.name)).toEqual([
        { id: 1, v: 'target', note: 'kept' },
      ]);
      expect(await conflictsCounted(daemon)).toBe(0);
    } finally {
      await daemon.stop();
    }
  });
});
