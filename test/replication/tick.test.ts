// A tick's xid must be durable before anything relies on it: after a crash, an xid whose commit never
// reached the disk can be handed out again, to a writer whose changes the stored snapshot would take as
// seen (src/log/window.ts). PostgreSQL flushes no commit of a transaction that wrote no WAL, whatever
// synchronous_commit says; the tick writes some (sql/source/006_tick.sql).
import { describe, expect, it } from 'vitest';

import { migrate } from '../../src/capture/migrations.js';
import { takeTick } from '../../src/log/window.js';
import { withClient } from '../support/cluster.js';
import { freshDatabase, privateCluster } from '../support/fixtures.js';

describe('a tick', () => {
  it('is on disk when takeTick returns, even where synchronous_commit is off', async () => {
    const cluster = await privateCluster('tick');
    // The WAL writer would flush an unflushed commit within its delay: make that delay long.
    await cluster.query(`alter system set wal_writer_delay = '10s'`);
    await cluster.query(`alter system set synchronous_commit = off`);
    await cluster.query('select pg_reload_conf()');
    const db = await freshDatabase(cluster);
    await withClient(db.url, async (client) => {
      await migrate(client, 'trigsync', 'source');
      const unflushed: number[] = [];
      // Background WAL (autovacuum, running-xacts records) may land between the tick and the check:
      // one clean tick proves it, and without the flush no tick is ever clean.
      for (let i = 0; i < 5; i++) {
        await takeTick(client, 'trigsync');
        const lag = await client.query<{ bytes: string }>(
          'select pg_current_wal_insert_lsn() - pg_current_wal_flush_lsn() as bytes',
        );
        unflushed.push(Number(lag.rows[0]!.bytes));
      }
      expect(Math.min(...unflushed), `WAL bytes not flushed after each tick: ${unflushed.join(', ')}`).toBe(
        0,
      );
    });
  });
});
