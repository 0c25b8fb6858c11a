/**
 * A sync's request, kept in the source's record of its target (sql/source): asked by an operator
 * (src/operator/commands.ts), it outlives restarts; the worker copies, saves how far it is, and finishes
 * it; `sync` and `status` read its progress.
 */
import type pg from 'pg';

import { forgetCopied } from '../capture/table-set.js';
import { ident } from '../config/identifiers.js';

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
  await forgetCopied(client, schema, name, request.tables, request.requestedAt);
  await client.query(
    `update ${ident(schema)}.target set sync_tables = null, sync_requested_at = null
      where name = $1 and sync_requested_at::text is not distinct from nullif($2, '')`,
    [name, request.requestedAt],
  );
}

export interface SyncRequestProgress {
  table: string | null;
  rows: number | null;
  estimate: number | null;
  startedAt: Date | null;
  /** The target's error, when it parked after the request (the copy failed, or could not begin). */
  parkedWith: string | null;
}

/** How far the copy of the request is, and the error its target parked on since it was asked. */
export async function readSyncProgress(
  client: pg.ClientBase,
  schema: string,
  target: string,
): Promise<SyncRequestProgress> {
  const result = await client.query<{
    sync_table: string | null;
    sync_rows: number | null;
    sync_rows_estimate: number | null;
    sync_started_at: Date | null;
    parked_with: string | null;
  }>(
    `select sync_table, sync_rows, sync_rows_estimate, sync_started_at,
            case when state = 'parked' and updated_at > sync_requested_at then last_error end as parked_with
       from ${ident(schema)}.target where name = $1`,
    [target],
  );
  const row = result.rows[0];
  return {
    table: row?.sync_table ?? null,
    rows: row?.sync_rows ?? null,
    estimate: row?.sync_rows_estimate ?? null,
    startedAt: row?.sync_started_at ?? null,
    parkedWith: row?.parked_with ?? null,
  };
}
