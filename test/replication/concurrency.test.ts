// G1 and G2 under concurrency: 8 writers on overlapping keys, transactions that commit seconds after
// they wrote, and rollbacks, for 20 s; and 8 writers inserting flat out into a durable source, whose
// commits wait for the disk (the test clusters run with fsync off). No change is lost or reordered:
// every target equals the source.
import { describe, expect, it } from 'vitest';

import { withClient } from '../support/cluster.js';
import { durableCluster, freshDatabase, sharedClusters } from '../support/fixtures.js';
import { makeConfig, startDaemon, waitCaughtUp } from '../support/replication.js';
import {
  expectWorkloadConverged,
  runWorkload,
  workloadDatabases,
  workloadConfig,
  workloadTables,
} from '../support/workload.js';

describe('concurrent writers', () => {
  it('lose and reorder nothing: 8 writers, late committers and rollbacks for 20 s', async () => {
    const { src, a, b } = await workloadDatabases();
    // Small batches: many windows and chunk boundaries under load.
    const config = makeConfig(
      workloadConfig(src, { a, b }, { apply: { batchSize: 97, pollIntervalMs: 200 } }),
    );
    const daemon = await startDaemon(config);

    const result = await runWorkload({
      url: src.url,
      writers: 8,
      lateCommitters: 2,
      durationMs: 20_000,
      minCommitted: 301,
      keys: 200,
    });
    // Writers block on each other's row locks (late committers hold theirs for seconds): the counts are
    // modest, but every kind of transaction must have happened many times.
    console.info('workload', result);
    expect(result.committed).toBeGreaterThan(300);
    expect(result.lateCommitted).toBeGreaterThan(10);
    expect(result.rolledBack).toBeGreaterThan(20);

    await waitCaughtUp(config);
    await expectWorkloadConverged(src, [a, b]);
    await daemon.stop();
  });

  it('lose nothing from 8 writers inserting flat out into a durable source for 15 s', async () => {
    const cluster = await durableCluster('durable-source');
    const [src, a] = await Promise.all([freshDatabase(cluster), freshDatabase(sharedClusters().target1)]);
    for (const db of [src, a]) await db.cluster.query(workloadTables, [], db.name);
    const config = makeConfig(workloadConfig(src, { a }));
    const daemon = await startDaemon(config);

    const stop = AbortSignal.timeout(15_000);
    const inserted = await Promise.all(
      Array.from({ length: 8 }, (_, writer) =>
        withClient(src.url, async (client) => {
          let n = 0;
          while (!stop.aborted) {
            n++;
            await client.query('insert into events values ($1, $2, null)', [writer * 1e9 + n, writer]);
          }
          return n;
        }),
      ),
    );
    console.info(
      'inserted',
      inserted.reduce((sum, n) => sum + n, 0),
    );

    await waitCaughtUp(config);
    await expectWorkloadConverged(src, [a]);
    await daemon.stop();
  });
});
