/**
 * One applier per target: a worker holds a session advisory lock on the target, keyed by the source's
 * origin and the target's name, for as long as its connection lives. Leader election (src/daemon/
 * leadership.ts) decides which daemon works; this lock fences a former leader that has not noticed yet,
 * so two daemons never interleave batches on one target.
 */
import type pg from 'pg';

import { TrigsyncError } from '../failure/errors.js';

/** Another daemon's worker holds this target's lock: wait, do not park. */
export class TargetLockHeld extends TrigsyncError {
  constructor(readonly target: string) {
    super(
      `another trigsync daemon is applying to target ${target} (it holds the target's apply lock)`,
      'connection',
    );
  }
}

/** Take the lock on this session, or throw TargetLockHeld. */
export async function takeTargetLock(client: pg.ClientBase, origin: string, target: string): Promise<void> {
  const result = await client.query<{ locked: boolean }>(
    `select pg_try_advisory_lock(hashtext('trigsync apply'), hashtext($1)) as locked`,
    [`${origin}/${target}`],
  );
  if (result.rows[0]?.locked !== true) throw new TargetLockHeld(target);
}
