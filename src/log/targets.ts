/** The source's registry of targets: positions (trailing the targets' own) and states. */
import type pg from 'pg';

import { forgetCopied } from '../capture/table-set.js';
import { ident } from '../config/identifiers.js';
import type { TargetConfig } from '../config/types.js';
import type { TargetState } from '../lib/events.js';
import {
  fromStored,
  positionAt,
  positionColumns,
  positionValues,
  takeTick,
  type Position,
  type StoredPosition,
} from './window.js';

/**
 * Register the configured targets that are new (they follow from now, after a copy of every table
 * when their initialSync is `copy`) and mark the ones no longer
 * configured as removed: a removed target keeps holding the log until it is dropped, so that adding
 * it back resumes where it was.
 */
export async function registerTargets(
  client: pg.ClientBase,
  schema: string,
  targets: readonly Pick<TargetConfig, 'name' | 'initialSync'>[],
): Promise<{ added: string[]; removed: string[] }> {
  const names = targets.map((t) => t.name);
  const s = ident(schema);
  const known = await client.query<{ name: string; state: TargetState }>(
    `select name, state from ${s}.target`,
  );
  const existing = new Map(known.rows.map((r) => [r.name, r.state]));
  const added: string[] = [];
  for (const { name, initialSync } of targets) {
    if (existing.get(name) === 'removed') {
      await client.query(`update ${s}.target set state = 'catching_up', updated_at = now() where name = $1`, [
        name,
      ]);
    } else if (!existing.has(name)) {
      const values = positionValues(positionAt(await takeTick(client, schema)));
      await client.query(
        `insert into ${s}.target (name, sync_tables, sync_requested_at, ${positionColumns.join(', ')})
         values ($1, $2, case when $2::text[] is not null then now() end,
                 ${positionColumns.map((_, i) => `$${i + 3}`).join(', ')})
         on conflict (name) do nothing`,
        [name, initialSync === 'copy' ? [] : null, ...values],
      );
      added.push(name);
    }
  }
  const removed = [...existing.keys()].filter((n) => !names.includes(n) && existing.get(n) !== 'removed');
  if (removed.length > 0) {
    await client.query(
      `update ${s}.target set state = 'removed', updated_at = now() where name = any($1::text[])`,
      [removed],
    );
  }
  return { added, removed };
}

export async function loadRegisteredPosition(
  client: pg.ClientBase,
  schema: string,
  name: string,
): Promise<{ position: Position; state: TargetState; appliedChanges: number } | undefined> {
  const result = await client.query<StoredPosition & { state: TargetState; applied_changes: string }>(
    `select state, applied_changes, ${positionColumns.map((c) => `${c}::text as ${c}`).join(', ')}
       from ${ident(schema)}.target where name = $1`,
    [name],
  );
  const row = result.rows[0];
  return row === undefined
    ? undefined
    : { position: fromStored(row), state: row.state, appliedChanges: Number(row.applied_changes) };
}

/** Update the source's copy of a target's position after the target committed it. */
export async function saveRegisteredPosition(
  client: pg.ClientBase,
  schema: string,
  name: string,
  position: Position,
  state: TargetState,
  appliedChanges: number,
): Promise<void> {
  // Parameters: $1 name, $2 state, $3 changes applied, then the position's columns in order.
  const assignments = positionColumns.map((c, i) => `${c} = $${i + 4}`).join(', ');
  await client.query(
    `update ${ident(schema)}.target set ${assignments},
       state = $2, applied_changes = applied_changes + $3,
       last_applied_at = case when $3 > 0 then now() else last_applied_at end,
       last_error = case when $2 in ('live', 'catching_up') then null else last_error end,
       parked_since = null, updated_at = now()
     where name = $1`,
    [name, state, appliedChanges, ...positionValues(position)],
  );
}

export async function saveTargetError(
  client: pg.ClientBase,
  schema: string,
  name: string,
  message: string,
): Promise<void> {
  await client.query(
    `update ${ident(schema)}.target set last_error = $2, updated_at = now() where name = $1`,
    [name, message],
  );
}

/** A sync asked of a target: these source tables (empty: all of its tables), asked at that time. */
export interface SyncRequest {
  tables: string[];
  /** Text, exact to the microsecond: it tells this request from a newer one. */
  requestedAt: string;
}

export async function loadSyncRequest(
  client: pg.ClientBase,
  schema: string,
  name: string,
): Promise<SyncRequest | undefined> {
  const result = await client.query<{ tables: string[] | null; requested_at: string | null }>(
    `select sync_tables as tables, sync_requested_at::text as requested_at from ${ident(schema)}.target where name = $1`,
    [name],
  );
  const row = result.rows[0];
  if (row?.tables === null || row?.tables === undefined) return undefined;
  return { tables: row.tables, requestedAt: row.requested_at ?? '' };
}

/**
 * Ask for a sync of `tables` (none: every table); it outlives restarts. A request still pending is
 * widened, not replaced: its tables are copied too. Returns false when the target is not registered.
 */
export async function requestSync(
  client: pg.ClientBase,
  schema: string,
  name: string,
  tables: readonly string[],
): Promise<boolean> {
  const result = await client.query(
    `update ${ident(schema)}.target set
       sync_tables = case
         when cardinality($2::text[]) = 0 or cardinality(sync_tables) = 0 then '{}'::text[]
         when sync_tables is null then $2::text[]
         else array(select distinct t from unnest(sync_tables || $2::text[]) t order by t) end,
       sync_requested_at = clock_timestamp(),
       sync_table = null, sync_rows = null, sync_rows_estimate = null, sync_started_at = null
     where name = $1`,
    [name, tables],
  );
  return result.rowCount === 1;
}

/** How far the copy is, for `sync` and `status` to show. */
export async function saveSyncProgress(
  client: pg.ClientBase,
  schema: string,
  name: string,
  progress: { table: string; rows: number; estimate: number | undefined; startedAt: Date },
): Promise<void> {
  await client.query(
    `update ${ident(schema)}.target set sync_table = $2, sync_rows = $3, sync_rows_estimate = $4,
       sync_started_at = $5 where name = $1`,
    [name, progress.table, progress.rows, progress.estimate ?? null, progress.startedAt],
  );
}

/**
 * The copy committed on the target: the request is done, unless a newer one came meanwhile, and the
 * target lacks nothing of the tables copied.
 */
export async function finishSyncRequest(
  client: pg.ClientBase,
  schema: string,
  name: string,
  request: SyncRequest,
): Promise<void> {
  // First: `sync` follows the request, and is done when it is gone.
  await forgetCopied(client, schema, name, request.tables);
  await client.query(
    `update ${ident(schema)}.target set sync_tables = null, sync_requested_at = null
      where name = $1 and sync_requested_at::text is not distinct from nullif($2, '')`,
    [name, request.requestedAt],
  );
}
