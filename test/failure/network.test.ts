// G1, G2 and G4 over a faulty network: the daemon reaches the source and the target through proxies
// (test/support/fault-proxy.ts) that add latency, reset every connection again and again, or hold all
// traffic for seconds as a partition does, while a writer commits steadily. Afterwards the target holds
// exactly the source's rows (nothing lost, nothing out of order) and no backlog is left.
import { afterEach, describe, expect, it } from 'vitest';

import { FaultProxy } from '../support/fault-proxy.js';
import { freshDatabase, sharedClusters } from '../support/fixtures.js';
import { makeConfig, startDaemon, waitCaughtUp } from '../support/replication.js';
import { delay } from '../support/wait.js';
import { expectWorkloadConverged, steadyWriter, workloadTables } from '../support/workload.js';

const proxies: FaultProxy[] = [];
afterEach(async () => {
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});

/**
 * Source and target on the shared clusters; the daemon reaches each through a proxy of its own.
 * `batchSize`: small batches put more batch boundaries under the faults.
 */
async function topology(batchSize?: number, silenceTimeoutMs?: number) {
  const { source, target1 } = sharedClusters();
  const [src, a] = await Promise.all([freshDatabase(source), freshDatabase(target1)]);
  for (const db of [src, a]) await db.cluster.query(workloadTables, [], db.name);
  const [toSource, toTarget] = await Promise.all([FaultProxy.start(src.url), FaultProxy.start(a.url)]);
  proxies.push(toSource, toTarget);
  const config = makeConfig({
    source: { url: toSource.url(src.url) },
    tables: ['items', 'events'],
    targets: [{ name: 'a', url: toTarget.url(a.url), initialSync: 'none' }],
    apply: {
      pollIntervalMs: 200,
      ...(batchSize === undefined ? {} : { batchSize }),
      ...(silenceTimeoutMs === undefined ? {} : { silenceTimeoutMs }),
    },
    retry: { initialDelayMs: 50, maxDelayMs: 500 },
  });
  return { src, a, toSource, toTarget, config };
}

/** The topology with the daemon running and a writer committing every `writeIntervalMs`. */
async function running(options: {
  batchSize?: number;
  writeIntervalMs: number;
  latencyMs?: number;
  silenceTimeoutMs?: number;
}) {
  const setup = await topology(options.batchSize, options.silenceTimeoutMs);
  setup.toSource.setLatency(options.latencyMs ?? 0);
  setup.toTarget.setLatency(options.latencyMs ?? 0);
  const daemon = await startDaemon(setup.config);
  const writer = steadyWriter(setup.src.url, options.writeIntervalMs);
  return { ...setup, daemon, writer };
}

/** Stop the writer; then the target catches up and holds exactly the source's rows. */
async function expectConverged(
  { src, a, config, daemon, writer }: Awaited<ReturnType<typeof running>>,
  minimumWrites: number,
): Promise<void> {
  expect(await writer.stop()).toBeGreaterThan(minimumWrites);
  await waitCaughtUp(config);
  await expectWorkloadConverged(src, [a]);
  await daemon.stop();
}

describe('over a faulty network', () => {
  // A slow writer: this one alternates two tables, so that each change is a run of its own and costs
  // two statements on the target, each a round trip: 40 ms here.
  it('applies everything in order with 20 ms of latency each way on both links', async () => {
    const run = await running({ writeIntervalMs: 50, latencyMs: 20 });
    await delay(5_000);
    await expectConverged(run, 50);
  });

  it('loses nothing when every connection is reset again and again, mid-batch', async () => {
    const run = await running({ batchSize: 50, writeIntervalMs: 2 });
    // Cuts at intervals that do not divide each other, so that they land in every phase of a batch:
    // reading, applying, committing on the target, recording the position on the source.
    let cuts = 0;
    const until = Date.now() + 8_000;
    for (let i = 1; Date.now() < until; i++) {
      await delay(130);
      cuts += run.toTarget.cut();
      if (i % 3 === 0) cuts += run.toSource.cut();
    }
    expect(cuts).toBeGreaterThan(20);
    await expectConverged(run, 100);
  });

  it('goes on where it was after a partition of either link heals', async () => {
    const run = await running({ batchSize: 50, writeIntervalMs: 5 });
    for (const link of [run.toTarget, run.toSource]) {
      await delay(1_000);
      // Held mid-stream: queries in flight wait for their replies, new connections for their handshake.
      link.partition();
      await delay(4_000);
      link.heal();
    }
    await delay(1_000);
    await expectConverged(run, 100);
  });

  it('gives up connections black-holed for good (half-open) and goes on over new ones', async () => {
    const run = await running({ batchSize: 50, writeIntervalMs: 5, silenceTimeoutMs: 1_000 });
    for (const link of [run.toTarget, run.toSource]) {
      await delay(1_000);
      // Mid-stream, the open connections go silent for good; without the silence timeout the worker
      // would wait for TCP keepalive (minutes) and the target would not catch up in time.
      expect(link.blackHole()).toBeGreaterThan(0);
    }
    await delay(2_000);
    await expectConverged(run, 100);
  });
});
