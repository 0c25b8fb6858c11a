// A write load for replication tests: concurrent writers doing random operations on overlapping keys,
// transactions that commit seconds late, and rollbacks. Conflicts between writers (deadlocks, unique
// violations) roll their transaction back, as they would in an application.
import pg from 'pg';

import { sourceAndTwoTargets, type FreshDatabase } from './fixtures.js';
import { expectSameRows } from './replication.js';
import { delay } from './wait.js';

export const workloadTables = `
  create table items (id int primary key, v int not null, payload text, touched_by text);
  create table events (id bigint primary key, item int not null, note text);`;

export interface WorkloadOptions {
  url: string;
  writers: number;
  lateCommitters: number;
  durationMs: number;
  /**
   * Write on past `durationMs` (by up to a minute) until this many transactions committed: a busy machine
   * commits fewer in the same time, and a test that needs a load of some size must not fail for that.
   */
  minCommitted?: number;
  /** Keys are drawn from 1..keys: small enough that writers collide. */
  keys: number;
}

export interface WorkloadResult {
  committed: number;
  rolledBack: number;
  failed: number;
  lateCommitted: number;
}

const random = (n: number): number => 1 + Math.floor(Math.random() * n);

/** One random operation on overlapping keys. */
async function operation(
  db: pg.Client,
  keys: number,
  writer: string,
  nextEvent: () => number,
): Promise<void> {
  const k = random(keys);
  switch (random(7)) {
    case 1:
      await db.query(
        `insert into items values ($1, 0, md5(random()::text), $2)
         on conflict (id) do update set v = items.v + 1, touched_by = excluded.touched_by`,
        [k, writer],
      );
      break;
    case 2:
      await db.query(
        `update items set v = v + 1, payload = md5(random()::text), touched_by = $2 where id = $1`,
        [k, writer],
      );
      break;
    case 3:
      await db.query(`delete from items where id = $1`, [k]);
      break;
    case 4:
      // The key itself changes: a delete of the old key and an insert of the new one on the targets.
      await db.query(`update items set id = $2 where id = $1`, [k, random(keys)]);
      break;
    case 5:
      await db.query(`update items set v = v + 10, touched_by = $3 where id between $1 and $2`, [
        k,
        k + 5,
        writer,
      ]);
      break;
    case 6:
      await db.query(`insert into events values ($1, $2, $3)`, [nextEvent(), k, writer]);
      break;
    default:
      await db.query(
        `insert into items select g, 1, 'bulk', $3 from generate_series($1::int, $2::int) g on conflict do nothing`,
        [k, k + 3, writer],
      );
  }
}

async function connectWriter(url: string, name: string): Promise<pg.Client> {
  const db = new pg.Client({ connectionString: url, application_name: `workload-${name}` });
  db.on('error', () => undefined);
  try {
    await db.connect();
  } catch (thrown) {
    await db.end().catch(() => undefined);
    throw thrown;
  }
  return db;
}

export async function runWorkload(options: WorkloadOptions): Promise<WorkloadResult> {
  const result: WorkloadResult = { committed: 0, rolledBack: 0, failed: 0, lateCommitted: 0 };
  const deadline = Date.now() + options.durationMs;
  const writing = (): boolean =>
    Date.now() < deadline ||
    (result.committed < (options.minCommitted ?? 0) && Date.now() < deadline + 60_000);
  let eventId = Date.now() * 100; // unique across runs of the same test database
  const nextEvent = (): number => ++eventId;

  const writer = async (name: string, late: boolean): Promise<void> => {
    // A writer whose server goes away (a restart in the test) connects again, as applications do.
    let db: pg.Client | undefined;
    while (writing()) {
      try {
        db ??= await connectWriter(options.url, name);
      } catch {
        await delay(100);
        continue;
      }
      try {
        await db.query('begin');
        const ops = late ? 3 : random(4);
        for (let i = 0; i < ops; i++) await operation(db, options.keys, name, nextEvent);
        if (late) {
          // Written first, committed seconds later: its changes carry ids older than many commits after them.
          await delay(1_000 + Math.random() * 2_000);
          await db.query('commit');
          result.lateCommitted++;
        } else if (Math.random() < 0.1) {
          await db.query('rollback');
          result.rolledBack++;
        } else {
          await db.query('commit');
          result.committed++;
        }
      } catch {
        result.failed++;
        const broken = await db.query('rollback').then(
          () => false,
          () => true,
        );
        if (broken) {
          await db.end().catch(() => undefined);
          db = undefined;
        }
      }
    }
    await db?.end().catch(() => undefined);
  };

  await Promise.all([
    ...Array.from({ length: options.writers }, (_, i) => writer(`w${i}`, false)),
    ...Array.from({ length: options.lateCommitters }, (_, i) => writer(`late${i}`, true)),
  ]);
  return result;
}

/** A source and two targets (on the three shared clusters), each with the workload's tables. */
export async function workloadDatabases(): Promise<{
  src: FreshDatabase;
  a: FreshDatabase;
  b: FreshDatabase;
}> {
  const { src, one, two } = await sourceAndTwoTargets(workloadTables);
  return { src, a: one, b: two };
}

/**
 * The raw config (as a file would hold it) that replicates the workload's tables from `src` to each
 * named target, without an initial copy; `extra` overrides or adds keys.
 */
export function workloadConfig(
  src: FreshDatabase,
  targets: Record<string, FreshDatabase>,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    source: { url: src.url },
    tables: ['items', 'events'],
    targets: Object.entries(targets).map(([name, db]) => ({ name, url: db.url, initialSync: 'none' })),
    apply: { pollIntervalMs: 200 },
    retry: { initialDelayMs: 100, maxDelayMs: 1000 },
    ...extra,
  };
}

/** Every workload table of every target equals the source's (count + hash, keyed diff otherwise). */
export async function expectWorkloadConverged(src: FreshDatabase, targets: FreshDatabase[]): Promise<void> {
  for (const target of targets) {
    for (const table of ['items', 'events']) {
      const query = `select * from ${table}`;
      await expectSameRows({ url: src.url, query }, { url: target.url, query }, 'id');
    }
  }
}

export interface SteadyWriter {
  /** Stop writing; resolves with the number of transactions committed. */
  stop(): Promise<number>;
}

/**
 * A client committing a small transaction every `intervalMs` (an insert into `events` and an update of
 * `items`) until stopped: the continuous writes of outage tests.
 */
export function steadyWriter(url: string, intervalMs: number): SteadyWriter {
  let running = true;
  let committed = 0;
  const done = (async () => {
    const db = new pg.Client({ connectionString: url, application_name: 'steady-writer' });
    db.on('error', () => undefined);
    await db.connect();
    let id = Date.now() * 1000;
    try {
      while (running) {
        const k = random(100);
        await db.query('begin');
        await db.query(`insert into events values ($1, $2, 'steady')`, [++id, k]);
        await db.query(
          `insert into items values ($1, 0, 'steady', 'steady') on conflict (id) do update set v = items.v + 1`,
          [k],
        );
        await db.query('commit');
        committed++;
        await delay(intervalMs);
      }
    } finally {
      await db.end();
    }
  })();
  return {
    stop: async () => {
      running = false;
      await done;
      return committed;
    },
  };
}

/** A step run again and again on one session of its own until stopped. */
export interface SessionLoop {
  /** Steps completed so far. */
  loops(): number;
  /** Stop after the step in progress; the session ends. */
  stop(): Promise<void>;
}

export function loopOnSession(
  url: string,
  applicationName: string,
  step: (client: pg.Client) => Promise<void>,
): SessionLoop {
  let going = true;
  let loops = 0;
  const done = (async () => {
    const client = new pg.Client({ connectionString: url, application_name: applicationName });
    await client.connect();
    try {
      while (going) {
        await step(client);
        loops++;
      }
    } finally {
      await client.end();
    }
  })();
  return {
    loops: () => loops,
    stop: async () => {
      going = false;
      await done;
    },
  };
}
