// The Pagila sample database (shared/realworld/pagila, next to the repository): a schema written by nobody
// on this project, with cascading foreign keys, a partitioned table, triggers, enums and domains. Its files
// are psql scripts (COPY ... FROM stdin with `\.`), so psql loads them, as their README says.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { withClient, type PgCluster } from './cluster.js';
import { expect } from 'vitest';

import { createRole, ident, uniqueName } from './fixtures.js';
import { expectSameRows } from './replication.js';

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
 * A database holding Pagila's schema and (unless `data` is false) its data, to copy with freshDatabase(cluster, { template }). The
 * scripts say `OWNER TO postgres`, which the test clusters' superuser is (local-cluster.ts). Not dropped
 * by the test scope: pair it with dropPagilaTemplate in afterAll.
 */
export async function createPagilaTemplate(
  cluster: PgCluster,
  options: { data: boolean } = { data: true },
): Promise<string> {
  const name = uniqueName('pagila_template');
  await cluster.query(`create database ${ident(name)}`);
  await psqlFile(cluster.url(name), 'pagila-schema.sql');
  if (options.data) await psqlFile(cluster.url(name), 'pagila-data.sql');
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

/** Every replicated table, source vs target; all differences reported at once. */
export async function expectSameTables(sourceUrl: string, targetUrl: string): Promise<void> {
  const failures: string[] = [];
  for (const { table, key } of PAGILA_TABLES) {
    // Payments are compared with the partition each row is in.
    const query =
      table === 'payment'
        ? 'select tableoid::regclass::text as partition, p.* from payment p'
        : `select * from ${table}`;
    await expectSameRows({ url: sourceUrl, query }, { url: targetUrl, query }, key).catch((e: unknown) =>
      failures.push(`${table}: ${e instanceof Error ? e.message : String(e)}`),
    );
  }
  expect(failures, failures.join('\n')).toEqual([]);
}

/**
 * A role on the target database `database` that holds what least-privilege.test.ts grants an apply role,
 * with UPDATE, on every Pagila table and partition, and no superuser; returns its URL. The apply role
 * cannot set session_replication_role, so the target's own triggers fire. Pagila's BEFORE triggers
 * (last_updated, film_fulltext_trigger) would rewrite last_update and fulltext: a user who wants tables
 * identical to the source disables them on the replica, as done here.
 */
export async function leastPrivilegeTarget(target1: PgCluster, database: string): Promise<string> {
  const dst = { name: database };
  const triggers = await target1.query<{ tbl: string; name: string }>(
    `select tgrelid::regclass::text as tbl, tgname as name from pg_trigger
      where not tgisinternal and tgrelid::regclass::text = any($1)`,
    [PAGILA_TABLES.map(({ table }) => table)],
    dst.name,
  );
  expect(triggers.map((t) => t.name)).toContain('film_fulltext_trigger');
  for (const { tbl, name } of triggers) {
    await target1.query(`alter table ${tbl} disable trigger ${ident(name)}`, [], dst.name);
  }

  // What least-privilege.test.ts grants an apply role, with UPDATE, on every Pagila table and partition.
  const role = uniqueName('pagila_apply');
  const password = 'pagila apply';
  await createRole(target1, role, password);
  await target1.query(
    `revoke all on database ${ident(dst.name)} from public;
     grant connect, create on database ${ident(dst.name)} to ${ident(role)};`,
  );
  await target1.query(
    `revoke all on schema public from public;
     grant usage on schema public to ${ident(role)};
     grant select, insert, update, delete, truncate on
       ${PAGILA_TABLES.map(({ table }) => table).join(', ')},
       payment_p2022_01, payment_p2022_02, payment_p2022_03, payment_p2022_04,
       payment_p2022_05, payment_p2022_06, payment_p2022_07
     to ${ident(role)}`,
    [],
    dst.name,
  );
  const targetUrl = target1.url(dst.name, { user: role, password });
  const superuser = await withClient(targetUrl, (c) =>
    c.query<{ s: boolean }>('select rolsuper as s from pg_roles where rolname = current_user'),
  );
  expect(superuser.rows[0]!.s).toBe(false);

  return targetUrl;
}
