/**
 * The shop's traffic on the source: a few writer connections, each paced to its share of the rate, doing
 * small transactions of inserts, updates and deletes. A failed transaction (two writers meeting on a
 * row, say) is rolled back and counted, as an application would; the writers go on until stopped.
 */
import type pg from 'pg';

import { connect } from '../db/connect.js';
import { Runnable, sleep } from '../lib/runnable.js';
import { seedCounts, skus, warehouses } from './shop.js';

export interface WorkloadOptions {
  url: string;
  writers: number;
  transactionsPerSecond: number;
}

/** The application's sessions: not trigsync's application_name, so the triggers capture them. */
const applicationName = 'shop-app';
const statuses = ['new', 'paid', 'shipped', 'delivered'] as const;

const randomInt = (n: number): number => Math.floor(Math.random() * n);
const pick = <T>(items: readonly T[]): T => items[randomInt(items.length)]!;

export class ShopWorkload extends Runnable {
  readonly name = 'workload';
  committed = 0;
  failed = 0;
  /** Highest ids seen, so that updates and deletes mostly find a row. */
  private lastOrderId: number = seedCounts.orders;
  private lastCustomerId: number = seedCounts.customers;

  constructor(private readonly options: WorkloadOptions) {
    super();
  }

  protected async loop(signal: AbortSignal): Promise<void> {
    const writers = Array.from({ length: this.options.writers }, () => this.writer(signal));
    await Promise.all(writers);
  }

  private async writer(signal: AbortSignal): Promise<void> {
    const intervalMs = (this.options.writers * 1000) / this.options.transactionsPerSecond;
    let client: pg.Client | undefined;
    let next = performance.now();
    while (this.shouldRun()) {
      try {
        client ??= await connect(this.options.url, { applicationName });
        await client.query('begin');
        await this.transaction(client);
        await client.query('commit');
        this.committed++;
      } catch {
        this.failed++;
        // A broken session cannot even roll back: start over with a new one.
        if (
          client !== undefined &&
          !(await client.query('rollback').then(
            () => true,
            () => false,
          ))
        ) {
          await client.end().catch(() => undefined);
          client = undefined;
        }
      }
      // Paced, without bursts to make up for lost time.
      next = Math.max(next + intervalMs, performance.now());
      await sleep(next - performance.now(), signal);
    }
    await client?.end().catch(() => undefined);
  }

  private async transaction(db: pg.Client): Promise<void> {
    const roll = Math.random();
    if (roll < 0.35) {
      // An order, and the stock it takes.
      const sku = `SKU-${randomInt(skus)}`;
      const qty = 1 + randomInt(3);
      const { rows } = await db.query<{ id: number }>(
        `insert into shop.orders (customer_id, total, lines) values ($1, $2, $3) returning id`,
        [
          1 + randomInt(this.lastCustomerId),
          (5 + Math.random() * 200).toFixed(2),
          JSON.stringify([{ sku, qty }]),
        ],
      );
      this.lastOrderId = Math.max(this.lastOrderId, rows[0]?.id ?? 0);
      await db.query(
        `update shop.stock set quantity = quantity - $3, updated_at = now() where warehouse = $1 and sku = $2`,
        [pick(warehouses), sku, qty],
      );
    } else if (roll < 0.6) {
      // Orders move on; recent ones most.
      const id = this.lastOrderId - randomInt(Math.min(this.lastOrderId, 2_000));
      await db.query(`update shop.orders set status = $2 where id = $1`, [id, pick(statuses)]);
    } else if (roll < 0.7) {
      await db.query(`delete from shop.orders where id = $1`, [1 + randomInt(this.lastOrderId)]);
    } else if (roll < 0.8) {
      const { rows } = await db.query<{ id: number }>(
        `insert into shop.customers (name, email, country) values ($1, $2, $3) returning id`,
        [`Customer ${this.lastCustomerId + 1}`, `new${Date.now()}@example.com`, pick(['DE', 'FR', 'US'])],
      );
      this.lastCustomerId = Math.max(this.lastCustomerId, rows[0]?.id ?? 0);
    } else if (roll < 0.9) {
      await db.query(`update shop.customers set vip = not vip, email = $2 where id = $1`, [
        1 + randomInt(this.lastCustomerId),
        `changed${Date.now()}@example.com`,
      ]);
    } else {
      // A delivery: an upsert, now and then of a product the warehouse did not stock yet.
      await db.query(
        `insert into shop.stock (warehouse, sku, quantity) values ($1, $2, 50)
         on conflict (warehouse, sku) do update set quantity = shop.stock.quantity + 50, updated_at = now()`,
        [pick(warehouses), `SKU-${randomInt(skus + 20)}`],
      );
    }
  }
}
