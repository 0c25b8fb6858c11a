// Pagila, a real schema nobody on this project wrote (shared/realworld/pagila): foreign keys ON UPDATE
// CASCADE ON DELETE RESTRICT between 15 tables, a partitioned payment table, last_updated triggers, a
// tsvector trigger, enums, domains, arrays and bytea. The source and the target both start as copies of
// one loaded database (initialSync none); the source then runs rental-shop traffic while the daemon
// applies, and every table must end equal to its source, with the target never parked (G2, G8).
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { withClient } from '../support/cluster.js';
import {
  connect,
  createRole,
  freshDatabase,
  ident,
  sharedClusters,
  uniqueName,
  waitFor,
  type FreshDatabase,
} from '../support/fixtures.js';
import {
  PAGILA_TABLES,
  cascadeEveryForeignKey,
  createPagilaTemplate,
  dropPagilaTemplate,
} from '../support/pagila.js';
import { expectSameRows, makeConfig, startDaemon, targetStatus } from '../support/replication.js';
import type { Config } from '../../src/config/types.js';
import type { TargetStatus } from '../../src/log/status.js';

// Loaded once per file and per cluster; each test copies them (CREATE DATABASE ... TEMPLATE), which is
// faster than running the scripts again.
let templates: { source: string; target: string } | undefined;

beforeAll(async () => {
  const { source, target1 } = sharedClusters();
  const [s, t] = await Promise.all([createPagilaTemplate(source), createPagilaTemplate(target1)]);
  templates = { source: s, target: t };
});

afterAll(async () => {
  if (templates === undefined) return;
  const { source, target1 } = sharedClusters();
  await Promise.all([
    dropPagilaTemplate(source, templates.source),
    dropPagilaTemplate(target1, templates.target),
  ]);
});

async function pagilaPair(): Promise<{ src: FreshDatabase; dst: FreshDatabase }> {
  const { source, target1 } = sharedClusters();
  return {
    src: await freshDatabase(source, { template: templates!.source }),
    dst: await freshDatabase(target1, { template: templates!.target }),
  };
}

function pagilaConfig(sourceUrl: string, targetUrl: string): Config {
  return makeConfig({
    source: { url: sourceUrl },
    // payment is the partitioned parent, its partitions not listed: the workload writes through it.
    tables: PAGILA_TABLES.map(({ table }) => `public.${table}`),
    targets: [{ name: 'pagila', url: targetUrl, initialSync: 'none' }],
    apply: { pollIntervalMs: 100 },
    retry: { initialDelayMs: 100, maxDelayMs: 1_000, dataErrorDelayMs: 200 },
    metrics: { enabled: false },
  });
}

/**
 * In one transaction: a shop's changes commit together, and apply must order them by the FKs. Each
 * statement must change a row, so that the workload does not quietly test less than it says.
 */
async function tx(db: pg.Client, statements: Array<[string, unknown[]?]>): Promise<void> {
  await db.query('begin');
  for (const [sql, params] of statements) {
    expect((await db.query(sql, params)).rowCount, sql).toBeGreaterThan(0);
  }
  await db.query('commit');
}

/** About 300 statements on the source, every kind of change Pagila's constraints make interesting. */
async function shopTraffic(url: string): Promise<void> {
  const db = await connect(url);
  // Referenced rows updated in place, key kept: films (inventory, film_actor, film_category point at
  // them), customers (rentals, payments) and addresses (customers, staff, stores); five per transaction.
  for (let i = 0; i < 20; i += 5) {
    const ids = [1, 2, 3, 4, 5].map((n) => 10 * (i + n));
    await tx(db, [
      [
        `update film set rental_rate = rental_rate + 1, description = description || ' (remastered)' where film_id = any($1)`,
        [ids],
      ],
      [
        `update customer set email = 'new.' || email, activebool = not activebool where customer_id = any($1)`,
        [ids],
      ],
      [`update address set phone = '555-' || address_id where address_id = any($1)`, [ids]],
    ]);
    for (const id of ids) await db.query(`update film set length = length + 1 where film_id = $1`, [id]);
  }

  // Key changes that the source's ON UPDATE CASCADE carries along: a country whose city has an address
  // that customers and staff live at, then that city's own key (address.city_id follows it), with a
  // change to one of those addresses in the same transaction.
  const { rows } = await db.query<{ country_id: number; city_id: number }>(
    `select ci.country_id, ci.city_id from city ci join address a using (city_id)
      where exists (select from customer c where c.address_id = a.address_id)
        and exists (select from staff s where s.address_id = a.address_id)
      order by ci.country_id, ci.city_id limit 1`,
  );
  const { country_id: country, city_id: city } = rows[0]!;
  await db.query(`update country set country_id = 1000 where country_id = $1`, [country]);
  await tx(db, [
    [`update city set city_id = 10000 where city_id = $1`, [city]],
    [`update address set address2 = 'moved' where city_id = 10000`],
  ]);

  // Deletes in the order the source's RESTRICT and NO ACTION keys demand: the rental with the most
  // payments after its payments (in one transaction), a film_actor row, inventory nobody ever rented.
  const busiest = await db.query<{ rental_id: number }>(
    `select rental_id from payment group by rental_id order by count(*) desc, rental_id limit 1`,
  );
  const rental = busiest.rows[0]!.rental_id;
  await tx(db, [
    [`delete from payment where rental_id = $1`, [rental]],
    [`delete from rental where rental_id = $1`, [rental]],
  ]);
  await tx(db, [
    [
      `delete from film_actor where (actor_id, film_id) in (select actor_id, film_id from film_actor limit 1)`,
    ],
  ]);
  await tx(db, [
    [`delete from inventory i where not exists (select from rental r where r.inventory_id = i.inventory_id)`],
  ]);

  // Old payments changed, one of them moved to the next month's partition, and then all of them gone.
  await tx(db, [
    [
      `update payment set amount = amount + 2 where payment_id in (select payment_id from payment_p2022_02 limit 10)`,
    ],
  ]);
  await tx(db, [
    [
      `update payment set payment_date = payment_date + interval '1 month' where payment_id = (select min(payment_id) from payment_p2022_03)`,
    ],
  ]);
  await db.query('truncate payment');

  // New rentals, each with one or two payments written through the parent in the same transaction; the
  // payment dates fall in 2022-01 .. 2022-07, so each lands in a partition.
  const payments: number[] = [];
  const rentals: number[] = [];
  for (let i = 0; i < 40; i++) {
    const month = 1 + (i % 6);
    const [customer, staff, inventory] = [1 + i, 1 + (i % 2), 100 + i];
    await db.query('begin');
    const r = await db.query<{ rental_id: number }>(
      `insert into rental (rental_date, inventory_id, customer_id, staff_id)
       values (timestamptz '2022-08-01 10:00+00' + $1 * interval '1 minute', $2, $3, $4) returning rental_id`,
      [i, inventory, customer, staff],
    );
    rentals.push(r.rows[0]!.rental_id);
    for (const m of i % 3 === 0 ? [month, month + 1] : [month]) {
      const p = await db.query<{ payment_id: number }>(
        `insert into payment (customer_id, staff_id, rental_id, amount, payment_date)
         values ($1, $2, $3, 4.99, make_timestamptz(2022, $4, 15, 12, $5, 0, 'UTC')) returning payment_id`,
        [customer, staff, r.rows[0]!.rental_id, m, i],
      );
      payments.push(p.rows[0]!.payment_id);
    }
    await db.query('commit');
  }
  // Amounts changed (key kept), a payment moved to another partition (its key changes), and a new rental
  // deleted after its payments.
  for (const id of payments.filter((_, n) => n % 4 === 0)) {
    await db.query(`update payment set amount = amount + 1.25 where payment_id = $1`, [id]);
  }
  await tx(db, [
    [
      `update payment set payment_date = payment_date + interval '1 month' where payment_id = $1`,
      [payments[0]],
    ],
  ]);
  await tx(db, [
    [`delete from payment where rental_id = $1`, [rentals[3]]],
    [`delete from rental where rental_id = $1`, [rentals[3]]],
  ]);
  // Customers who have just rented, changed again: their rentals and payments must stay.
  for (let i = 0; i < 20; i++) {
    await db.query(`update customer set email = upper(email), activebool = true where customer_id = $1`, [
      1 + i,
    ]);
  }
  await db.end();
}

/** Until the target has applied everything, or parked (a failure: the assertions then show why). */
async function settled(config: Config): Promise<TargetStatus> {
  let last: TargetStatus | undefined;
  await waitFor(
    async () => {
      last = await targetStatus(config, 'pagila');
      return last.state === 'parked' || (last.backlog === 0 && last.state === 'live');
    },
    { what: 'the target to catch up (or park)', timeoutMs: 30_000, intervalMs: 100 },
  ).catch((thrown: unknown) => {
    throw new Error(`${String(thrown)}\nlast status: ${JSON.stringify(last)}`);
  });
  return last!;
}

/** Every replicated table, source vs target; all differences reported at once. */
async function expectSameTables(sourceUrl: string, targetUrl: string): Promise<void> {
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

async function replicateShopTraffic(sourceUrl: string, targetUrl: string): Promise<void> {
  // Both sides start equal, so that any difference later is replication's.
  await expectSameTables(sourceUrl, targetUrl);
  const config = pagilaConfig(sourceUrl, targetUrl);
  const daemon = await startDaemon(config);
  await shopTraffic(sourceUrl);
  const status = await settled(config);
  await daemon.stop();
  expect(status, `target parked: ${status.lastError}`).toMatchObject({ state: 'live', errorQueue: 0 });
  await expectSameTables(sourceUrl, targetUrl);
}

describe('Pagila', () => {
  it(
    'replicates rental-shop traffic to a superuser target with the same schema',
    { timeout: 60_000 },
    async () => {
      const { src, dst } = await pagilaPair();
      await replicateShopTraffic(src.url, dst.url);
    },
  );

  it(
    'loses no row to the ON DELETE CASCADE keys of a target written by a role without superuser',
    { timeout: 60_000 },
    async () => {
      const { target1 } = sharedClusters();
      const { src, dst } = await pagilaPair();
      // Every target FK now cascades deletes, where the source's restrict them: an update applied as
      // delete + insert, or a parent deleted before its children move, would take children with it.
      expect(await cascadeEveryForeignKey(dst.url)).toBeGreaterThan(20);
      // The apply role cannot set session_replication_role, so the target's own triggers fire. Pagila's
      // BEFORE triggers (last_updated, film_fulltext_trigger) would rewrite last_update and fulltext: a
      // user who wants tables identical to the source disables them on the replica, as done here.
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

      await replicateShopTraffic(src.url, targetUrl);
    },
  );
});
