// PostgreSQL's native logical replication on the same case, to set trigsync's figures against. One
// subscription per target, created afresh for the case so that its slot starts at the current WAL
// position; disabled while the changes are produced; then timed from its enabling until the target shows
// a marker row committed after the changes. A subscriber applies in the source's commit order, so the
// marker is there only once everything before it is, and looking it up costs nothing, unlike count(*).
import { rowCount } from '../support/servers.js';
import { waitFor } from '../../test/support/wait.js';
import { subscribeNative, type NativeReplication } from '../support/logical.js';
import { produceSettled, type TargetResult, type ThroughputCase, type ThroughputResult } from './cases.js';
import { checkTargets, nativeTable, resetTables, type Rig, type TargetDatabase } from './setup.js';

/** The cases' keys start at 1. */
const markerId = 0;

export async function timeNative(
  rig: Rig,
  throughputCase: ThroughputCase,
  targets: readonly TargetDatabase[],
): Promise<ThroughputResult> {
  await resetTables(rig, nativeTable, targets);
  // Before the subscription, whose slot starts after these rows.
  await throughputCase.prefill?.(rig, nativeTable, targets);
  const subscriptions: NativeReplication[] = [];
  try {
    for (const [i, target] of targets.entries()) {
      subscriptions.push(
        await subscribeNative({
          name: `native_${i + 1}`,
          source: rig.admin,
          sourceUrl: rig.sourceUrl,
          target: target.client,
          tables: [nativeTable],
        }),
      );
    }
    for (const subscription of subscriptions) await subscription.disable();
    const before = await rowCount(rig.admin, nativeTable);
    await produceSettled(rig, throughputCase, nativeTable);
    // The rows the case wrote: every row there (inserts; an update of the rows prefilled) or every row
    // gone (a delete).
    const changes = Math.max(before, await rowCount(rig.admin, nativeTable));
    await rig.admin.query(`insert into ${nativeTable} (id, a, b, c) values ($1, 0, 'marker', now())`, [
      markerId,
    ]);

    const started = performance.now();
    await Promise.all(subscriptions.map((subscription) => subscription.enable()));
    const doneAt = await Promise.all(
      targets.map(async (target) => {
        await waitFor(() => hasMarker(target), {
          what: `${target.name} to receive every change by native replication`,
          timeoutMs: Math.max(600_000, changes * targets.length),
          intervalMs: 25,
        });
        return performance.now();
      }),
    );
    await checkTargets(rig, nativeTable, targets);

    const perTarget = targets.map(({ name }, i): TargetResult => {
      const ms = doneAt[i]! - started;
      return { name, seconds: ms / 1000, rowsPerSecond: (changes * 1000) / ms };
    });
    const seconds = Math.max(...perTarget.map((t) => t.seconds));
    return {
      case: throughputCase.key,
      replication: 'native',
      batchSize: null,
      targets: targets.length,
      changes,
      seconds,
      rowsPerSecond: (changes * targets.length) / seconds,
      perTarget,
    };
  } finally {
    for (const subscription of subscriptions) await subscription.drop();
  }
}

async function hasMarker(target: TargetDatabase): Promise<boolean> {
  const found = await target.client.query(`select 1 from ${nativeTable} where id = $1`, [markerId]);
  return found.rowCount === 1;
}
