/**
 * Rows a target applying as origin deleted itself. Its own ON DELETE CASCADE takes a parent's children
 * when the parent's delete is applied; where the source's log holds the children's own deletes in a later
 * batch (the source's same cascade logs the parent first, and a large one spans batches), those deletes
 * find no row. The target holds what they bring: not a conflict. A child's absence counts as the
 * cascade's only where the child's old row referenced, through a foreign key of the target that cascades
 * deletes, a parent row the target no longer holds. Looked at after the step's statement, or, where a
 * chunk's steps go pipelined (src/apply/chunk.ts attemptReporting), after the chunk's last: a parent the
 * same chunk deletes later counts as gone (the delete found what the chunk leaves), one it inserts again
 * as there (a conflict reported where the cascade took the row: safe, and rare).
 */
import type pg from 'pg';

import { ident, qualifiedIdent } from '../config/identifiers.js';
import type { RowImages } from './batch.js';
import type { TablePlan } from './plan.js';
import { imageParams, imagesCte, positional } from './statements.js';

/** A foreign key of the target table that cascades deletes, its columns as the referenced ones'. */
interface CascadingKey {
  parent: { schema: string; name: string };
  columns: string[];
  referenced: string[];
}

/**
 * The table's foreign keys on the target that cascade deletes, its partitions' own included (a key of one
 * partition is taken for the table's: the image's row was in one of them), from parents the session may
 * read (a key whose parent it may not read explains nothing, and must not fail the apply).
 */
async function cascadingKeys(client: pg.ClientBase, table: TablePlan): Promise<CascadingKey[]> {
  const { rows } = await client.query<{
    schema: string;
    name: string;
    columns: string[];
    referenced: string[];
  }>(
    `select distinct n.nspname as schema, p.relname as name,
            array(select a.attname::text from unnest(c.conkey) with ordinality k(attnum, i)
                    join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.attnum order by k.i) as columns,
            array(select a.attname::text from unnest(c.confkey) with ordinality k(attnum, i)
                    join pg_attribute a on a.attrelid = c.confrelid and a.attnum = k.attnum order by k.i) as referenced
       from pg_constraint c
       join pg_class p on p.oid = c.confrelid
       join pg_namespace n on n.oid = p.relnamespace
      where coalesce(pg_partition_root(c.conrelid), c.conrelid) = $1 and c.contype = 'f' and c.confdeltype = 'c'
        and c.conparentid = 0
        and has_table_privilege(c.confrelid, 'select')`,
    [table.targetRelid],
  );
  return rows.map((r) => ({
    parent: { schema: r.schema, name: r.name },
    columns: r.columns,
    referenced: r.referenced,
  }));
}

/**
 * Of the old rows `images` whose deletes found no row, the 1-based positions of those the target's own
 * cascade took: every column of a cascading key set, and no parent row under them.
 */
export async function deletedByCascade(
  client: pg.ClientBase,
  table: TablePlan,
  images: RowImages,
): Promise<number[]> {
  if (images.rows.length === 0) return [];
  const old = positional(table, 'e');
  const explained = (await cascadingKeys(client, table))
    // A key on columns the plan does not write cannot be read from the images.
    .filter((key) => key.columns.every((c) => table.columns.includes(c)))
    .map((key) => {
      const at = key.columns.map((c) => old[table.columns.indexOf(c)]!);
      const set = at.map((e) => `${e} is not null`).join(' and ');
      const match = at.map((e, i) => `p.${ident(key.referenced[i]!)} = ${e}`).join(' and ');
      return `(${set} and not exists (select from ${qualifiedIdent(key.parent)} p where ${match}))`;
    });
  if (explained.length === 0) return [];
  const { rows } = await client.query<{ n: number }>({
    text: `with ${imagesCte(table, 'e', 1)} select e.n::int4 as n from e where ${explained.join(' or ')}`,
    values: imageParams(images),
  });
  return rows.map((r) => r.n);
}
