// Vitest global setup: starts the shared clusters (source, target1, target2) for the whole run and
// provides their description to test workers. Cleanup has three layers: this teardown, a SIGINT/SIGTERM
// handler for Ctrl-C, and the detached watchdog for when vitest itself is killed.
//
// Environment: TRIGSYNC_TEST_PG=embedded|docker (see cluster.ts); TRIGSYNC_TEST_KEEP=1 stops the servers
// at the end but keeps their data dirs (and later runs leave them alone); TRIGSYNC_TEST_VERBOSE=1 prints
// how long the shared clusters took to start.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { clusterKind, createCluster, type PgCluster } from './cluster.js';
import {
  SHARED_CLUSTER_NAMES,
  createRunRoot,
  keepRequested,
  startWatchdog,
  testBaseDir,
  type PgRunInfo,
} from './run-root.js';
import { KEEP_MARKER, reapRunRoot, sweepStaleRuns } from './watchdog.js';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const startedAt = Date.now();
  for (const dir of sweepStaleRuns(testBaseDir())) console.warn(`[trigsync-test] removed stale run ${dir}`);

  const runRoot = await createRunRoot();
  startWatchdog(runRoot);
  const keep = keepRequested();
  // Vitest exits 1 ms after a signal without running teardowns; the reaper is synchronous so it
  // finishes first. Should nothing exit after all, the signal's default action applies.
  const onSignal = (signal: NodeJS.Signals): void => {
    reapRunRoot(runRoot, { keep });
    setTimeout(() => process.kill(process.pid, signal), 1000).unref();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const kind = clusterKind();
  const clusters: PgCluster[] = [];
  const started = await Promise.allSettled(
    SHARED_CLUSTER_NAMES.map(async (name) => {
      const cluster = await createCluster({ name, dataDir: join(runRoot, name) });
      clusters.push(cluster);
      await cluster.start();
    }),
  );
  const failure = started.find((result) => result.status === 'rejected');
  if (failure) {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await Promise.allSettled(clusters.map((cluster) => cluster.destroy()));
    reapRunRoot(runRoot);
    throw failure.reason;
  }

  const info: PgRunInfo = {
    runRoot,
    kind,
    clusters: clusters.map((cluster) => cluster.describe()),
  };
  // For people looking at a hung or kept run: ports, passwords, data dirs.
  writeFileSync(join(runRoot, 'run.json'), `${JSON.stringify(info, null, 2)}\n`);
  project.provide('trigsyncPg', info);
  if (process.env['TRIGSYNC_TEST_VERBOSE'] === '1') {
    console.log(
      `[trigsync-test] ${clusters.length} clusters up in ${Date.now() - startedAt} ms in ${runRoot}`,
    );
  }

  return async function teardown(): Promise<void> {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await Promise.allSettled(clusters.map((cluster) => (keep ? cluster.stop() : cluster.destroy())));
    // Private clusters of tests that did not clean up, and anything else still running under the root.
    if (keep) writeFileSync(join(runRoot, KEEP_MARKER), '');
    reapRunRoot(runRoot, { keep });
    if (keep) {
      console.log(
        `[trigsync-test] TRIGSYNC_TEST_KEEP=1: servers stopped, data kept in ${runRoot} ` +
          '(run.json lists the clusters; remove the directory when done)',
      );
    }
  };
}
