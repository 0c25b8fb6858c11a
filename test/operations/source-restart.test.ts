// The source goes away under load, twice: a restart (fast shutdown) and a crash (SIGKILL of the
// postmaster). The daemon's LISTEN connection, lock connection and workers come back by themselves,
// every worker reads the log again from its stored position, and nothing is lost or applied twice.
import { describe, expect, it } from 'vitest';

import { freshDatabase, privateCluster, sharedClusters, waitFor } from '../support/fixtures.js';
import { httpStatus } from '../support/metrics.js';
import { ChildDaemon, makeConfig, waitCaughtUp } from '../support/replication.js';
import { delay } from '../support/wait.js';
import { expectWorkloadConverged, runWorkload, workloadTables, workloadConfig } from '../support/workload.js';

describe('a source restart', () => {
  it('under load: replication resumes by itself, /readyz follows the source, nothing lost', async () => {
    const cluster = await privateCluster('source');
    const { target1, target2 } = sharedClusters();
    const [src, a, b] = await Promise.all([
      freshDatabase(cluster),
      freshDatabase(target1),
      freshDatabase(target2),
    ]);
    for (const db of [src, a, b]) await db.cluster.query(workloadTables, [], db.name);
    const raw = workloadConfig(src, { a, b }, { apply: { batchSize: 200, pollIntervalMs: 200 } });
    const config = makeConfig(raw);
    const daemon = await ChildDaemon.create(raw);
    await daemon.start();
    const ready = (await daemon.metricsUrl()).replace(/\/metrics$/, '/readyz');
    await waitFor(async () => (await httpStatus(ready)) === 200, { what: 'ready' });

    const load = runWorkload({
      url: src.url,
      writers: 6,
      lateCommitters: 2,
      durationMs: 24_000,
      minCommitted: 201,
      keys: 300,
    });
    const marker = async (label: string): Promise<void> => {
      // A row written now must reach both targets without anyone touching the daemon.
      const id = Date.now();
      await src.cluster.query(`insert into events values ($1, 0, $2)`, [id, label], src.name);
      const at = Date.now();
      for (const target of [a, b]) {
        await waitFor(
          async () =>
            (await target.cluster.query(`select 1 from events where id = $1`, [id], target.name)).length ===
            1,
          { what: `the ${label} marker on ${target.name}`, timeoutMs: 15_000 },
        );
      }
      console.info(`${label}: replicating again ${Date.now() - at} ms after the first write`);
    };

    await delay(5_000);
    await cluster.stop();
    await waitFor(async () => (await httpStatus(ready)) === 503, { what: '/readyz to say not ready' });
    await delay(2_000);
    await cluster.start();
    await waitFor(async () => (await httpStatus(ready)) === 200, { what: '/readyz to say ready again' });
    await marker('after the restart');

    await delay(4_000);
    await cluster.kill();
    await delay(1_000);
    await cluster.start();
    await marker('after the crash');

    const result = await load;
    console.info('workload:', result);
    expect(result.committed).toBeGreaterThan(200);
    await waitCaughtUp(config);
    await expectWorkloadConverged(src, [a, b]);
    const log = await daemon.log();
    // Each outage ended the term (workers, listener, pruner) and a new one began once the source was back.
    expect(log.match(/leading: this daemon applies/g)?.length).toBeGreaterThanOrEqual(3);
    expect(await daemon.stop()).toBe(0);
  });
});
