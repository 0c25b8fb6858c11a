/**
 * Removes changes that every registered target has applied (G7). A change is applied everywhere when
 * its transaction is older than the oldest xmin of the targets' positions, every group's targets
 * alike. Targets that are parked or removed from the config hold the log; status shows which. The
 * horizon is recorded first (src/changelog/horizon.ts), so that a target found behind it later is told so, not
 * served a gap.
 *
 * Each group's leader runs a pruner, and one of them prunes: the one whose session holds the pruner's
 * advisory lock. When its leader stops, its session ends and another group's pruner takes the lock at
 * its next round, so the log is pruned as long as any group leads.
 */
import type pg from 'pg';

import { ident } from '../config/identifiers.js';
import type { Config } from '../config/types.js';
import { PeriodicSourceJob } from '../db/periodic-job.js';
import type { TermFence } from '../db/term-fence.js';
import type { Logger } from '../lib/logger.js';
import { advanceHorizon } from './horizon.js';

const pruneIntervalMs = 5_000;
/**
 * The advisory lock by which a comparison (verify) keeps the pruner's deletes off while it reads the log:
 * comparisons hold it shared, each delete statement tries it exclusively and deletes nothing when it is
 * held. The two ints are this text's hash and the schema's.
 */
const pauseLock = (schemaParam: string): string =>
  `hashtext('trigsync prune pause'), hashtext(${schemaParam})`;

/**
 * Keep the pruner from deleting until `resumePruning`: every change that is in the log now stays
 * visible to the snapshots this session takes meanwhile. Waits for a delete in progress to commit.
 */
export async function pausePruning(client: pg.ClientBase, schema: string): Promise<void> {
  await client.query(`select pg_advisory_lock_shared(${pauseLock('$1')})`, [schema]);
}

export async function resumePruning(client: pg.ClientBase, schema: string): Promise<void> {
  await client.query(`select pg_advisory_unlock_shared(${pauseLock('$1')})`, [schema]);
}
/** Rows deleted per statement, so that pruning never holds long locks or long transactions. */
const pruneChunk = 20_000;

/** Delete what every target has applied; returns the number of rows removed. */
export async function pruneLog(client: pg.ClientBase, schema: string): Promise<number> {
  const s = ident(schema);
  const xmin = await advanceHorizon(client, schema);
  let removed = 0;
  for (;;) {
    // A range, not `id in (select ... limit n)`: the statistics are the last vacuum's, right after a prune
    // (an empty log), and for "one row" the planner re-ran that subquery for each row of the log: 140 s
    // for 100k rows. No row with txid < xmin can appear meanwhile, so the chunk is the ids read.
    // The pause lock is tried once per statement (an uncorrelated subquery) and held to its commit.
    const result = await client.query(
      `delete from ${s}.change_log where txid < $1::xid8 and id <= (
         select max(id) from (
           select id from ${s}.change_log where txid < $1::xid8 order by id limit ${pruneChunk}) chunk)
         and (select pg_try_advisory_xact_lock(${pauseLock('$2')}))`,
      [xmin, schema],
    );
    removed += result.rowCount ?? 0;
    if ((result.rowCount ?? 0) < pruneChunk) return removed;
  }
}

/**
 * Take the source's pruner lock on this session, if no other holds it. A session lock is counted: take
 * it once per session.
 */
async function tryPrunerLock(client: pg.ClientBase, schema: string): Promise<boolean> {
  const result = await client.query<{ locked: boolean }>(
    `select pg_try_advisory_lock(hashtext('trigsync pruner'), hashtext($1)) as locked`,
    [schema],
  );
  return result.rows[0]?.locked === true;
}

export class LogPruner extends PeriodicSourceJob {
  readonly name = 'pruner';
  /** The session that holds the pruner's lock; a new session (after an error) takes it anew. */
  private holder: pg.Client | undefined;
  constructor(config: Config, logger: Logger, fence: TermFence) {
    super(config, logger, fence, pruneIntervalMs, 'pruning');
  }

  protected async work(client: pg.Client): Promise<void> {
    if (this.holder !== client) {
      if (!(await tryPrunerLock(client, this.config.schema))) return; // another group's leader prunes
      this.holder = client;
      this.logger.debug('this daemon prunes the change log');
    }
    const removed = await pruneLog(client, this.config.schema);
    if (removed === 0) return;
    // Autovacuum looks at a table at most once a minute (autovacuum_naptime) and then by scale factor; a
    // log churning thousands of rows a second bloats in between (bench/prune measured 450 MB after 60 s
    // at 30k rows/s). Vacuuming right after each prune keeps it compact.
    await client.query(`vacuum ${ident(this.config.schema)}.change_log`);
    this.logger.debug({ removed }, 'pruned change log');
  }
}
