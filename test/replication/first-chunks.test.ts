// A backlog's first batches after the daemon starts (src/apply/log-reader.ts, ChunkRamp): the first is
// small, so that the first rows land after one small read and apply; on a short link the next ones
// double up to apply.batchSize, on a long one (a proxy adding 10 ms each way) the second is whole. The
// table has an array column: a backlog of inserts into one without is copied through from its first
// change on a short link (test/replication/copy-in.test.ts), and never read by rows.
import { describe, expect, it } from 'vitest';

import { FaultProxy } from '../support/fault-proxy.js';
import { freshDatabase, sharedClusters } from '../support/fixtures.js';
import { expectSameItems, makeConfig, startDaemon, waitCaughtUp } from '../support/replication.js';

async function firstBatches(viaProxyMs: number | undefined): Promise<number[]> {
  const { source, target1 } = sharedClusters();
  const [src, dst] = await Promise.all([freshDatabase(source), freshDatabase(target1)]);
  for (const db of [src, dst])
    await db.cluster.query('create table items (id int primary key, v text, tags text[])', [], db.name);
  const proxy = viaProxyMs === undefined ? undefined : await FaultProxy.start(dst.url);
  proxy?.setLatency(viaProxyMs ?? 0);
  try {
    const config = makeConfig({
      source: { url: src.url },
      tables: ['items'],
      targets: [{ name: 'dst', url: proxy?.url(dst.url) ?? dst.url, initialSync: 'none' }],
      apply: { batchSize: 1000 },
      metrics: { enabled: false },
    });
    const first = await startDaemon(config);
    await waitCaughtUp(config);
    await first.stop();
    await src.cluster.query(
      `insert into items select g, 'backlog' from generate_series(1, 3000) g`,
      [],
      src.name,
    );
    const batches: number[] = [];
    const daemon = await startDaemon(config, undefined, (d) => {
      d.events.on('batch:applied', ({ changes }) => batches.push(changes));
    });
    await waitCaughtUp(config);
    await daemon.stop();
    await expectSameItems(src.url, dst.url);
    return batches;
  } finally {
    await proxy?.close();
  }
}

describe("a backlog's first batches", () => {
  it('start at 256 changes and double on a short link', async () => {
    const batches = await firstBatches(undefined);
    expect(batches[0]).toBe(256);
    // A loaded machine may time its own loopback as long: then the second batch is whole at once.
    expect([
      [256, 512, 1000, 1000, 232],
      [256, 1000, 1000, 744],
    ]).toContainEqual(batches);
  });

  it('are whole from the second on a long link', async () => {
    expect(await firstBatches(10)).toEqual([256, 1000, 1000, 744]);
  });
});
