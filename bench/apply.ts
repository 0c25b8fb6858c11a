// Benchmark 2: apply throughput to one target. Changes are captured while the daemon is stopped, then
// the daemon starts and we time until the target has applied them all: (a) many single-row transactions,
// (b) one transaction of as many rows. At trigsync's default apply.batchSize and at the others asked for.
import type pg from 'pg';

import type { Config } from '../src/config/types.js';
import { waitFor } from '../test/support/wait.js';
import { insertWorkload } from './support/load.js';
import { describeMachine, machineHeader } from './support/machine.js';
import type { BenchContext } from './support/options.js';
import { fmt, formatTable, verdict, writeResults, type Cell } from './support/report.js';
import { createDatabase, withServers } from './support/servers.js';
import {
  DaemonHandle,
  benchClient,
  benchConfig,
  drainLog,
  uncapturedClient,
  waitCaughtUp,
} from './support/trigsync.js';

const table = 'public.apply_rows';
const ddl = `create table apply_rows (id bigint primary key, a int, b text, c timestamptz)`;
const payload = 'trigsync apply benchmark: a short text column';
/** Issue #8. */
const targetRowsPerSecond = 30_000;
/** Writers of the single-row transactions: enough to produce them quickly. */
const writers = 8;

const insertRows = insertWorkload('apply_rows', payload);

interface ApplyResult {
  case: string;
  batchSize: number;
  changes: number;
  /** From the daemon's start to the commit of the batch that applied the last change. */
  seconds: number;
  rowsPerSecond: number;
  batches: number;
  /** Share of the time spent applying batches on the target (the rest: reading the log, ticks, start). */
  targetShare: number;
}

export async function applyBench({ options, load }: BenchContext): Promise<void> {
  await withServers(['source', 'target'], async ({ clusters: [source, target] }) => {
    const sourceUrl = await createDatabase(source!, 'bench');
    const targetUrl = await createDatabase(target!, 'bench');
    const machine = await describeMachine(source!, load);
    console.log(`${machineHeader('apply throughput', machine)}\n`);
    const base = benchConfig({ sourceUrl, targetUrl, tables: [table] });
    const admin = await benchClient(sourceUrl);
    // Resetting the tables between cases must not be captured.
    const quietSource = await uncapturedClient(base, sourceUrl);
    const quietTarget = await uncapturedClient(base, targetUrl);
    const daemon = new DaemonHandle(base);
    try {
      await admin.query(ddl);
      await quietTarget.query(ddl);
      // Install, register the target and let its worker set the target up: every case starts live.
      await daemon.start();
      await waitCaughtUp(admin, base);
      await daemon.stop();

      const cases = [
        {
          key: 'transactions',
          label: `${fmt(options.rows, 0)} single-row transactions`,
          produce: async () => {
            const perWriter = Math.ceil(options.rows / writers);
            await load.run(insertRows, { url: sourceUrl, clients: writers, transactions: perWriter });
          },
        },
        {
          key: 'statement',
          label: `one ${fmt(options.rows, 0)}-row transaction`,
          produce: async () => {
            await admin.query(
              `insert into apply_rows (id, a, b, c)
                 select g, g % 1000, '${payload}', now() from generate_series(1, $1::int) g`,
              [options.rows],
            );
          },
        },
        {
          key: 'update',
          label: `one ${fmt(options.rows, 0)}-row UPDATE`,
          // Both sides hold the rows already: every old row is compared with the target's (conflicts).
          prepare: async () => {
            const fill = `insert into apply_rows (id, a, b, c)
                            select g, g % 1000, '${payload}', '2026-01-01' from generate_series(1, $1::int) g`;
            await Promise.all([
              quietSource.query(fill, [options.rows]),
              quietTarget.query(fill, [options.rows]),
            ]);
          },
          produce: async () => {
            await admin.query(`update apply_rows set a = a + 1`);
          },
        },
      ];
      const results: ApplyResult[] = [];
      for (const batchSize of options.batchSizes) {
        const config = benchConfig({ sourceUrl, targetUrl, tables: [table], batchSize });
        for (const { key, label, prepare, produce } of cases) {
          await quietSource.query('truncate apply_rows');
          await quietTarget.query('truncate apply_rows');
          await prepare?.();
          await Promise.all([
            admin.query('vacuum analyze apply_rows'),
            quietTarget.query('vacuum analyze apply_rows'),
          ]);
          await Promise.all([admin.query('checkpoint'), quietTarget.query('checkpoint')]);
          await produce();
          const result = await timeApply(daemon, admin, config, key, batchSize);
          await checkTarget(admin, quietTarget);
          results.push(result);
          console.error(`  ${label}, batchSize ${batchSize}: ${fmt(result.rowsPerSecond)} rows/s`);
          await drainLog(admin, config);
          await daemon.stop();
        }
      }

      const labels = new Map(cases.map((c) => [c.key, c.label]));
      console.log(resultTable(results, labels));
      console.log(`\n${summary(results, labels, options.batchSizes[0]!)}`);
      const file = await writeResults('apply', new Date(machine.date), {
        machine,
        options: { rows: options.rows, batchSizes: options.batchSizes, writers },
        results,
      });
      console.log(`\nresults: ${file}`);
    } finally {
      await daemon.stop();
      await Promise.all([admin.end(), quietSource.end(), quietTarget.end()]);
    }
  });
}

/** Starts the daemon on a captured backlog and times it until every change is applied. */
async function timeApply(
  daemon: DaemonHandle,
  admin: pg.Client,
  config: Config,
  key: string,
  batchSize: number,
): Promise<ApplyResult> {
  const counted = await admin.query<{ n: number }>('select count(*) as n from trigsync.change_log');
  const changes = counted.rows[0]!.n;
  let applied = 0;
  let batches = 0;
  let targetMs = 0;
  let doneAt = NaN;
  const started = performance.now();
  await daemon.start(config, (events) =>
    events.on('batch:applied', (batch) => {
      applied += batch.changes;
      batches++;
      targetMs += batch.durationMs;
      if (applied >= changes && Number.isNaN(doneAt)) doneAt = performance.now();
    }),
  );
  await waitFor(() => !Number.isNaN(doneAt), { what: 'every change to be applied', timeoutMs: 600_000 });
  // The events count changes read; status must agree that nothing is left.
  await waitCaughtUp(admin, config);
  const seconds = (doneAt - started) / 1000;
  return {
    case: key,
    batchSize,
    changes,
    seconds,
    rowsPerSecond: changes / seconds,
    batches,
    targetShare: targetMs / (doneAt - started),
  };
}

async function checkTarget(admin: pg.Client, target: pg.Client): Promise<void> {
  const count = async (client: pg.Client): Promise<number> =>
    (await client.query<{ n: number }>('select count(*) as n from apply_rows')).rows[0]!.n;
  const [a, b] = await Promise.all([count(admin), count(target)]);
  if (a !== b) throw new Error(`apply_rows: ${a} rows on the source, ${b} on the target`);
}

function resultTable(results: ApplyResult[], labels: Map<string, string>): string {
  const rows = results.map((r): Cell[] => [
    labels.get(r.case) ?? r.case,
    r.batchSize,
    r.changes,
    r.seconds,
    r.rowsPerSecond,
    `≥ ${fmt(targetRowsPerSecond, 0)}`,
    verdict(r.rowsPerSecond >= targetRowsPerSecond),
    r.batches,
    `${fmt(r.targetShare * 100, 0)}%`,
  ]);
  return [
    'Apply to one target: from daemon start until the last change is committed on the target',
    formatTable(
      ['captured while stopped', 'batchSize', 'changes', 's', 'rows/s', 'target', '', 'batches', 'on target'],
      rows,
    ),
    '"on target": share of the time spent in target transactions (the rest reads the log and takes ticks).',
  ].join('\n');
}

function summary(results: ApplyResult[], labels: Map<string, string>, defaultSize: number): string {
  const lines = [
    'Default versus best apply.batchSize (issue #3 asks for the figures; issue #8 for ≥ 30,000 rows/s):',
  ];
  for (const [key, label] of labels) {
    const own = results.filter((r) => r.case === key);
    const atDefault = own.find((r) => r.batchSize === defaultSize);
    const best = own.reduce((a, b) => (b.rowsPerSecond > a.rowsPerSecond ? b : a));
    lines.push(
      `  ${label}: default (${defaultSize}) ${fmt(atDefault?.rowsPerSecond ?? NaN)} rows/s; ` +
        `best ${fmt(best.rowsPerSecond)} rows/s at ${best.batchSize}`,
    );
  }
  return lines.join('\n');
}
