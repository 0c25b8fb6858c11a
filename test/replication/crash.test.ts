// G1 and G6 across crashes: the daemon, run as users run it, is killed with SIGKILL three times at
// random moments under load and started again; targets converge with nothing lost or applied twice.
import { describe, expect, it } from 'vitest';

import { ChildDaemon, makeConfig, waitCaughtUp } from '../support/replication.js';
import {
  expectWorkloadConverged,
  runWorkload,
  workloadDatabases,
  workloadConfig,
} from '../support/workload.js';

describe('daemon crashes', () => {
  it('converge after three SIGKILLs at random moments under load, nothing lost or doubled', async () => {
    const { src, a, b } = await workloadDatabases();
    const raw = workloadConfig(
      src,
      { a, b },
      {
        apply: { batchSize: 50, pollIntervalMs: 100 },
        metrics: { enabled: false },
        log: { level: 'debug' },
      },
    );
    const config = makeConfig(raw);
    const daemon = await ChildDaemon.create(raw);
    await daemon.start();

    const durationMs = 21_000;
    const load = runWorkload({
      url: src.url,
      writers: 8,
      lateCommitters: 2,
      durationMs,
      minCommitted: 301,
      keys: 200,
    });
    // Three kill moments, spread over the load, each at a random instant of its third.
    await daemon.killThreeTimes(durationMs);
    const result = await load;
    expect(result.committed).toBeGreaterThan(300);

    await waitCaughtUp(config);
    await expectWorkloadConverged(src, [a, b]);
    expect(await daemon.stop()).toBe(0);
  });
});
