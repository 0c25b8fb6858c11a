/**
 * The names a captured table's columns have had (sql/source/023). A row image names its columns as they
 * were when it was captured; one captured before a column was renamed and applied after the rename (a
 * backlog, or the moments a target trails) holds the former name, which the apply reads under the current
 * one (src/changelog/window.ts, src/changelog/bulk-window.ts). The names are noted at every install and by
 * the capture watcher every 2 s, so a column renamed after either has its former name on record.
 */
import type pg from 'pg';

import { ident } from '../config/identifiers.js';
import { relationExists } from '../db/relation-exists.js';

/** A table's columns renamed since they were noted: the former names, and the current one of each. */
export interface Renames {
  former: string[];
  current: string[];
}

/** Note the names that the columns of tables `relids` have now; nothing is written where all are noted. */
export async function recordColumnNames(
  client: pg.ClientBase,
  schema: string,
  relids: readonly number[],
): Promise<void> {
  if (relids.length === 0) return;
  const seen = `${ident(schema)}.seen_column`;
  await client.query(
    `insert into ${seen} (relid, attnum, name)
     select a.attrelid, a.attnum, a.attname from pg_attribute a
      where a.attrelid = any($1::oid[]) and a.attnum > 0 and not a.attisdropped
        and not exists (select from ${seen} s
                         where s.relid = a.attrelid and s.attnum = a.attnum and s.name = a.attname)
     on conflict do nothing`,
    [relids],
  );
}

/**
 * The columns of tables `relids` that were renamed since their former names were noted, by table. A
 * former name that another column has now is left out: an image holding it cannot tell whose it is.
 * None where trigsync's schema is not installed at this version (`check` before `install`).
 */
export async function columnRenames(
  client: pg.ClientBase,
  schema: string,
  relids: readonly number[],
): Promise<Map<number, Renames>> {
  const renames = new Map<number, Renames>();
  if (relids.length === 0) return renames;
  const seen = `${ident(schema)}.seen_column`;
  const installed = await relationExists(client, seen);
  if (!installed) return renames;
  const result = await client.query<{ relid: string; former: string; current: string }>(
    `select s.relid::int8 as relid, s.name as former, a.attname as current
       from ${seen} s
       join pg_attribute a on a.attrelid = s.relid and a.attnum = s.attnum and not a.attisdropped
      where s.relid = any($1::oid[]) and s.name <> a.attname
        and not exists (select from pg_attribute b
                         where b.attrelid = s.relid and b.attname = s.name and b.attnum > 0 and not b.attisdropped)
      order by s.relid, s.attnum, s.name`,
    [relids],
  );
  for (const row of result.rows) {
    const relid = Number(row.relid);
    const table = renames.get(relid) ?? { former: [], current: [] };
    table.former.push(row.former);
    table.current.push(row.current);
    renames.set(relid, table);
  }
  return renames;
}
