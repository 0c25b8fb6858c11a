// What the relational benchmark works with: orders and their lines, the foreign key included, the same
// on both servers, in two schemas: `ts` captured by trigsync and `native` published for native logical
// replication, so that neither system's changes reach the other's tables. Also the writers' transaction,
// the reset that gives every run the same start, and the check that a run left equal sides.
import type pg from 'pg';

import type { Config } from '../../src/config/types.js';
import type { LocalCluster } from '../../test/support/local-cluster.js';
import { randomId, type LoadGenerator, type Workload } from '../support/load.js';
import type { BenchOptions } from '../support/options.js';
import { createDatabase, tableFingerprint } from '../support/servers.js';
import { benchClient, benchConfig, uncapturedClient } from '../support/trigsync.js';

export type SystemName = 'trigsync' | 'native';

export const schemaOf: Record<SystemName, string> = { trigsync: 'ts', native: 'native' };

/** Parents first: the order to create, and the order in which the report names them. */
export function tablesOf(schema: string): [orders: string, lines: string] {
  return [`${schema}.orders`, `${schema}.order_lines`];
}

/**
 * What a writer's transaction holds: an order and its lines (the foreign key between them), or one
 * order alone (a single-row transaction, the shape of most OLTP writes).
 */
export const shapes = ['orders', 'singles'] as const;
export type Shape = (typeof shapes)[number];

export const linesPerOrder = 3;

/** Order lines per transaction of a shape. */
export function linesOf(shape: Shape): number {
  return shape === 'orders' ? linesPerOrder : 0;
}

/** Transactions per run of a shape. */
export function transactionsOf(shape: Shape, options: Pick<BenchOptions, 'orders' | 'singles'>): number {
  return shape === 'orders' ? options.orders : options.singles;
}
/** Writer connections, each running its share of the transactions. */
export const writers = 4;

function ddl(schema: string): string {
  const [orders, lines] = tablesOf(schema);
  return `create schema ${schema};
create table ${orders} (id bigint primary key, customer int not null, placed_at timestamptz not null, note text);
create table ${lines} (
  order_id bigint not null references ${orders} (id) on delete cascade,
  line int not null,
  product int not null,
  qty int not null,
  price numeric(10, 2) not null,
  primary key (order_id, line));
`;
}

/** Source only: the orders' keys, for both schemas. The targets' keys come from the source's rows. */
const orderIds = 'public.order_ids';

const note = 'leave the parcel at the back door';

/**
 * One order and its lines, as an application places it: two INSERTs between BEGIN and COMMIT, the
 * order's key from a sequence, a note on some orders only. `singles`: the order's INSERT alone.
 */
export function orderWorkload(schema: string, shape: Shape): Workload {
  const [orders, lines] = tablesOf(schema);
  const order = `insert into ${orders} (id, customer, placed_at, note)
  values (nextval('${orderIds}'), $1, now(), case when random() < 0.3 then '${note}' end)`;
  const orderLines = `insert into ${lines} (order_id, line, product, qty, price)
  select currval('${orderIds}'), g, 1 + (random() * 9999)::int, 1 + (random() * 4)::int,
         round((random() * 100)::numeric, 2)
    from generate_series(1, ${linesPerOrder}) g`;
  const single = shape === 'singles';
  const placed = `${order.replace('$1', ':customer')};\n`;
  return {
    name: `${shape}_${schema}`,
    script: `\\set customer random(1, 100000)\n${single ? placed : `begin;\n${placed}${orderLines};\ncommit;\n`}`,
    statement: order,
    values: () => [randomId(100_000)],
    ...(single ? {} : { followedBy: [orderLines] }),
  };
}

export interface Rig {
  options: BenchOptions;
  load: LoadGenerator;
  sourceUrl: string;
  targetUrl: string;
  /** Source writes that are captured: the orders. */
  admin: pg.Client;
  /** Source writes that are not: resetting the tables. */
  quietSource: pg.Client;
  /** The target under trigsync's application_name: resets, subscriptions, checks. */
  target: pg.Client;
  /** The target again, for counting its rows while a run lasts, beside the other client's work. */
  watch: pg.Client;
  /** trigsync applying `ts` straight to the target; a run at a delay changes the target's URL only. */
  config: Config;
}

export async function setUp(
  options: BenchOptions,
  load: LoadGenerator,
  source: LocalCluster,
  target: LocalCluster,
): Promise<Rig> {
  const sourceUrl = await createDatabase(source, 'bench');
  const targetUrl = await createDatabase(target, 'bench');
  const config = trigsyncConfig(sourceUrl, targetUrl);
  const admin = await benchClient(sourceUrl);
  const quietSource = await uncapturedClient(config, sourceUrl);
  const targetClient = await uncapturedClient(config, targetUrl);
  const both = `${ddl(schemaOf.trigsync)}${ddl(schemaOf.native)}`;
  await Promise.all([quietSource.query(`${both}create sequence ${orderIds};`), targetClient.query(both)]);
  const watch = await benchClient(targetUrl);
  return { options, load, sourceUrl, targetUrl, admin, quietSource, target: targetClient, watch, config };
}

export async function tearDown(rig: Rig): Promise<void> {
  await Promise.allSettled([rig.admin, rig.quietSource, rig.target, rig.watch].map((c) => c.end()));
}

/** trigsync capturing the `ts` tables and applying them to the target at `targetUrl`. */
export function trigsyncConfig(sourceUrl: string, targetUrl: string): Config {
  return benchConfig({ sourceUrl, targetUrl, tables: tablesOf(schemaOf.trigsync) });
}

/**
 * Empties a system's tables on both sides, unseen by either replication (the caller makes sure no
 * subscription is there), then vacuums and checkpoints, so that neither leftovers nor a checkpoint due
 * fall into the run.
 */
export async function resetTables(rig: Rig, schema: string): Promise<void> {
  const tables = tablesOf(schema);
  const clients = [rig.quietSource, rig.target];
  await Promise.all(clients.map((client) => client.query(`truncate ${tables.join(', ')}`)));
  await Promise.all(clients.map((client) => client.query(`vacuum analyze ${tables.join(', ')}`)));
  await Promise.all(clients.map((client) => client.query('checkpoint')));
}

/** Rows of each table: what the check found equal on both sides. */
export interface SidesCheck {
  orders: number;
  lines: number;
}

/**
 * Throws unless the target holds exactly the source's rows of both tables (count and a hash of every
 * row): a run that replicated wrongly gives no figure.
 */
export async function checkSides(rig: Rig, schema: string, run: string): Promise<SidesCheck> {
  const rows: number[] = [];
  for (const table of tablesOf(schema)) {
    const [source, target] = await Promise.all([
      tableFingerprint(rig.quietSource, table),
      tableFingerprint(rig.target, table),
    ]);
    if (source.rows !== target.rows || source.hash !== target.hash) {
      throw new Error(
        `relational, ${run}: ${table} on the target differs from the source: ${source.rows} rows ` +
          `(hash ${source.hash}) on the source, ${target.rows} rows (hash ${target.hash}) on the target`,
      );
    }
    rows.push(source.rows);
  }
  return { orders: rows[0]!, lines: rows[1]! };
}
