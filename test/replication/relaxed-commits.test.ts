// The chunks of a window that more chunks follow commit without waiting for their flush
// (src/apply/chunk.ts), except where the source's copy of the position is due
// (src/worker/position-mirror.ts); the window's last chunk, or such a chunk, makes them durable. The pruner goes by that copy: it must never be of
// a position that a crash of the target can take back.
import { describe, expect, it } from 'vitest';

import { loadRegisteredPosition } from '../../src/changelog/targets.js';
import { withClient } from '../support/cluster.js';
import { durableCluster, waitFor, type PgCluster } from '../support/fixtures.js';
import { caughtUpPair, expectSameItems, startDaemon, waitCaughtUp } from '../support/replication.js';

/** WAL flushes that sessions (not the WAL writer) of the cluster waited for, as far as reported. */
async function sessionFlushes(cluster: PgCluster): Promise<number> {
  const rows = await cluster.query<{ n: string }>(
    `select coalesce(sum(fsyncs), 0)::text as n from pg_stat_io
      where object = 'wal' and backend_type = 'client backend'`,
  );
  return Number(rows[0]!.n);
}

/** Once the daemon's sessions are gone, and so have reported their counts: two reads a second apart agree. */
async function settledFlushes(cluster: PgCluster, database: string): Promise<number> {
  let last = -1;
  let now = -1;
  await waitFor(
    async () => {
      const sessions = await cluster.query<{ n: number }>(
        `select count(*)::int as n from pg_stat_activity where datname = $1 and application_name = 'trigsync'`,
        [database],
      );
      [last, now] = [now, await sessionFlushes(cluster)];
      return sessions[0]!.n === 0 && now === last;
    },
    { what: "the target's flush count to settle", intervalMs: 1_000, timeoutMs: 30_000 },
  );
  return now;
}

describe("a backlog's chunks", () => {
  it("commit without waiting for the flush; the source's copy of the position is never ahead of what a killed target kept", async () => {
    const cluster = await durableCluster('relaxed');
    // The WAL writer flushes what it wrote within this delay: made long, only commits flush.
    await cluster.query(`alter system set wal_writer_delay = '10s'`);
    await cluster.query('select pg_reload_conf()');
    const { src, dst, config } = await caughtUpPair({ batchSize: 20 }, cluster);
    const backlog = (from: number) =>
      src.cluster.query(
        `insert into items select g, 'backlog' from generate_series($1::int, $1::int + 3999) g`,
        [from],
        src.name,
      );

    // One transaction of 4,000 rows: one window of 200 chunks.
    await backlog(1);
    const before = await settledFlushes(cluster, dst.name);
    let batches = 0;
    const started = performance.now();
    const second = await startDaemon(config, undefined, (d) => d.events.on('batch:applied', () => batches++));
    await waitCaughtUp(config);
    const elapsedMs = performance.now() - started;
    await second.stop();
    const flushes = (await settledFlushes(cluster, dst.name)) - before;
    const said = `${flushes} flushes waited for over ${batches} batches in ${Math.round(elapsedMs)} ms`;
    console.info(said);
    expect(batches).toBeGreaterThanOrEqual(200);
    // One commit that waits each time the position's copy is due (every 100 ms), and a few for the
    // start, the window's end and the stop: not one a batch, as a slow machine might still make it.
    expect(flushes, said).toBeLessThan(batches);
    expect(flushes, said).toBeLessThanOrEqual(elapsedMs / 100 + 10);

    // Killed half-way through the next: what the target kept covers what the source's copy says.
    await backlog(4001);
    let applied = 0;
    const third = await startDaemon(config, undefined, (d) =>
      d.events.on('batch:applied', ({ changes }) => (applied += changes)),
    );
    await waitFor(() => Promise.resolve(applied >= 1_000), { what: 'half the backlog applied' });
    await cluster.kill();
    const copied = await withClient(src.url, (c) => loadRegisteredPosition(c, config.schema, 'dst'));
    await cluster.start();
    const kept = await dst.cluster.query<{ n: number }>('select count(*)::int as n from items', [], dst.name);
    console.info(
      `killed after ${applied} changes applied; the source counts ${copied!.appliedChanges - 4000}, the target kept ${kept[0]!.n - 4000}`,
    );
    expect(copied!.appliedChanges, 'changes the source counts as applied').toBeLessThanOrEqual(kept[0]!.n);
    // The worker reconnects and resumes from what the target kept.
    await waitCaughtUp(config);
    await third.stop();
    await expectSameItems(src.url, dst.url);
  });
});
