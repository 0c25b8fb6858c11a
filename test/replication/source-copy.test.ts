// Rows loaded on the source by COPY FROM (its capture triggers fire as for INSERT), into a plain table,
// a partitioned table and one of its partitions named directly.
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { from as copyFrom } from 'pg-copy-streams';
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

describe('COPY FROM on the source', () => {
  it('is captured into a plain table, a partitioned table and a partition named directly', async () => {
    const { source, target1 } = sharedClusters();
    const [src, b] = await Promise.all([freshDatabase(source), freshDatabase(target1)]);
    const ddl = `create table items (id int primary key, v text not null, n int);
                 create table events (id int, at date not null, v text, primary key (id, at)) partition by range (at);
                 create table events_1 partition of events for values from ('2024-01-01') to ('2024-07-01');
                 create table events_2 partition of events for values from ('2024-07-01') to ('2025-01-01');`;
    for (const db of [src, b]) await db.cluster.query(ddl, [], db.name);
    const config = makeConfig({
      source: { url: src.url },
      tables: ['items', 'events'],
      targets: [{ name: 'b', url: b.url }],
    });
    const daemon = await startDaemon(config);
    try {
      await withClient(src.url, async (db) => {
        const lines = Array.from(
          { length: 3000 },
          (_, i) => `${i + 1}\trow ${i}\t${i % 7 === 0 ? '\\N' : i}\n`,
        );
        await pipeline(Readable.from(lines), db.query(copyFrom('copy items from stdin')));
        const ev = Array.from(
          { length: 2000 },
          (_, i) => `${i + 1}\t2024-${String((i % 12) + 1).padStart(2, '0')}-15\tev ${i}\n`,
        );
        await pipeline(Readable.from(ev), db.query(copyFrom('copy events from stdin')));
        await pipeline(
          Readable.from(['5001\t2024-02-02\tdirect\n']),
          db.query(copyFrom('copy events_1 from stdin')),
        );
      });
      await waitCaughtUp(config);
      for (const query of ['select * from items', 'select * from events']) {
        await expectSameRows({ url: src.url, query }, { url: b.url, query }, 'id');
      }
      expect(await conflictsCounted(daemon)).toBe(0);
    } finally {
      await daemon.stop();
    }
  });
});
