// trigsync's side of a case: the case's changes captured while the daemon is stopped, then timed from
// the daemon's start until every target has committed the last of them (its batch:applied events).
import type { Config } from '../../src/config/types.js';
import { rowCount } from '../support/servers.js';
import { waitFor } from '../../test/support/wait.js';
import { drainLog, schema, waitCaughtUp } from '../support/trigsync.js';
import { produceSettled, type TargetResult, type ThroughputCase, type ThroughputResult } from './cases.js';
import {
  checkTargets,
  resetTables,
  trigsyncConfig,
  trigsyncTable,
  type Rig,
  type TargetDatabase,
} from './setup.js';

interface TargetProgress {
  applied: number;
  batches: number;
  /** Time spent in the target's transactions. */
  targetMs: number;
  /** When the batch that applied the last change committed. */
  doneAt: number;
}

export async function timeTrigsync(
  rig: Rig,
  throughputCase: ThroughputCase,
  targets: readonly TargetDatabase[],
  batchSize: number,
): Promise<ThroughputResult> {
  const config = trigsyncConfig(rig.sourceUrl, targets, batchSize);
  // Install and register the targets (a new one starts from now), let their workers set them up: every
  // case starts with live targets and an empty log.
  await rig.daemon.start(config);
  await drainLog(rig.admin, config);
  await rig.daemon.stop();
  await resetTables(rig, trigsyncTable, targets);
  await throughputCase.prefill?.(rig, trigsyncTable, targets);
  await produceSettled(rig, throughputCase, trigsyncTable);
  const result = await timeApply(rig, config, throughputCase);
  await checkTargets(rig, trigsyncTable, targets);
  await drainLog(rig.admin, config);
  await rig.daemon.stop();
  return result;
}

/** Starts the daemon on the captured backlog and times it until every target has applied all of it. */
async function timeApply(
  rig: Rig,
  config: Config,
  throughputCase: ThroughputCase,
): Promise<ThroughputResult> {
  const changes = await rowCount(rig.admin, `${schema}.change_log`);
  const progress = new Map<string, TargetProgress>(
    config.targets.map((t) => [t.name, { applied: 0, batches: 0, targetMs: 0, doneAt: NaN }]),
  );
  const started = performance.now();
  await rig.daemon.start(config, (events) =>
    events.on('batch:applied', (batch) => {
      const target = progress.get(batch.target);
      if (target === undefined) return;
      target.applied += batch.changes;
      target.batches++;
      target.targetMs += batch.durationMs;
      if (target.applied >= changes && Number.isNaN(target.doneAt)) target.doneAt = performance.now();
    }),
  );
  const startSeconds = (performance.now() - started) / 1000;
  const targets = config.targets.length;
  await waitFor(() => [...progress.values()].every((t) => !Number.isNaN(t.doneAt)), {
    what: 'every target to apply every change',
    // Generous: 1,000 rows/s at the least.
    timeoutMs: Math.max(600_000, changes * targets),
    intervalMs: 20,
  });
  // The events count changes read; status must agree that nothing is left.
  await waitCaughtUp(rig.admin, config);

  const perTarget = [...progress].map(([name, t]): TargetResult => {
    const ms = t.doneAt - started;
    return {
      name,
      seconds: ms / 1000,
      rowsPerSecond: (changes * 1000) / ms,
      batches: t.batches,
      targetShare: t.targetMs / ms,
    };
  });
  const seconds = Math.max(...perTarget.map((t) => t.seconds));
  return {
    case: throughputCase.key,
    replication: 'trigsync',
    batchSize: config.apply.batchSize,
    targets,
    changes,
    seconds,
    rowsPerSecond: (changes * targets) / seconds,
    startSeconds,
    perTarget,
  };
}
