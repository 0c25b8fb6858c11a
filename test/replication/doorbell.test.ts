// The doorbell (issue #18): capture never fails a two-phase commit, and the workers are woken at once
// even when the doorbell cannot ring (a server that can prepare transactions) or rang for nothing (a
// writer that rang and rolled back). The poll is a minute long here: only a wake can be fast.
import { describe, expect, it } from 'vitest';

import type { Config } from '../../src/config/types.js';
import {
  connect,
  freshDatabase,
  ident,
  privateCluster,
  sharedClusters,
  waitFor,
  type FreshDatabase,
} from '../support/fixtures.js';
import { makeConfig, startDaemon, waitCaughtUp } from '../support/replication.js';
import { delay } from '../support/wait.js';

const table = 'create table items (id int primary key, v text)';

function itemsConfig(src: FreshDatabase, dst: FreshDatabase): Config {
  return makeConfig({
    source: { url: src.url },
    tables: ['items'],
    targets: [{ name: 'dst', url: dst.url, initialSync: 'none' }],
    apply: { pollIntervalMs: 60_000 },
  });
}

const rowsOn = async (db: FreshDatabase): Promise<number> =>
  Number((await db.cluster.query<{ n: string }>('select count(*) as n from items', [], db.name))[0]!.n);

/** Far sooner than the minute-long poll: only a wake can have brought it. */
async function arrives(dst: FreshDatabase, rows: number): Promise<void> {
  await waitFor(async () => (await rowsOn(dst)) === rows, {
    what: `the target to hold ${rows} rows`,
    timeoutMs: 10_000,
  });
}

describe('the doorbell', () => {
  it('never fails a PREPARE TRANSACTION, and wakes the workers at each COMMIT PREPARED', async () => {
    const cluster = await privateCluster('source');
    await cluster.query('alter system set max_prepared_transactions = 10');
    await cluster.restart();
    const [src, dst] = await Promise.all([freshDatabase(cluster), freshDatabase(sharedClusters().target1)]);
    for (const db of [src, dst]) await db.cluster.query(table, [], db.name);
    const config = itemsConfig(src, dst);
    const daemon = await startDaemon(config);
    await waitCaughtUp(config);
    const writer = await connect(src.url);
    for (let i = 1; i <= 20; i++) {
      await writer.query('begin');
      await writer.query(`insert into items values ($1, 'prepared')`, [i]);
      await writer.query(`prepare transaction 't${i}'`);
      // Every other one stays prepared for a while, as while a coordinator waits for its other
      // participants: the daemon sees its change id long before the change becomes visible.
      if (i % 2 === 0) await delay(600);
      await writer.query(`commit prepared 't${i}'`);
      await arrives(dst, i);
    }
    await writer.end();
    await daemon.stop();
  });

  it('is woken at once after a writer rang and rolled back', async () => {
    const { source, target1 } = sharedClusters();
    const [src, dst] = await Promise.all([freshDatabase(source), freshDatabase(target1)]);
    for (const db of [src, dst]) await db.cluster.query(table, [], db.name);
    const config = itemsConfig(src, dst);
    const s = ident(config.schema);
    // Armed, the doorbell's sequence reads NULL; the writer that rings draws 1 (sql/source/014).
    const doorbell = {
      text: `select pg_sequence_last_value($1::regclass) as drawn`,
      values: [`${s}.doorbell`],
    };
    const daemon = await startDaemon(config);
    await waitCaughtUp(config);
    const writer = await connect(src.url);
    // A captured write first: once it arrived and the doorbell reads armed, the idle worker has armed it
    // since (the write rang it, or found it rung already), and will not arm it again by itself.
    await writer.query(`insert into items values (1, 'committed')`);
    await arrives(dst, 1);
    for (let round = 1; round <= 3; round++) {
      await waitFor(async () => (await writer.query<{ drawn: unknown }>(doorbell)).rows[0]!.drawn === null, {
        what: 'the idle worker to arm the doorbell',
      });
      await writer.query('begin');
      await writer.query(`insert into items values ($1, 'rolled back')`, [2 * round]);
      const { drawn } = (await writer.query<{ drawn: unknown }>(doorbell)).rows[0]!;
      expect(String(drawn), 'the rolled-back writer rang').toBe('1');
      await writer.query('rollback');
      // The doorbell reads rung now, so this writer does not ring: only the listener can wake the worker.
      await writer.query(`insert into items values ($1, 'committed')`, [2 * round + 1]);
      await arrives(dst, round + 1);
    }
    await writer.end();
    await daemon.stop();
  });

  it("is armed as a live window's changes apply: each change costs its window's tick and one look after it", async () => {
    const { source, target1 } = sharedClusters();
    const [src, dst] = await Promise.all([freshDatabase(source), freshDatabase(target1)]);
    for (const db of [src, dst]) await db.cluster.query(table, [], db.name);
    const config = itemsConfig(src, dst);
    const daemon = await startDaemon(config);
    await waitCaughtUp(config);
    await arrives(dst, 0);
    const writer = await connect(src.url);
    const before = daemon.logReads!.ticksTaken;
    const changes = 20;
    for (let i = 1; i <= changes; i++) {
      await writer.query(`insert into items values ($1, 'live')`, [i]);
      await arrives(dst, i);
    }
    // Each change: the tick of its window and the look after the arming, which finds nothing and waits
    // (the poll is a minute). Arming only after an empty look took a third tick per change, in the way
    // of the next change: 58 here at the head before. A ring that lands during a look takes one more at most.
    const ticks = daemon.logReads!.ticksTaken - before;
    expect(ticks).toBeGreaterThanOrEqual(changes);
    expect(ticks).toBeLessThanOrEqual(2.5 * changes);
    await writer.end();
    await daemon.stop();
  });
});
