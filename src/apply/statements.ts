/**
 * The SQL a worker runs on a target, one operation per function. Rows travel as one JSON array
 * parameter and are typed by the target table itself (json_populate_recordset), never string-built.
 */
import type pg from 'pg';

import { ident, qualifiedIdent } from '../config/identifiers.js';
import {
  fromStored,
  positionColumns,
  positionValues,
  type Position,
  type StoredPosition,
} from '../log/window.js';
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
  json: readonly (readonly (string | null)[])[],
): Promise<number> {
  if (rows.length === 0) return 0;
  const target = qualifiedIdent(table.target);
  const columns = table.columns.map(ident).join(', ');
  const populate = `json_populate_recordset(null::${target}, $1::json)`;
  if (table.jsonColumns.length === 0) {
    const result = await client.query(
      `insert into ${target} (${columns}) overriding system value select ${columns} from ${populate}`,
      [jsonArray(rows)],
    );
    return result.rowCount ?? 0;
  }
  // json and jsonb columns come as text arrays of their own (SQL NULL where they were), zipped with the
  // rows by position; a text cast to json keeps it byte for byte.
  const jsonNames = new Set(table.jsonColumns.map((c) => c.name));
  const select = table.columns.map((c) => {
    const i = table.jsonColumns.findIndex((j) => j.name === c);
    return jsonNames.has(c) ? `j${i}.value::${table.jsonColumns[i]!.type}` : `p.${ident(c)}`;
  });
  const joins = table.jsonColumns.map(
    (_, i) => `join unnest($${i + 2}::text[]) with ordinality as j${i}(value, n) on j${i}.n = p.ordinality`,
  );
  const result = await client.query(
    `insert into ${target} (${columns}) overriding system value
     select ${select.join(', ')} from ${populate} with ordinality as p ${joins.join(' ')}`,
    [jsonArray(rows), ...json],
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
  // Parameters: $1 origin, $2 target, then the position's columns in order.
  const columns = positionColumns.join(', ');
  const values = positionColumns.map((_, i) => `$${i + 3}`).join(', ');
  const updates = positionColumns.map((c) => `${c} = excluded.${c}`).join(', ');
  await client.query(
    `insert into ${ident(schema)}.applied_position (origin, target, ${columns}, updated_at)
     values ($1, $2, ${values}, now())
     on conflict (origin, target) do update set ${updates}, updated_at = now()`,
    [origin, target, ...positionValues(position)],
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
    `select ${positionColumns.join(', ')}
       from ${ident(schema)}.applied_position where origin = $1 and target = $2`,
    [origin, target],
  );
  const row = result.rows[0];
  return row === undefined ? undefined : fromStored(row);
}
