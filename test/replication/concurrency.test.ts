// G1 and G2 under concurrency: 8 writers on overlapping keys, transactions that commit seconds after
// they wrote, and rollbacks, for 30 s. No change is lost or reordered: every target equals the source.
import { describe, expect, it } from 'vitest';

import { freshDatabase, sharedClusters } from '../support/fixtures.js';
import { expectSameRows, makeConfig, startDaemon, waitCaughtUp } from '../support/replication.js';
import { runWorkload, workloadTables } from '../support/workload.js';

describe('concurrent writers', () => {
  it('lose and reorder nothing: 8 writers, late committers and rollbacks for 30 s', async () => {
    const { source, target1, target2 } = sharedClusters();
    const src = await freshDatabase(source);
    const a = await freshDatabase(target1);
    const b = await freshDatabase(target2);
    for (const [cluster, db] of [
      [source, src],
      [target1, a],
      [target2, b],
    ] as const) {
      await cluster.query(workloadTables, [], db.name);
    }
    const config = makeConfig({
      source: { url: src.url },
      tables: ['items', 'events'],
      targets: [
        { name: 'a', url: a.url, initialSync: 'none' },
        // Small batches: many windows and chunk boundaries under load.
        { name: 'b', url: b.url, initialSync: 'none' },
      ],
      apply: { batchSize: 97, pollIntervalMs: 200 },
    });
    const daemon = await startDaemon(config);

    const result = await runWorkload({
      url: src.url,
      writers: 8,
      lateCommitters: 2,
      durationMs: 30_000,
      keys: 200,
    });
    // Writers block on each other's row locks (late committers hold theirs for seconds): the counts are
    // modest, but every kind of transaction must have happened many times.
    console.info('workload', result);
    expect(result.committed).toBeGreaterThan(300);
    expect(result.lateCommitted).toBeGreaterThan(10);
    expect(result.rolledBack).toBeGreaterThan(20);

    await waitCaughtUp(config);
    for (const target of [a, b]) {
      await expectSameRows(
        { url: src.url, query: 'select * from items' },
        { url: target.url, query: 'select * from items' },
        'id',
      );
      await expectSameRows(
        { url: src.url, query: 'select * from events' },
        { url: target.url, query: 'select * from events' },
        'id',
      );
    }
    await daemon.stop();
  });
});
