// The changes each case produces on the source while replication is stopped, the same for trigsync's
// table and native's: many single-row transactions, one transaction of as many rows, one UPDATE and one
// DELETE of as many rows that both sides held before, and a large backlog of multi-row transactions.
// Also the shape of a result, which every case and replication shares.
import { insertWorkload, type Workload } from '../support/load.js';
import type { BenchOptions } from '../support/options.js';
import { fmt } from '../support/report.js';
import type { Rig, TargetDatabase } from './setup.js';

export type CaseKey = 'transactions' | 'statement' | 'update' | 'delete' | 'backlog';

export interface ThroughputCase {
  key: CaseKey;
  /** For the table: what was captured while replication was stopped. */
  label: string;
  /**
   * The rows the case's changes find, written alike to the source and `targets` without replicating them,
   * on the emptied tables and before native's subscription is made.
   */
  prefill?(rig: Rig, table: string, targets: readonly TargetDatabase[]): Promise<void>;
  produce(rig: Rig, table: string): Promise<void>;
}

/**
 * Produce the case's changes, then checkpoint both servers: the same start for each system's timed run,
 * not a checkpoint that the writing of one system's backlog (trigsync's writes its log too) makes due
 * in the middle of that system's run only.
 */
export async function produceSettled(rig: Rig, throughputCase: ThroughputCase, table: string): Promise<void> {
  await throughputCase.produce(rig, table);
  await Promise.all([rig.admin.query('checkpoint'), rig.targets[0]?.client.query('checkpoint')]);
}

const payload = 'trigsync throughput benchmark: a short text column';
/** Writers of the single-row transactions: enough to produce them quickly. */
export const writers = 8;
/**
 * The backlog comes in transactions of this many rows, from `backlogWriters` clients: a million
 * single-row transactions with every commit flushed would take longer to produce than to apply.
 */
export const backlogRowsPerTransaction = 100;
export const backlogWriters = 4;
/** On the source only: the backlog's keys. */
export const backlogSequence = 'create sequence backlog_ids';

export function throughputCases(options: BenchOptions): Record<CaseKey, ThroughputCase> {
  return {
    transactions: {
      key: 'transactions',
      label: `${fmt(options.rows, 0)} single-row transactions`,
      produce: async (rig, table) => {
        const perWriter = Math.ceil(options.rows / writers);
        await rig.load.run(insertWorkload(table, payload), {
          url: rig.sourceUrl,
          clients: writers,
          transactions: perWriter,
        });
      },
    },
    statement: {
      key: 'statement',
      label: `one ${fmt(options.rows, 0)}-row transaction`,
      produce: async (rig, table) => {
        await rig.admin.query(
          `insert into ${table} (id, a, b, c)
             select g, g % 1000, '${payload}', now() from generate_series(1, $1::int) g`,
          [options.rows],
        );
      },
    },
    update: {
      key: 'update',
      label: `one ${fmt(options.rows, 0)}-row UPDATE, keys kept`,
      prefill: (rig, table, targets) => prefillRows(rig, table, targets, options.rows),
      produce: async (rig, table) => {
        await rig.admin.query(`update ${table} set a = a + 1, c = c + interval '1 day'`);
      },
    },
    delete: {
      key: 'delete',
      label: `one ${fmt(options.rows, 0)}-row DELETE`,
      prefill: (rig, table, targets) => prefillRows(rig, table, targets, options.rows),
      produce: async (rig, table) => {
        await rig.admin.query(`delete from ${table}`);
      },
    },
    backlog: {
      key: 'backlog',
      label: `backlog of ${fmt(options.backlog, 0)}, ${backlogRowsPerTransaction}-row transactions`,
      produce: async (rig, table) => {
        const transactions = Math.ceil(options.backlog / backlogRowsPerTransaction / backlogWriters);
        await rig.load.run(multiRowWorkload(table), {
          url: rig.sourceUrl,
          clients: backlogWriters,
          transactions,
        });
      },
    },
  };
}

/**
 * `rows` rows, the same on the source (not captured) and every target, analyzed as tables that have been
 * in use a while are.
 */
async function prefillRows(
  rig: Rig,
  table: string,
  targets: readonly TargetDatabase[],
  rows: number,
): Promise<void> {
  const clients = [rig.quietSource, ...targets.map((t) => t.client)];
  const fill = `insert into ${table} (id, a, b, c)
    select g, g % 1000, '${payload}', timestamptz '2026-01-01' + g * interval '1 s' from generate_series(1, $1::int) g`;
  await Promise.all(clients.map((client) => client.query(fill, [rows])));
  await Promise.all(clients.map((client) => client.query(`vacuum analyze ${table}`)));
}

/** One INSERT of `backlogRowsPerTransaction` rows per transaction, keys from a sequence. */
function multiRowWorkload(table: string): Workload {
  const statement = `insert into ${table} (id, a, b, c)
  select nextval('backlog_ids'), g, '${payload}', now() from generate_series(1, ${backlogRowsPerTransaction}) g`;
  return { name: 'backlog', script: `${statement};\n`, statement, values: () => [] };
}

export type Replication = 'trigsync' | 'native';

export interface TargetResult {
  name: string;
  /** From the start of replication to the commit of the target's last change. */
  seconds: number;
  rowsPerSecond: number;
  /** trigsync only: its batches, and the share of the time spent in target transactions. */
  batches?: number;
  targetShare?: number;
}

export interface ThroughputResult {
  case: CaseKey;
  replication: Replication;
  /** trigsync's apply.batchSize; null for native. */
  batchSize: number | null;
  targets: number;
  /** Changes each target applies. */
  changes: number;
  /** Until the last target is done. */
  seconds: number;
  /** All targets together: changes × targets ÷ seconds. */
  rowsPerSecond: number;
  /** trigsync only: of `seconds`, until the daemon had installed and started its workers. */
  startSeconds?: number;
  perTarget: TargetResult[];
}
