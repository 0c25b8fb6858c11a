/** What the catalogs say about a table: its columns and primary key. Used on sources and targets. */
import type pg from 'pg';

import type { QualifiedName } from '../config/types.js';

export interface ColumnInfo {
  name: string;
  /** format_type() of the column, for messages. */
  type: string;
  /** A generated column is computed by its own server and never written. */
  generated: boolean;
}

export interface TableInfo {
  relid: number;
  columns: ColumnInfo[];
  /** Primary key columns in key order; empty when the table has none. */
  primaryKey: string[];
}

/** Describe a table, or undefined when there is no table of that name. */
export async function describeTable(
  client: pg.ClientBase,
  table: QualifiedName,
): Promise<TableInfo | undefined> {
  const result = await client.query<{ relid: string; columns: ColumnInfo[] | null; key: string[] | null }>(
    `select c.oid::int8 as relid,
       (select json_agg(json_build_object('name', a.attname,
                                          'type', format_type(a.atttypid, a.atttypmod),
                                          'generated', a.attgenerated <> '') order by a.attnum)
          from pg_attribute a
         where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped) as columns,
       (select json_agg(a.attname order by k.ord)
          from pg_index i
          cross join unnest(i.indkey) with ordinality k(attnum, ord)
          join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
         where i.indrelid = c.oid and i.indisprimary) as key
     from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname = $1 and c.relname = $2 and c.relkind in ('r', 'p')`,
    [table.schema, table.name],
  );
  const row = result.rows[0];
  if (row === undefined) return undefined;
  return { relid: Number(row.relid), columns: row.columns ?? [], primaryKey: row.key ?? [] };
}
