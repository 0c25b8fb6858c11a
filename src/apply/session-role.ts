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

import { sqlState } from '../failure/errors.js';

export type TriggerMode = 'replica' | 'origin';

/** Set the session to `replica` if the role may; returns the mode it applies in. */
export async function applyAsReplica(client: pg.ClientBase): Promise<TriggerMode> {
  try {
    await client.query(`set session_replication_role = replica`);
    return 'replica';
  } catch (thrown) {
    // 42501: the role may not set it.
    if (sqlState(thrown) === '42501') return 'origin';
    throw thrown;
  }
}
