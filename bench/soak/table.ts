// The soak's table and the writes on it. The table keeps a fixed number of rows, ids in a sliding
// window: most transactions update a random row of the window, the rest insert the next id and delete
// the oldest in one statement. Every kind of change (I, D, and V + U for an update) flows all the time,
// and neither the table nor the work per transaction grows, so any drift is the replication's.
import type pg from 'pg';

import { randomId, type Workload } from '../support/load.js';

export const tableName = 'soak_rows';
export const qualifiedTable = `public.${tableName}`;
/** Rows in the table, on both sides, for the whole run. */
export const tableRows = 100_000;
/** Share of the transactions that insert a row and delete one; the rest update one. */
export const churnShare = 0.1;
/** Writer connections: the updates take all but one; the churn takes one. */
export const writerClients = 4;

const payload = 'trigsync soak benchmark: a short text column of a typical row';

// The same on both sides: the target must hold what the source holds before the daemon starts.
const ddl = `create table ${tableName} (id bigint primary key, a int not null, b text not null, c timestamptz not null)`;
// A fixed timestamp, not now(): the two clusters would differ by the time between the two inserts.
const seed = `insert into ${tableName} (id, a, b, c)
  select g, 0, '${payload}', '2026-01-01 00:00:00+00' from generate_series(1, ${tableRows}) g`;
// The newest id; the window is (last_value - tableRows, last_value]. Source only: the target's rows
// come from the source's ids.
const sequence = `create sequence soak_next_id as bigint cache 1;
  select setval('soak_next_id', ${tableRows})`;

/** Creates and fills the table on both sides, without capture (the caller passes uncaptured clients). */
export async function createTables(source: pg.Client, target: pg.Client): Promise<void> {
  await Promise.all([source.query(ddl), target.query(ddl)]);
  await Promise.all([source.query(seed), target.query(seed)]);
  await source.query(sequence);
  await Promise.all([
    source.query(`vacuum analyze ${tableName}`),
    target.query(`vacuum analyze ${tableName}`),
  ]);
}

// `(select last_value ...)` is evaluated once, as an init plan, so that the primary key is used; a
// concurrent churn may have deleted the chosen row meanwhile, and then the update changes nothing.
const update = `update ${tableName} set a = a + 1, c = now()
  where id = (select last_value from soak_next_id) - $1::bigint`;

/** UPDATE of one random row of the window: HOT on the source, a delete + insert on the target. */
export const updateWorkload: Workload = {
  name: 'soak_update',
  script: `\\set k random(0, ${tableRows - 1})
${update.replace('$1', ':k')};
`,
  statement: update,
  values: () => [randomId(tableRows) - 1],
};

// One statement for both generators: the CTE takes the next id once (a CTE with a volatile function is
// evaluated once), deletes the id that leaves the window and inserts the new one.
const churn = `with next as (select nextval('soak_next_id') as id),
  gone as (delete from ${tableName} where id = (select id - ${tableRows} from next))
insert into ${tableName} (id, a, b, c) select id, 0, '${payload}', now() from next`;

/** INSERT of the next id and DELETE of the oldest, in one statement: the size stays the same. */
export const churnWorkload: Workload = {
  name: 'soak_churn',
  script: `${churn};\n`,
  statement: churn,
  values: () => [],
};
