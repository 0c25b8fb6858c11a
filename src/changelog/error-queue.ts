/**
 * A target's error queue on the source (G5): the change that failed on it, how and how often. While a
 * target has an entry it is parked: nothing later is applied to it until the change applies or an
 * operator skips it (recorded in `skipped_change`).
 */
import type pg from 'pg';

import { ident } from '../config/identifiers.js';
import { ConfigError } from '../failure/errors.js';

export interface ErrorQueueEntry {
  target: string;
  changeId: number;
  table: string;
  op: string;
  key: string | null;
  sqlstate: string | null;
  message: string;
  attempts: number;
  firstFailedAt: string;
  lastFailedAt: string;
}

export interface FailedChange {
  changeId: number;
  table: string;
  op: string;
  /** The key object as JSON text. */
  key: string | null;
  sqlstate: string | undefined;
  message: string;
  /** Later changes that a skip of this one drops too (a conflict's key in the same batch). */
  alsoSkips?: number[] | undefined;
}

/** Record (or count again) the change that failed, and park the target. */
export async function recordFailure(
  client: pg.ClientBase,
  schema: string,
  target: string,
  failed: FailedChange,
): Promise<void> {
  const s = ident(schema);
  await client.query(
    `insert into ${s}.error_queue (target, change_id, table_name, op, key, sqlstate, message, also_skips)
     values ($1, $2, $3, $4, $5::json, $6, $7, $8)
     on conflict (target, change_id) do update set attempts = error_queue.attempts + 1,
       sqlstate = excluded.sqlstate, message = excluded.message, also_skips = excluded.also_skips,
       last_failed_at = now()`,
    [
      target,
      failed.changeId,
      failed.table,
      failed.op,
      failed.key,
      failed.sqlstate ?? null,
      failed.message,
      failed.alsoSkips ?? [],
    ],
  );
  await parkTarget(client, schema, target, failed.message);
}

/** Mark the target parked with its last error (also for failures that name no change). */
export async function parkTarget(
  client: pg.ClientBase,
  schema: string,
  target: string,
  message: string,
): Promise<void> {
  await client.query(
    `update ${ident(schema)}.target set state = 'parked', last_error = $2,
       parked_since = coalesce(parked_since, now()), updated_at = now() where name = $1`,
    [target, message],
  );
}

/** The target applied past its failed changes: they leave the queue. */
export async function clearFailures(
  client: pg.ClientBase,
  schema: string,
  target: string,
  appliedId: number,
): Promise<void> {
  await client.query(`delete from ${ident(schema)}.error_queue where target = $1 and change_id <= $2`, [
    target,
    appliedId,
  ]);
}

/** A target parked for a reason other than a change (a copy, its schema, a lost position). */
export interface ParkedTarget {
  target: string;
  since: string;
  message: string;
}

/** Parked targets with nothing in their error queue: what `errors` shows besides the queue. */
export async function parkedWithoutChange(
  client: pg.ClientBase,
  schema: string,
  target?: string,
): Promise<ParkedTarget[]> {
  const s = ident(schema);
  const result = await client.query<{ target: string; since: Date; message: string | null }>(
    `select t.name as target, t.parked_since as since, t.last_error as message from ${s}.target t
      where t.state = 'parked' and ($1::text is null or t.name = $1)
        and not exists (select from ${s}.error_queue q where q.target = t.name)
      order by t.name`,
    [target ?? null],
  );
  return result.rows.map((r) => ({
    target: r.target,
    since: (r.since ?? new Date()).toISOString(),
    message: r.message ?? 'no error recorded',
  }));
}

export async function listErrors(
  client: pg.ClientBase,
  schema: string,
  target?: string,
): Promise<ErrorQueueEntry[]> {
  const result = await client.query<{
    target: string;
    change_id: number;
    table_name: string;
    op: string;
    key: string | null;
    sqlstate: string | null;
    message: string;
    attempts: number;
    first_failed_at: Date;
    last_failed_at: Date;
  }>(
    `select target, change_id, table_name, op, key::text as key, sqlstate, message, attempts, first_failed_at,
            last_failed_at
       from ${ident(schema)}.error_queue where $1::text is null or target = $1 order by target, change_id`,
    [target ?? null],
  );
  return result.rows.map((r) => ({
    target: r.target,
    changeId: r.change_id,
    table: r.table_name,
    op: r.op,
    key: r.key,
    sqlstate: r.sqlstate,
    message: r.message,
    attempts: r.attempts,
    firstFailedAt: r.first_failed_at.toISOString(),
    lastFailedAt: r.last_failed_at.toISOString(),
  }));
}

/**
 * Drop one failed change for one target (and the changes its entry says go with it): it must be in
 * that target's error queue. Records each skip with the change's content, who and when; returns the
 * recorded row of the named change.
 */
/** A change an operator skipped for a target: its table and operation, and who skipped it. */
export interface SkippedChange {
  table: string;
  op: string;
  skippedBy: string;
}

export async function skipChange(
  client: pg.ClientBase,
  schema: string,
  target: string,
  changeId: number,
): Promise<SkippedChange> {
  const s = ident(schema);
  await client.query('begin');
  try {
    const queued = await client.query<{
      table_name: string;
      op: string;
      message: string;
      also_skips: number[];
    }>(
      `delete from ${s}.error_queue where target = $1 and change_id = $2
       returning table_name, op, message, also_skips::int8[]`,
      [target, changeId],
    );
    const entry = queued.rows[0];
    if (entry === undefined) {
      throw new ConfigError(
        `change ${changeId} is not in the error queue of target ${target} (see trigsync errors ${target})`,
      );
    }
    const skipped = await client.query<{ skipped_by: string }>(
      `insert into ${s}.skipped_change (target, change_id, table_name, op, row, error)
       select $1, c.id, $3, coalesce(l.op, $4), l.row,
              case when c.id = $2 then $5::text else format('skipped with change %s: %s', $2, $5::text) end
         from unnest($2::int8 || $6::int8[]) as c(id)
         left join ${s}.change_log l on l.id = c.id
       on conflict (target, change_id) do nothing
       returning skipped_by`,
      [target, changeId, entry.table_name, entry.op, entry.message, entry.also_skips],
    );
    await client.query('commit');
    // No row returned: this change was skipped before (and queued again since); that skip stands.
    const skippedBy = skipped.rows[0]?.skipped_by ?? 'an earlier skip';
    return { table: entry.table_name, op: entry.op, skippedBy };
  } catch (thrown) {
    await client.query('rollback').catch(() => undefined);
    throw thrown;
  }
}

/** The changes skipped for a target that may still be ahead of it. */
export async function loadSkipped(
  client: pg.ClientBase,
  schema: string,
  target: string,
): Promise<Set<number>> {
  const result = await client.query<{ change_id: number }>(
    `select change_id from ${ident(schema)}.skipped_change k
      where target = $1 and exists (select from ${ident(schema)}.change_log c where c.id = k.change_id)`,
    [target],
  );
  return new Set(result.rows.map((r) => r.change_id));
}
