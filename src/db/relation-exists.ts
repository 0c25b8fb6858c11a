/**
 * Whether a relation exists: trigsync's tables on a database that an older version installed, or none
 * yet. One statement, sent at once, so that it shares a pipelined round trip (src/db/pipeline.ts) with
 * whatever the caller sends beside it.
 */
import type pg from 'pg';

/** Whether `name`, as SQL writes it (`"trigsync".node`), names a relation on `client`'s database. */
export async function relationExists(client: pg.ClientBase, name: string): Promise<boolean> {
  const result = await client.query<{ found: boolean }>('select to_regclass($1) is not null as found', [
    name,
  ]);
  return result.rows[0]?.found === true;
}
