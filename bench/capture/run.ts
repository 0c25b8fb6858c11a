// Benchmark 1: what capture costs the writers. Single-row INSERT and UPDATE TPS, the server time of one
// such statement, and the time of one 100k-row INSERT and UPDATE statement: without capture, with
// trigsync's statement-level capture and with a row-level variant (bench/sql/capture-row.sql), and the
// statements also with a trial of a packed log (bench/sql/capture-packed.sql). While
// captured, the daemon applies to one target and prunes the log as in production; one more column shows
// statement-level capture with the daemon stopped, to tell the triggers' cost from that of the daemon
// and the target sharing the machine, and one shows the writers without capture while native logical
// replication applies to the same target: what replicating costs them when PostgreSQL does it.
import type pg from 'pg';

import { installSource } from '../../src/operator/install-source.js';
import type { Config } from '../../src/config/types.js';
import type { LoadGenerator } from '../support/load.js';
import { describeMachine, machineHeader } from '../support/machine.js';
import type { BenchContext, BenchOptions } from '../support/options.js';
import { fmt, median, writeResults } from '../support/report.js';
import { logicalSettings, subscribeNative } from '../support/logical.js';
import { createDatabase, withServers } from '../support/servers.js';
import { DaemonHandle, backlog, benchClient, benchConfig, drainLog } from '../support/trigsync.js';
import { sampleWaits } from '../support/waits.js';
import { bulkTable, costTable, plural, rowVersusStatement, singleRowTable, waitTable } from './report.js';
import {
  bulkInsert,
  bulkModes,
  installBenchCapture,
  bulkRepetitions,
  bulkRows,
  bulkUpdate,
  ddl,
  insertRows,
  none,
  setTriggers,
  singleRowModes,
  statementModes,
  tables,
  updateWorkload,
  type BulkResult,
  type CostResult,
  type Mode,
  type SingleRowResult,
} from './setup.js';

/** Server time: rounds through the modes, so that drift hits them alike; statements per round. */
const costRounds = 5;
const costStatements = 400;
/** Statements not counted after each change of triggers: plans and caches are rebuilt. */
const costWarmup = 40;

/** What every measurement works with. */
interface Rig {
  sourceUrl: string;
  config: Config;
  admin: pg.Client;
  targetAdmin: pg.Client;
  sampler: pg.Client;
  daemon: DaemonHandle;
  load: LoadGenerator;
}

export async function captureBench({ options, load }: BenchContext): Promise<void> {
  // Every run at wal_level=logical, the native mode's need: the same WAL for every mode.
  await withServers(
    ['source', 'target'],
    async ({ clusters: [source, target] }) => {
      const sourceUrl = await createDatabase(source!, 'bench');
      const targetUrl = await createDatabase(target!, 'bench');
      const machine = await describeMachine(source!, load);
      console.log(`${machineHeader('capture overhead', machine)}\n`);
      const config = benchConfig({ sourceUrl, targetUrl, tables });
      const rig: Rig = {
        sourceUrl,
        config,
        admin: await benchClient(sourceUrl),
        targetAdmin: await benchClient(targetUrl),
        sampler: await benchClient(sourceUrl),
        // Each mode but trigsync's drops its triggers, which the daemon's next start finds and says.
        daemon: new DaemonHandle(config, /its capture was off: capture triggers [^"]* dropped/),
        load,
      };
      try {
        await rig.admin.query(ddl);
        await rig.targetAdmin.query(ddl);
        await installSource(rig.admin, config);
        await installBenchCapture(rig.admin);
        const singleRow = await measureSingleRow(rig, options);
        const cost = await measureCost(rig);
        const bulk = await measureBulk(rig);

        console.log(singleRowTable(singleRow, options.seconds));
        console.log(`\n${waitTable(singleRow)}`);
        console.log(`\n${costTable(cost, costRounds * costStatements)}`);
        console.log(`\n${bulkTable(bulk)}`);
        console.log(`\n${rowVersusStatement(singleRow, cost, bulk)}`);
        const file = await writeResults('capture', new Date(machine.date), {
          machine,
          options: {
            seconds: options.seconds,
            clients: options.clients,
            rounds: options.captureRounds,
            bulkRows,
            bulkRepetitions,
          },
          modes: singleRowModes,
          singleRow,
          cost,
          bulk,
        });
        console.log(`\nresults: ${file}`);
      } finally {
        await rig.daemon.stop();
        await Promise.all([rig.admin.end(), rig.targetAdmin.end(), rig.sampler.end()]);
      }
    },
    logicalSettings,
  );
}

/** The same start for every measurement: empty log, vacuumed tables, fresh checkpoints. */
async function prepare(rig: Rig, mode: Mode, truncate?: string): Promise<void> {
  const { admin, config, daemon } = rig;
  if (truncate !== undefined) await admin.query(`truncate ${truncate}`);
  // Starting the daemon installs trigsync's triggers again: set the mode's triggers after it.
  await daemon.start();
  await drainLog(admin, config);
  // Runs without capture leave the source's rows changed and the target's not: make them equal again,
  // or every captured update would be a conflict (and its log line).
  if (truncate === undefined) await copyUpdateTable(rig);
  if (!mode.daemon) await daemon.stop();
  await setTriggers(admin, config, mode.triggers);
  await admin.query(`vacuum analyze ${tables.join(', ')}`);
  await Promise.all([admin.query('checkpoint'), rig.targetAdmin.query('checkpoint')]);
}

/** The target's bench_upd made equal to the source's, without capture on either side. */
async function copyUpdateTable({ admin, targetAdmin }: Rig): Promise<void> {
  const rows = await admin.query<{ id: string[]; a: number[]; b: string[]; c: string[] }>(
    `select array_agg(id) as id, array_agg(a) as a, array_agg(b) as b, array_agg(c::text) as c from bench_upd`,
  );
  const { id, a, b, c } = rows.rows[0]!;
  await targetAdmin.query('begin');
  await targetAdmin.query('truncate bench_upd');
  await targetAdmin.query(
    `insert into bench_upd select * from unnest($1::bigint[], $2::int[], $3::text[], $4::timestamptz[])`,
    [id, a, b, c],
  );
  await targetAdmin.query('commit');
  await targetAdmin.query('vacuum analyze bench_upd');
}

async function measureSingleRow(rig: Rig, options: BenchOptions): Promise<SingleRowResult[]> {
  const results: SingleRowResult[] = [];
  const workloads = [
    ['INSERT', insertRows, 'bench_rows'],
    ['UPDATE', updateWorkload, undefined],
  ] as const;
  for (const [label, workload, truncate] of workloads) {
    for (const clients of options.clients) {
      for (let round = 1; round <= options.captureRounds; round++) {
        for (const mode of singleRowModes) {
          await prepare(rig, mode, truncate);
          const subscription = mode.native === true ? await subscribe(rig, truncate) : undefined;
          const [result, waits] = await sampleWaits(rig.sampler, () =>
            rig.load.run(workload, { url: rig.sourceUrl, clients, seconds: options.seconds }),
          );
          await subscription?.drop();
          const backlogAtEnd = mode.daemon ? await backlog(rig.admin, rig.config) : null;
          results.push({ workload: label, clients, round, mode: mode.key, ...result, backlogAtEnd, waits });
          const rounds = options.captureRounds > 1 ? `, round ${round}` : '';
          console.error(
            `  ${label}, ${plural(clients, 'client')}${rounds}, ${mode.label}: ${fmt(result.tps)} tps`,
          );
        }
      }
    }
  }
  return results;
}

/**
 * Native logical replication of the single-row tables to the target, which holds what the source holds:
 * prepare() made the updated table equal, and the truncated one is emptied here (its truncate was not
 * captured under the mode's triggers). No change meets a conflict.
 */
async function subscribe(rig: Rig, truncate: string | undefined) {
  if (truncate !== undefined) await rig.targetAdmin.query(`truncate ${truncate}`);
  return subscribeNative({
    name: 'bench_capture_native',
    source: rig.admin,
    sourceUrl: rig.sourceUrl,
    target: rig.targetAdmin,
    tables: ['public.bench_rows', 'public.bench_upd'],
  });
}

interface ExplainedPlan {
  'Execution Time': number;
  Triggers?: { Time: number }[];
}

/**
 * Server time of single-row statements, from EXPLAIN ANALYZE in one session with the daemon stopped,
 * each rolled back: the triggers' own cost, free of commits and of other sessions. Medians, as a descheduled backend
 * now and then makes a statement take many times longer.
 */
async function measureCost(rig: Rig): Promise<CostResult[]> {
  const samples = new Map<string, { execution: number[]; trigger: number[] }>();
  await prepare(rig, none, 'bench_rows');
  for (let round = 0; round < costRounds; round++) {
    for (const mode of statementModes) {
      await setTriggers(rig.admin, rig.config, mode.triggers);
      for (const [label, workload] of [
        ['INSERT', insertRows],
        ['UPDATE', updateWorkload],
      ] as const) {
        const key = `${label} ${mode.key}`;
        const sample = samples.get(key) ?? { execution: [], trigger: [] };
        samples.set(key, sample);
        for (let i = 0; i < costWarmup + costStatements; i++) {
          // Rolled back: rows changed without capture in one mode would meet the captured changes of
          // another on the target as conflicts once the daemon runs again.
          await rig.admin.query('begin');
          const explained = await rig.admin.query<{ 'QUERY PLAN': ExplainedPlan[] }>({
            text: `explain (analyze, format json) ${workload.statement}`,
            values: workload.values(),
          });
          await rig.admin.query('rollback');
          const plan = explained.rows[0]?.['QUERY PLAN'][0];
          if (i < costWarmup || plan === undefined) continue;
          sample.execution.push(plan['Execution Time'] * 1000);
          sample.trigger.push((plan.Triggers ?? []).reduce((sum, t) => sum + t.Time, 0) * 1000);
        }
      }
    }
    console.error(`  server time per statement: round ${round + 1} of ${costRounds} done`);
  }
  return [...samples].map(([key, { execution, trigger }]) => {
    const [statement = '', mode = ''] = key.split(' ');
    return { statement, mode, executionUs: median(execution), triggerUs: median(trigger) };
  });
}

async function measureBulk(rig: Rig): Promise<BulkResult[]> {
  const results: BulkResult[] = bulkModes.flatMap((mode) => [
    { statement: 'INSERT', mode: mode.key, ms: [] },
    { statement: 'UPDATE', mode: mode.key, ms: [] },
  ]);
  const timed = async (sql: string): Promise<number> => {
    const started = performance.now();
    await rig.admin.query(sql);
    return performance.now() - started;
  };
  // Repetitions go round the modes, so that a slow phase of the machine hits them all alike.
  for (let rep = 0; rep < bulkRepetitions; rep++) {
    for (const mode of bulkModes) {
      const [insert, update] = results.filter((b) => b.mode === mode.key);
      await prepare(rig, mode, 'bench_bulk');
      insert!.ms.push(await timed(bulkInsert));
      await prepare(rig, mode);
      update!.ms.push(await timed(bulkUpdate));
      console.error(
        `  100k-row statements, ${mode.label}: ${fmt(insert!.ms.at(-1)!)} ms, ${fmt(update!.ms.at(-1)!)} ms`,
      );
    }
  }
  return results;
}
