/**
 * How a target sees trigsync's writes. Native logical replication applies with
 * session_replication_role = replica: the target's ordinary triggers and foreign-key actions do not
 * fire (the source already ran its own and logged what they did), `ENABLE REPLICA` and `ENABLE ALWAYS`
 * triggers do. trigsync does the same wherever the target role may set it (a superuser, a role granted
 * `SET ON PARAMETER session_replication_role` from PostgreSQL 15, a managed service's admin role).
 * Elsewhere it applies as `origin`: ordinary triggers fire, once per key for each change of a batch's
 * final state (src/apply/batch.ts), and foreign keys are checked, in the order batch.ts gives.
 */
import type pg from 'pg';

import { latestVersion, migrate, readInstalledVersion } from '../capture/migrations.js';
import { pipelinedPair, sendPipelined } from '../db/pipeline.js';
import { isStandbyResult, standbyStatement } from '../db/standby.js';
import { setTextForms } from '../db/text-forms.js';
import { ServerIsStandby, sqlState } from '../failure/errors.js';
import type { Snapshot } from '../changelog/snapshot.js';
import type { Position } from '../changelog/window.js';
import { shortRoundTrip } from './copy-in.js';
import { loadAppliedPosition } from './applied-position.js';
import { loadFloors } from './floors.js';
import { takeTargetLock, targetLockStatement } from './target-lock.js';

export type TriggerMode = 'replica' | 'origin';

/** Set the session to `replica` if the role may; returns the mode it applies in. */
export async function applyAsReplica(client: pg.ClientBase): Promise<TriggerMode> {
  const [outcome] = await Promise.allSettled([client.query(replicaStatement)]);
  return triggerModeOf(outcome);
}

const replicaStatement = 'set session_replication_role = replica';

function triggerModeOf(outcome: PromiseSettledResult<unknown>): TriggerMode {
  if (outcome.status === 'fulfilled') return 'replica';
  // 42501: the role may not set it.
  if (sqlState(outcome.reason) === '42501') return 'origin';
  throw outcome.reason;
}

/** What a worker starts from on its target. */
export interface TargetStart {
  mode: TriggerMode;
  /** The target's own record of what it applied from this source: the truth, which the source's trails. */
  position: Position | undefined;
  floors: Map<number, Snapshot>;
  /**
   * About one round trip: how long the target took to answer the session's first statement, or one
   * more on the warm backend where that took long (measureAgain).
   */
  roundTripMs: number;
}

/**
 * The apply session's settings: text forms that every server reads back the same way; commits that wait
 * for their flush unless a chunk says otherwise (the source's copy of the position relies on it,
 * whatever the target's own synchronous_commit); and row_security off, under which a statement that a
 * table's row-level security would filter fails instead. The plan refuses such tables (plan.ts); this
 * catches one whose security changed since: its policies would hide rows from updates and deletes,
 * which then change nothing, silently.
 */
const targetSessionSettings = `${setTextForms('session')}; set synchronous_commit = on; set row_security = off`;

/**
 * A worker's start on its target, in one round trip where the target's schema is current and the lock
 * free (nearly every start): the session's settings (targetSessionSettings), the trigger mode, the worker's lock on the target, the
 * schema's version, the position and the floors. The lock is taken the long way (takeTargetLock) only
 * when another session holds it; then, or where the schema is behind or a read failed, the schema is
 * migrated and the position and floors read again, under the lock.
 */
export async function startTargetSession(
  client: pg.Client,
  schema: string,
  origin: string,
  target: string,
): Promise<TargetStart> {
  const readPosition = () => loadAppliedPosition(client, schema, origin, target);
  const readFloors = () => loadFloors(client, schema, origin, target);
  // Started in this order, and answered in it: the reads run after the lock's statement.
  const sent = performance.now();
  let roundTripMs = NaN;
  const [styles, standby, replica, lock, version, position, floors] = await sendPipelined<unknown>(
    client,
    () => [
      client.query(targetSessionSettings).finally(() => (roundTripMs = performance.now() - sent)),
      client.query(standbyStatement),
      client.query(replicaStatement),
      client.query(targetLockStatement(origin, target)),
      readInstalledVersion(client, schema, 'target'),
      readPosition(),
      readFloors(),
    ],
  );
  if (styles!.status === 'rejected') throw styles!.reason;
  if (standby!.status === 'rejected') throw standby!.reason;
  // Before the migration and the lock, which would fail there with "read-only transaction". Parked and
  // tried again, as a failover may promote it.
  if (isStandbyResult(standby!.value as pg.QueryResult)) {
    throw new ServerIsStandby(`target ${target}`, `targets.${target}.url`, 'config');
  }
  roundTripMs = await measureAgain(client, roundTripMs);
  const mode = triggerModeOf(replica!);
  if (lock!.status === 'rejected') throw lock!.reason;
  const locked = ((lock!.value as pg.QueryResult).rows[0] as { locked?: boolean } | undefined)?.locked;
  if (locked !== true) await takeTargetLock(client, origin, target);
  if (version!.status === 'rejected') throw version!.reason;
  const installed = version!.value as number;
  if (
    locked === true &&
    installed === latestVersion('target', schema) &&
    position!.status === 'fulfilled' &&
    floors!.status === 'fulfilled'
  ) {
    return {
      mode,
      position: position!.value as Position | undefined,
      floors: floors!.value as Map<number, Snapshot>,
      roundTripMs,
    };
  }
  // Their failures (tables not made yet, say) are answered by the migration, or thrown again below.
  await migrate(client, schema, 'target', installed);
  const [again, againFloors] = await pipelinedPair(client, readPosition, readFloors);
  return { mode, position: again, floors: againFloors, roundTripMs };
}

/**
 * The session's first answer is its link's first measure (RoundTrip), and a fresh backend's first answer
 * on a busy host took 20-30 ms on one host: taken for the link's, it kept a session from copying runs of
 * 20,000 changes through (a COPY's worth from 1,000 rows a millisecond) and from growing its first
 * chunks. A long one is measured once more, on the warm backend: one round trip more at the start on a
 * link that is long indeed.
 */
async function measureAgain(client: pg.Client, firstMs: number): Promise<number> {
  if (shortRoundTrip(firstMs)) return firstMs;
  const sent = performance.now();
  await client.query('select');
  return Math.min(firstMs, performance.now() - sent);
}
