// Tables that inherit (CREATE TABLE .. INHERITS, not partitions), parent and child both captured, on a
// target with the same tables. A statement on the parent without ONLY reaches the child's rows too, and
// its capture trigger sees them in its transition tables; the child's own statements fire the child's.
// Each row must end on the target in the table it is in on the source, once: by the initial copy too.
import { describe, expect, it } from 'vitest';

import { withClient } from '../support/cluster.js';
import { freshDatabase, sharedClusters } from '../support/fixtures.js';
import {
  conflictsCounted,
  expectSameRows,
  makeConfig,
  startDaemon,
  waitCaughtUp,
} from '../support/replication.js';

const tables = `
  create table parent (id int primary key, v text);
  create table child (extra int) inherits (parent);
  alter table child add primary key (id);`;

const queries = [`select tableoid::regclass::text as in_table, * from parent`, `select * from child`];

/** Statements on the parent that reach the child's rows, with and without ONLY, keys moved, a TRUNCATE. */
const statements = [
  `insert into parent select g, 'p' || g from generate_series(1, 50) g`,
  `insert into child select g, 'c' || g, g from generate_series(101, 150) g`,
  `update parent set v = v || '!' where id % 3 = 0`,
  `delete from parent where id in (5, 105)`,
  `update parent set id = id + 1000 where id in (7, 107)`,
  `update only parent set v = 'only' where id % 4 = 0`,
  `delete from only parent where id in (8, 108)`,
  `update child set extra = -extra where id % 5 = 0`,
  `begin; truncate only child; insert into child values (200, 'after', 1); commit`,
  `insert into child select g, 'c' || g, g from generate_series(201, 240) g`,
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
      `insert into parent values (500, 'seed'), (501, 'seed'); insert into child values (600, 'seed', 1)`,
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
        await expectSameRows({ url: src.url, query }, { url: dst.url, query }, 'id');
      }
      for (const sql of statements) {
        await withClient(src.url, (db) => db.query(sql));
        await waitCaughtUp(config);
      }
      for (const query of queries) {
        await expectSameRows({ url: src.url, query }, { url: dst.url, query }, 'id');
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
        await expectSameRows({ url: src.url, query }, { url: dst.url, query }, 'id');
      }
      const onlyParent = await source.query<{ n: number }>(
        `select count(*)::int as n from only parent`,
        [],
        src.name,
      );
      expect(onlyParent[0]!.n).toBeGreaterThan(30);
      expect(await conflictsCounted(again)).toBe(0);
    } finally {
      await again.stop();
    }
  });
});
