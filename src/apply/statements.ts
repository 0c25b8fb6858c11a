/**
 * The SQL a worker runs on a target, one operation per function. Rows travel as one JSON array
 * parameter and are typed by the target table itself (json_populate_recordset), never string-built.
 */
import type pg from 'pg';

import { ident, qualifiedIdent } from '../config/identifiers.js';
import { fromStored, toStored, type Position, type StoredPosition } from '../log/window.js';
import type { TablePlan } from './plan.js';

/** The JSON array text of JSON value texts: no parsing, no re-encoding. */
export function jsonArray(items: readonly string[]): string {
  return `[${items.join(',')}]`;
}

export async function deleteKeys(
  client: pg.ClientBase,
  table: TablePlan,
  keys: readonly string[],
): Promise<number> {
  if (keys.length === 0) return 0;
  const target = qualifiedIdent(table.target);
  const columns = table.key.map(ident);
  const source = `json_populate_recordset(null::${target}, $1::json)`;
  // One key column: = any(array) is an index scan; several: a row IN list, also planned as index probes.
  const sql =
    columns.length === 1
      ? `delete from ${target} where ${columns[0]} = any (array(select ${columns[0]} from ${source}))`
      : `delete from ${target} where (${columns.join(', ')}) in (select ${columns.join(', ')} from ${source})`;
  const result = await client.query(sql, [jsonArray(keys)]);
  return result.rowCount ?? 0;
}

export async function insertRows(
  client: pg.ClientBase,
  table: TablePlan,
  rows: readonly string[],
): Promise<number> {
  if (rows.length === 0) return 0;
  const target = qualifiedIdent(table.target);
  const columns = table.columns.map(ident).join(', ');
  const result = await client.query(
    `insert into ${target} (${columns}) overriding system value
     select ${columns} from json_populate_recordset(null::${target}, $1::json)`,
    [jsonArray(rows)],
  );
  return result.rowCount ?? 0;
}

export async function truncateTable(client: pg.ClientBase, table: TablePlan): Promise<void> {
  await client.query(`truncate only ${qualifiedIdent(table.target)}`);
}

/** Record the position in the target, in the transaction of the batch it follows. */
export async function saveAppliedPosition(
  client: pg.ClientBase,
  schema: string,
  origin: string,
  target: string,
  position: Position,
): Promise<void> {
  const p = toStored(position);
  await client.query(
    `insert into ${ident(schema)}.applied_position
       (origin, target, from_snapshot, from_id_bound, to_snapshot, to_id_bound, to_id_ceiling, applied_id, updated_at)
     values ($1, $2, $3, $4, $5, $6, $7, $8, now())
     on conflict (origin, target) do update set
       from_snapshot = excluded.from_snapshot, from_id_bound = excluded.from_id_bound,
       to_snapshot = excluded.to_snapshot, to_id_bound = excluded.to_id_bound,
       to_id_ceiling = excluded.to_id_ceiling, applied_id = excluded.applied_id, updated_at = now()`,
    [
      origin,
      target,
      p.from_snapshot,
      p.from_id_bound,
      p.to_snapshot,
      p.to_id_bound,
      p.to_id_ceiling,
      p.applied_id,
    ],
  );
}

/** The position this target has applied, if it has applied anything from this origin. */
export async function loadAppliedPosition(
  client: pg.ClientBase,
  schema: string,
  origin: string,
  target: string,
): Promise<Position | undefined> {
  const result = await client.query<StoredPosition>(
    `select from_snapshot, from_id_bound, to_snapshot, to_id_bound, to_id_ceiling, applied_id
       from ${ident(schema)}.applied_position where origin = $1 and target = $2`,
    [origin, target],
  );
  const row = result.rows[0];
  return row === undefined ? undefined : fromStored(row);
}
