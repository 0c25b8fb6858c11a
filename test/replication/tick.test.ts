// A tick's xid must be durable before anything relies on it: after a crash, an xid whose commit never
// reached the disk can be handed out again, to a writer whose changes the stored snapshot would take as
// seen (src/changelog/window.ts). PostgreSQL flushes no commit of a transaction that wrote no WAL, whatever
// synchronous_commit says; the tick writes some (sql/source/006_tick.sql).
import { describe, expect, it } from 'vitest';

import { migrate } from '../../src/capture/migrations.js';
import { takeTick, type Tick } from '../../src/changelog/window.js';
import { withClient } from '../support/cluster.js';
import { durableCluster, freshDatabase, privateCluster } from '../support/fixtures.js';

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

  // Issue #18: a writer with synchronous_commit = off that commits between the tick's xid and its snapshot
  // is seen as committed by the snapshot. If the server crashed before that commit reached the disk, its
  // xid would be handed out again and the newcomer's changes taken as seen. The tick flushes it first.
  it('flushes the commits its snapshot sees: an asynchronous writer that commits at that instant survives a crash', async () => {
    const cluster = await durableCluster('tick-async');
    await cluster.query(`alter system set wal_writer_delay = '10s'`);
    await cluster.query('select pg_reload_conf()');
    const db = await freshDatabase(cluster);
    await cluster.query('create table t (id int primary key, xid xid8)', [], db.name);
    let written: { xid: string; lsn: string } | undefined;
    const tick = await withClient(db.url, async (client) => {
      await migrate(client, 'trigsync', 'source');
      return withClient(db.url, async (writer) => {
        await writer.query('set synchronous_commit = off');
        return takeTick(client, 'trigsync', async () => {
          const rows = await writer.query<{ xid: string }>(
            `insert into t values (1, pg_current_xact_id()) returning xid::text`,
          );
          const lsn = await writer.query<{ lsn: string }>('select pg_current_wal_insert_lsn()::text as lsn');
          written = { xid: rows.rows[0]!.xid, lsn: lsn.rows[0]!.lsn };
        });
      });
    });
    const [state] = await cluster.query<{ flushed: boolean; seen: boolean }>(
      `select pg_current_wal_flush_lsn() >= $1::pg_lsn as flushed,
              pg_visible_in_snapshot($2::xid8, $3::pg_snapshot) as seen`,
      [written!.lsn, written!.xid, tick.snapshot],
      db.name,
    );
    expect(state, 'the snapshot sees the writer, whose commit is on disk when takeTick returns').toEqual({
      flushed: true,
      seen: true,
    });

    await cluster.kill();
    await cluster.start();
    const rows = await cluster.query<{ xid: string; next: string }>(
      'select xid::text, pg_current_xact_id()::text as next from t',
      [],
      db.name,
    );
    expect(rows.map((r) => r.xid)).toEqual([written!.xid]);
    expect(BigInt(rows[0]!.next)).toBeGreaterThan(BigInt(written!.xid));
  });

  // Part A of a window (src/changelog/window.ts) holds the changes at or below `from`'s id bound by the
  // transactions older than its xid; a change there by a newer one would be in neither part: lost. The
  // bound must be read before the xid is drawn, and exactly: `select last_value` from the sequence reads
  // its buffer unlocked and may catch the value 32 ahead that nextval() holds there while it logs. That
  // lost 22 changes of 129k with 8 writers flat out on a durable server. That moment is too brief for a
  // test to hit at will; the order of the reads it checks every time.
  it('bounds ids already drawn: no change at or below its id bound is newer than its xid', async () => {
    const cluster = await durableCluster('tick-bound');
    const db = await freshDatabase(cluster);
    const ticks: Tick[] = [];
    await withClient(db.url, async (client) => {
      await migrate(client, 'trigsync', 'source');
      const stop = AbortSignal.timeout(5_000);
      const writers = Array.from({ length: 8 }, () =>
        withClient(db.url, async (writer) => {
          while (!stop.aborted)
            // As under a capture trigger, the transaction has its xid before it draws ids.
            await writer.query(
              `begin; select pg_current_xact_id();
               insert into trigsync.change_log (relid, op, row)
               select 0, 'I', json_build_object('pad', repeat('x', 200)) from generate_series(1, 10);
               commit`,
            );
        }),
      );
      while (!stop.aborted) ticks.push(await takeTick(client, 'trigsync'));
      await Promise.all(writers);
      // Walking the log by id beside the ticks by bound: the newest transaction at or below each bound.
      const log = await client.query<{ id: string; txid: string }>(
        'select c.id::text as id, c.txid::text as txid from trigsync.change_log c order by c.id',
      );
      let next = 0;
      let newest = 0n;
      const ahead = [...ticks]
        .sort((a, b) => Number(a.idBound) - Number(b.idBound))
        .filter((tick) => {
          for (; next < log.rows.length && Number(log.rows[next]!.id) <= Number(tick.idBound); next++) {
            const txid = BigInt(log.rows[next]!.txid);
            if (txid > newest) newest = txid;
          }
          return newest >= BigInt(tick.nextXid);
        });
      expect(
        ahead.length,
        `ticks whose id bound ran ahead, of ${ticks.length}, over ${log.rows.length} ids`,
      ).toBe(0);
    });
  }, 60_000);
});
