// The Pagila sample database (shared/realworld/pagila, next to the repository): a schema written by nobody
// on this project, with cascading foreign keys, a partitioned table, triggers, enums and domains. Its files
// are psql scripts (COPY ... FROM stdin with `\.`), so psql loads them, as their README says.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { withClient, type PgCluster } from './cluster.js';
import { ident, uniqueName } from './fixtures.js';

/** Relative to the repository root: ../shared, here and in CI. */
export const PAGILA_DIR = fileURLToPath(new URL('../../../shared/realworld/pagila/', import.meta.url));

/** Every Pagila table with a primary key and that key; payment is the partitioned parent. */
export const PAGILA_TABLES: ReadonlyArray<{ table: string; key: string }> = [
  { table: 'actor', key: 'actor_id' },
  { table: 'address', key: 'address_id' },
  { table: 'category', key: 'category_id' },
  { table: 'city', key: 'city_id' },
  { table: 'country', key: 'country_id' },
  { table: 'customer', key: 'customer_id' },
  { table: 'film', key: 'film_id' },
  { table: 'film_actor', key: '(actor_id, film_id)' },
  { table: 'film_category', key: '(film_id, category_id)' },
  { table: 'inventory', key: 'inventory_id' },
  { table: 'language', key: 'language_id' },
  { table: 'rental', key: 'rental_id' },
  { table: 'staff', key: 'staff_id' },
  { table: 'store', key: 'store_id' },
  { table: 'payment', key: '(payment_date, payment_id)' },
];

/** psql on PATH, else the newest /usr/lib/postgresql/<major>/bin/psql (as bench/support/load.ts finds pgbench). */
export function findPsql(): string {
  let versioned: string[] = [];
  try {
    versioned = readdirSync('/usr/lib/postgresql')
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a))
      .map((v) => `/usr/lib/postgresql/${v}/bin`);
  } catch {
    // No Debian-style install: PATH alone.
  }
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...versioned];
  const found = dirs.map((dir) => join(dir, 'psql')).find((path) => existsSync(path));
  if (found === undefined) {
    throw new Error(
      'the Pagila tests load their data with psql: none on PATH or in /usr/lib/postgresql/*/bin',
    );
  }
  return found;
}

function psqlFile(url: string, file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(
      findPsql(),
      ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-o', '/dev/null', '-f', join(PAGILA_DIR, file), url],
      { maxBuffer: 16 * 1024 * 1024 },
      // The error's own message holds the command line, and so the password: stderr alone is shown.
      (error, _stdout, stderr) =>
        error ? reject(new Error(`psql -f ${file} failed (${String(error.code)}):\n${stderr}`)) : resolve(),
    );
  });
}

/**
 * A database holding Pagila's schema and data, to copy with freshDatabase(cluster, { template }). The
 * scripts say `OWNER TO postgres`, which the test clusters' superuser is (local-cluster.ts). Not dropped
 * by the test scope: pair it with dropPagilaTemplate in afterAll.
 */
export async function createPagilaTemplate(cluster: PgCluster): Promise<string> {
  const name = uniqueName('pagila_template');
  await cluster.query(`create database ${ident(name)}`);
  await psqlFile(cluster.url(name), 'pagila-schema.sql');
  await psqlFile(cluster.url(name), 'pagila-data.sql');
  return name;
}

export async function dropPagilaTemplate(cluster: PgCluster, name: string): Promise<void> {
  await cluster.query(`drop database if exists ${ident(name)} with (force)`);
}

/**
 * Every foreign key of the database re-made `on update cascade on delete cascade`, partitions' own
 * included: a target whose schema differs from its source in exactly the way that punishes an apply that
 * deletes rows the source did not delete (an update carried out as delete + insert, say).
 */
export async function cascadeEveryForeignKey(url: string): Promise<number> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ tbl: string; name: string; def: string }>(
      `select conrelid::regclass::text as tbl, conname as name, pg_get_constraintdef(oid) as def
         from pg_constraint
        where contype = 'f' and connamespace = 'public'::regnamespace and conparentid = 0`,
    );
    await client.query('begin');
    for (const { tbl, name, def } of rows) {
      const bare = def.replace(/ ON (UPDATE|DELETE) (NO ACTION|RESTRICT|CASCADE|SET NULL|SET DEFAULT)/g, '');
      await client.query(
        `alter table ${tbl} drop constraint ${ident(name)},
           add constraint ${ident(name)} ${bare} on update cascade on delete cascade`,
      );
    }
    await client.query('commit');
    return rows.length;
  });
}
