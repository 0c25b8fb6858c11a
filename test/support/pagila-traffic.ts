// Rental-shop traffic on a Pagila source (test/support/pagila.ts): every kind of change its foreign keys
// make interesting, in the orders its RESTRICT keys demand.
import type pg from 'pg';
import { expect } from 'vitest';

import { connect } from './fixtures.js';

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
export async function shopTraffic(url: string): Promise<void> {
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
