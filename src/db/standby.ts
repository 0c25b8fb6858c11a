/**
 * A server in recovery (a hot standby) takes no writes: a source's or a target's URL that leads to one
 * (a read replica's address, the old primary after a failover, a failover under way) is said as such
 * (ServerIsStandby), where every write failed with "cannot execute INSERT in a read-only transaction"
 * and the daemon tried again without saying why.
 */
import type pg from 'pg';

import { ServerIsStandby } from '../failure/errors.js';

/** The statement that tells: true on a standby. */
export const standbyStatement = 'select pg_is_in_recovery() as standby';

/** Whether a result of standbyStatement is a standby's. */
export function isStandbyResult(result: pg.QueryResult): boolean {
  return (result.rows[0] as { standby?: boolean } | undefined)?.standby === true;
}

/**
 * Throws ServerIsStandby for a standby: `role` names the server (`source`, `target reporting`),
 * `setting` the config key that leads to it, `kind` what follows (ServerIsStandby).
 */
export async function assertPrimary(
  client: pg.ClientBase,
  role: string,
  setting: string,
  kind: 'connection' | 'config',
): Promise<void> {
  if (isStandbyResult(await client.query(standbyStatement))) throw new ServerIsStandby(role, setting, kind);
}

/** `check`'s finding for a server that is a standby; undefined for a primary. */
export async function standbyProblem(
  client: pg.ClientBase,
  role: string,
  setting: string,
): Promise<string | undefined> {
  return isStandbyResult(await client.query(standbyStatement))
    ? new ServerIsStandby(role, setting, 'config').message
    : undefined;
}
