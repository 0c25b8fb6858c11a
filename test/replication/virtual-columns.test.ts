// A row filter on a virtual generated column (PostgreSQL 18, where a generated column is virtual unless
// STORED). A capture trigger's transition table holds NULL for such a column, so a filter evaluated on
// the row image alone read NULL and dropped every change of the table, while the initial copy, filtering
// the table itself, kept the rows: the stream and the copy disagreed without a word. The filter now
// computes the column from the image, and both keep the same rows.
import { describe, expect, it } from 'vitest';

import { withClient } from '../support/cluster.js';
import { freshDatabase, serverMajor, sharedClusters, waitFor } from '../support/fixtures.js';
import {
  conflictsCounted,
  expectSameRows,
  makeConfig,
  startDaemon,
  targetStatus,
  waitCaughtUp,
} from '../support/replication.js';

const lines = `
  create table lines (
    id int primary key,
    qty int not null,
    price numeric(10, 2) not null,
    total numeric(12, 2) generated always as (qty * price) virtual,
    note text)`;

const virtualColumns = serverMajor() >= 18;

describe.runIf(virtualColumns)('a virtual generated column', () => {
  it('filters the stream as the copy does, on the value the source computes', async () => {
    const { source, target1 } = sharedClusters();
    const src = await freshDatabase(source);
    const dst = await freshDatabase(target1);
    await source.query(lines, [], src.name);
    await target1.query(lines, [], dst.name);
    // Rows before the start: the initial copy filters them on the table.
    await source.query(
      `insert into lines (id, qty, price) select g, g % 7, (g % 40) * 2.5 from generate_series(1, 200) g`,
      [],
      src.name,
    );
    const where = 'total >= 100';
    const config = makeConfig({
      source: { url: src.url },
      tables: ['lines'],
      targets: [{ name: 'dst', url: dst.url, tables: [{ source: 'lines', where }] }],
    });
    const daemon = await startDaemon(config);
    try {
      await waitCaughtUp(config);
      await withClient(src.url, async (db) => {
        await db.query(
          `insert into lines (id, qty, price, note) select g, g % 9, (g % 30) * 3.5, 'new' from generate_series(201, 600) g`,
        );
        // Into the filter and out of it through the columns the total is computed from.
        await db.query(`update lines set qty = qty + 20 where id % 11 = 0`);
        await db.query(`update lines set price = 0 where id % 13 = 0`);
        await db.query(`update lines set note = 'kept' where id % 17 = 0`);
        await db.query(`delete from lines where id % 19 = 0`);
      });
      await waitCaughtUp(config);
      const kept = await source.query<{ n: string }>(
        `select count(*)::text as n from lines where ${where}`,
        [],
        src.name,
      );
      // Most rows pass and many do not: the filter was put to work both ways.
      expect(Number(kept[0]!.n)).toBeGreaterThan(150);
      expect(Number(kept[0]!.n)).toBeLessThan(500);
      await expectSameRows(
        { url: src.url, query: `select * from lines where ${where}` },
        { url: dst.url, query: 'select * from lines' },
        'id',
      );
      expect(await conflictsCounted(daemon)).toBe(0);
    } finally {
      await daemon.stop();
    }
  });

  it('is refused by name in a column list, whose target would get NULL for it', async () => {
    const { source, target1 } = sharedClusters();
    const src = await freshDatabase(source);
    const dst = await freshDatabase(target1);
    await source.query(lines, [], src.name);
    // The target keeps totals as plain values: written from a row image, each would be NULL.
    await target1.query(
      `create table lines (id int primary key, qty int, price numeric(10, 2), total numeric(12, 2), note text)`,
      [],
      dst.name,
    );
    const config = makeConfig({
      source: { url: src.url },
      tables: ['lines'],
      targets: [
        {
          name: 'dst',
          url: dst.url,
          initialSync: 'none',
          tables: [{ source: 'lines', columns: ['id', 'qty', 'price', 'total'] }],
        },
      ],
    });
    const daemon = await startDaemon(config);
    try {
      await source.query(`insert into lines (id, qty, price) values (1, 2, 3)`, [], src.name);
      const status = await waitFor(
        async () => {
          const found = await targetStatus(config, 'dst');
          return found.state === 'parked' ? found : undefined;
        },
        { what: 'the target to park on its column list' },
      );
      expect(status.lastError).toMatch(/column total is a virtual generated column on the source/);
      expect(await target1.query(`select * from lines`, [], dst.name)).toEqual([]);
    } finally {
      await daemon.stop();
    }
  });
});
