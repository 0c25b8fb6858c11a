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

import { sendPipelined } from '../db/pipeline.js';
import { sqlState } from '../failure/errors.js';
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

/**
 * A worker's target session made ready in one round trip (three across a slow link otherwise): text
 * forms that every server reads back the same way, the trigger mode, and the worker's lock on the
 * target, taken the long way (takeTargetLock) only when another session holds it.
 */
export async function openTargetSession(
  client: pg.Client,
  origin: string,
  target: string,
): Promise<TriggerMode> {
  const [styles, replica, lock] = await sendPipelined<pg.QueryResult>(client, () => [
    client.query(`set datestyle = 'ISO, YMD'; set intervalstyle = 'postgres'`),
    client.query(replicaStatement),
    client.query(targetLockStatement(origin, target)),
  ]);
  if (styles!.status === 'rejected') throw styles!.reason;
  const mode = triggerModeOf(replica!);
  if (lock!.status === 'rejected') throw lock!.reason;
  const locked = (lock!.value.rows[0] as { locked?: boolean } | undefined)?.locked === true;
  if (!locked) await takeTargetLock(client, origin, target);
  return mode;
}
