/**
 * One applier per target: a worker holds a session advisory lock on the target, keyed by the source's
 * origin and the target's name, for as long as its connection lives. Leader election (src/daemon/
 * leadership.ts) decides which daemon works; this lock fences a former leader that has not noticed yet,
 * so two daemons never interleave batches on one target.
 *
 * Only the leader's workers take it, so a session found holding it belongs to a former leader: hung,
 * cut off, or not yet aware it was deposed. The new worker ends that session (same role, no privilege
 * needed): its batch in flight rolls back whole, with the position it would have recorded.
 */
import type pg from 'pg';

import { TrigsyncError } from '../failure/errors.js';
import { sleep } from '../lib/runnable.js';
import type { Statement } from './statements.js';

/** Another daemon's worker holds this target's lock and could not be ended: wait, do not park. */
export class TargetLockHeld extends TrigsyncError {
  constructor(readonly target: string) {
    super(
      `another trigsync daemon is applying to target ${target} (it holds the target's apply lock)`,
      'connection',
    );
  }
}

/** How long to wait for an ended holder's session to exit and release the lock. */
const releaseWaitMs = 5_000;
const releasePollMs = 50;

/** The statement that tries the lock of `origin`'s worker on `target`, answering `locked`. */
export function targetLockStatement(origin: string, target: string): Statement {
  return {
    text: `select pg_try_advisory_lock(hashtext('trigsync apply'), hashtext($1)) as locked`,
    values: [lockKey(origin, target)],
  };
}

function lockKey(origin: string, target: string): string {
  return `${origin}/${target}`;
}

async function tryTargetLock(client: pg.ClientBase, origin: string, target: string): Promise<boolean> {
  const result = await client.query<{ locked: boolean }>(targetLockStatement(origin, target));
  return result.rows[0]?.locked === true;
}

/** End the sessions that hold the lock; false when there was none or they may not be ended. */
async function endHolders(client: pg.ClientBase, key: string): Promise<boolean> {
  try {
    const result = await client.query<{ ended: boolean }>(
      `select pg_terminate_backend(l.pid) as ended from pg_locks l
        where l.locktype = 'advisory' and l.objsubid = 2 and l.granted
          and l.database = (select oid from pg_database where datname = current_database())
          and l.classid = hashtext('trigsync apply')::oid and l.objid = hashtext($1)::oid
          and l.pid <> pg_backend_pid()`,
      [key],
    );
    return result.rows.some((r) => r.ended);
  } catch {
    // Another role's session (42501): it cannot be ended from here.
    return false;
  }
}

/** Take the lock on this session, ending a former leader's holder if need be, or throw TargetLockHeld. */
export async function takeTargetLock(client: pg.ClientBase, origin: string, target: string): Promise<void> {
  if (await tryTargetLock(client, origin, target)) return;
  if (await endHolders(client, lockKey(origin, target))) {
    for (const deadline = Date.now() + releaseWaitMs; Date.now() < deadline;) {
      if (await tryTargetLock(client, origin, target)) return;
      await sleep(releasePollMs);
    }
  }
  throw new TargetLockHeld(target);
}
