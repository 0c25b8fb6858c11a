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
import type { RowImages, RowsStep } from './batch.js';
import type { TablePlan } from './plan.js';

/** The JSON array text of JSON value texts: no parsing, no re-encoding. */
export function jsonArray(items: readonly string[]): string {
  return `[${items.join(',')}]`;
}

/**
 * Row images typed as the target table: a FROM clause (alias `p`, numbered by `p.ordinality`) and the
 * expression of each written column. The images are parameter `rowsParam`, their json columns the
 * text arrays from `jsonParam` on, zipped with the rows by position (a text cast to json keeps it byte
 * for byte).
 */
function typedImages(
  table: TablePlan,
  rowsParam: number,
  jsonParam: number,
): { from: string; columns: string[] } {
  const populate = `json_populate_recordset(null::${qualifiedIdent(table.target)}, $${rowsParam}::json) with ordinality as p`;
  const joins = table.jsonColumns.map(
    (_, i) =>
      `join unnest($${jsonParam + i}::text[]) with ordinality as j${i}(value, n) on j${i}.n = p.ordinality`,
  );
  const columns = table.columns.map((c) => {
    const i = table.jsonColumns.findIndex((j) => j.name === c);
    return i < 0 ? `p.${ident(c)}` : `j${i}.value::${table.jsonColumns[i]!.type}`;
  });
  return { from: [populate, ...joins].join(' '), columns };
}

function imageParams(images: RowImages): unknown[] {
  return [jsonArray(images.rows), ...images.json];
}

/** The text of a row of the written columns: what two rows are compared by (any type has a text). */
function rowText(expressions: readonly string[]): string {
  return `row(${expressions.join(', ')})::text`;
}

/** A key the target's row did not match: its 1-based position, the row found and the row expected. */
export interface KeyMismatch {
  n: number;
  found: string | null;
  expected: string | null;
}

/**
 * Delete every touched key of a run, and in the same statement compare what was there with what the
 * changes expect: returns the keys whose row was not as expected (a key that expects no row but had one
 * comes back with `expected` null). Rows are compared as text in the target's own types.
 */
export async function deleteKeysChecking(client: pg.ClientBase, step: RowsStep): Promise<KeyMismatch[]> {
  const { table } = step;
  if (step.deleteKeys.length === 0) return [];
  const target = qualifiedIdent(table.target);
  const key = table.key.map(ident);
  // The CTEs name their columns by position (k1, k2, ...), so no user column name can collide.
  const k = key.map((_, i) => `k${i + 1}`);
  const match =
    key.length === 1
      ? `t.${key[0]} = any (array(select k.k1 from k))`
      : `(${key.map((c) => `t.${c}`).join(', ')}) in (select ${k.map((c) => `k.${c}`).join(', ')} from k)`;
  const expected = typedImages(table, 3, 4);
  const result = await client.query<KeyMismatch>(
    `with k (n, ${k.join(', ')}) as materialized (
       select p.ordinality, ${key.map((c) => `p.${c}`).join(', ')}
         from json_populate_recordset(null::${target}, $1::json) with ordinality as p),
     gone (${k.join(', ')}, image) as (
       delete from ${target} t where ${match}
       returning ${key.map((c) => `t.${c}`).join(', ')}, ${rowText(table.columns.map((c) => `t.${ident(c)}`))}),
     e (n, image) as (
       select a.n, ${rowText(expected.columns)}
         from ${expected.from} join unnest($2::int8[]) with ordinality as a(n, i) on a.i = p.ordinality)
     select k.n::int4 as n, g.image as found, e.image as expected
       from k
       left join gone g on ${k.map((c) => `g.${c} = k.${c}`).join(' and ')}
       left join e on e.n = k.n
      where g.image is distinct from e.image`,
    [jsonArray(step.deleteKeys), step.expectedAt, ...imageParams(step.expected)],
  );
  return result.rows;
}

/** Each image's row text in the target's types, as deleteKeysChecking shows found rows. */
export async function rowTexts(
  client: pg.ClientBase,
  table: TablePlan,
  images: RowImages,
): Promise<string[]> {
  if (images.rows.length === 0) return [];
  const typed = typedImages(table, 1, 2);
  const result = await client.query<{ image: string }>(
    `select ${rowText(typed.columns)} as image from ${typed.from} order by p.ordinality`,
    imageParams(images),
  );
  return result.rows.map((r) => r.image);
}

export async function insertRows(
  client: pg.ClientBase,
  table: TablePlan,
  images: RowImages,
): Promise<number> {
  if (images.rows.length === 0) return 0;
  const target = qualifiedIdent(table.target);
  const typed = typedImages(table, 1, 2);
  const result = await client.query(
    `insert into ${target} (${table.columns.map(ident).join(', ')}) overriding system value
     select ${typed.columns.join(', ')} from ${typed.from}`,
    imageParams(images),
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
