/**
 * DDL on users' tables that gives way to their users. CREATE TRIGGER takes a SHARE ROW EXCLUSIVE lock on
 * its table and DROP TRIGGER an ACCESS EXCLUSIVE one, held to the end of the transaction; an install
 * that makes the triggers of several tables in one transaction, while a user's transaction writes two of
 * them in the other order, waits in a cycle with it, and the deadlock detector may cancel the user's
 * transaction. So each such statement waits for its lock a short time, well below `deadlock_timeout`
 * (whose expiry is when the detector looks), and on expiry the whole transaction rolls back and is tried
 * again a little later: trigsync's transaction is the one that always gives way.
 */
import type pg from 'pg';

import { sqlState, TableBusy } from '../failure/errors.js';
import { Backoff, sleep } from '../lib/runnable.js';
import { inTransaction } from './connect.js';

/** The longest a statement on a user's table waits for its lock: a quarter of deadlock_timeout, at most. */
const lockWaitCapMs = 200;

/** How long a transaction of such statements is tried again before it fails, unless told otherwise. */
export const givingWayBudgetMs = 30_000;

/**
 * Run `statements` on the user's table `table` (its display name, for the error) in the caller's
 * transaction, each waiting for its lock a short time; a wait that expires throws TableBusy.
 */
export async function onUsersTable(
  client: pg.ClientBase,
  table: string,
  statements: readonly string[],
): Promise<void> {
  const set = await client.query<{ before: string; wait: string }>(
    `select current_setting('lock_timeout') as before,
            set_config('lock_timeout',
              greatest(10, least($1::int8,
                (extract(epoch from current_setting('deadlock_timeout')::interval) * 250)::int8)) || 'ms',
              true) as wait`,
    [lockWaitCapMs],
  );
  const { before, wait } = set.rows[0]!;
  for (const statement of statements) {
    try {
      await client.query(statement);
    } catch (thrown) {
      // lock_not_available: lock_timeout expired.
      if (sqlState(thrown) === '55P03') throw new TableBusy(table, wait, thrown);
      throw thrown;
    }
  }
  await client.query(`select set_config('lock_timeout', $1, true)`, [before]);
}

/**
 * `work` in a transaction, begun again while one of its statements on users' tables (onUsersTable) gave
 * way, for up to `budgetMs`; then the last TableBusy is thrown, a retryable error.
 */
export async function inTransactionGivingWay<T>(
  client: pg.ClientBase,
  work: () => Promise<T>,
  options: { budgetMs?: number; signal?: AbortSignal | undefined } = {},
): Promise<T> {
  const started = Date.now();
  const deadline = started + (options.budgetMs ?? givingWayBudgetMs);
  const backoff = new Backoff({ initialDelayMs: 50, maxDelayMs: 2_000 });
  for (;;) {
    try {
      return await inTransaction(client, work);
    } catch (thrown) {
      if (!(thrown instanceof TableBusy)) throw thrown;
      if (Date.now() >= deadline || options.signal?.aborted === true)
        throw new TableBusy(thrown.table, thrown.wait, thrown.cause, Date.now() - started);
    }
    await sleep(Math.min(backoff.next(), Math.max(0, deadline - Date.now())), options.signal);
  }
}
