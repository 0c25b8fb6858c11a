/** What the catalogs say about a table: its columns and primary key. Used on sources and targets. */
import type pg from 'pg';

import type { QualifiedName } from '../config/types.js';

export interface ColumnInfo {
  name: string;
  /** format_type() of the column, for messages. */
  type: string;
  /** A generated column is computed by its own server and never written. */
  generated: boolean;
  notNull: boolean;
}

export interface TableInfo {
  relid: number;
  columns: ColumnInfo[];
  /** Primary key columns in key order; empty when the table has none. */
  primaryKey: string[];
}

/** One row per table of `pg_class c`; the caller adds the FROM and WHERE that pick the tables. */
const describeColumns = `select c.oid::int8 as relid,
   (select json_agg(json_build_object('name', a.attname,
                                      'type', format_type(a.atttypid, a.atttypmod),
                                      'generated', a.attgenerated <> '',
                                      'notNull', a.attnotnull) order by a.attnum)
      from pg_attribute a
     where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped) as columns,
   (select json_agg(a.attname order by k.ord)
      from pg_index i
      cross join unnest(i.indkey) with ordinality k(attnum, ord)
      join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
     where i.indrelid = c.oid and i.indisprimary) as key`;

interface DescribedRow {
  relid: string;
  columns: ColumnInfo[] | null;
  key: string[] | null;
}

function tableInfo(row: DescribedRow): TableInfo {
  return { relid: Number(row.relid), columns: row.columns ?? [], primaryKey: row.key ?? [] };
}

/** Describe a table, or undefined when there is no table of that name. */
export async function describeTable(
  client: pg.ClientBase,
  table: QualifiedName,
): Promise<TableInfo | undefined> {
  const result = await client.query<DescribedRow>(
    `${describeColumns}
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = $1 and c.relname = $2 and c.relkind in ('r', 'p')`,
    [table.schema, table.name],
  );
  const row = result.rows[0];
  return row === undefined ? undefined : tableInfo(row);
}

/** Describe tables by oid, whatever they are named now; a dropped table is absent from the map. */
export async function describeRelids(
  client: pg.ClientBase,
  relids: readonly number[],
): Promise<Map<number, TableInfo>> {
  const result = await client.query<DescribedRow>(
    `${describeColumns} from pg_class c where c.oid = any($1::oid[]) and c.relkind in ('r', 'p')`,
    [relids],
  );
  return new Map(result.rows.map((row) => [Number(row.relid), tableInfo(row)]));
}

/** Whether two descriptions of a table have the same columns (names, types, nullability) and key. */
export function sameShape(a: TableInfo, b: TableInfo): boolean {
  return (
    JSON.stringify([a.columns, a.primaryKey]) === JSON.stringify([b.columns, b.primaryKey]) &&
    a.relid === b.relid
  );
}
