// A target in the source's own database, the rows copied into another schema: the target's tables of
// trigsync's schema live beside the source's, and the apply's writes are not captured again.
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

describe('a target in the source database', () => {
  it('takes the initial copy and the changes into another schema', async () => {
    const { source } = sharedClusters();
    const src = await freshDatabase(source);
    await source.query(
      `create table items (id int primary key, v text not null, n int);
      create schema copy; create table copy.items (id int primary key, v text not null, n int);
      insert into items select g, 'r' || g, g from generate_series(1, 100) g`,
      [],
      src.name,
    );
    const config = makeConfig({
      source: { url: src.url },
      tables: ['items'],
      targets: [{ name: 'self', url: src.url, tables: [{ source: 'items', target: 'copy.items' }] }],
    });
    const daemon = await startDaemon(config);
    try {
      await waitCaughtUp(config);
      await withClient(src.url, async (db) => {
        await db.query(`update items set n = -n where id % 3 = 0`);
        await db.query(`delete from items where id % 7 = 0`);
        await db.query(`insert into items select g, 'new', g from generate_series(101, 3000) g`);
      });
      await waitCaughtUp(config);
      await expectSameRows(
        { url: src.url, query: 'select * from items' },
        { url: src.url, query: 'select * from copy.items' },
        'id',
      );
      expect(await conflictsCounted(daemon)).toBe(0);
    } finally {
      await daemon.stop();
    }
  });
});
