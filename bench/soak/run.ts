// Benchmark: the soak (issue #8, point 5). Minutes of steady writes on a table of fixed size while the
// daemon applies to one target and prunes: writer TPS, replication lag, the change log's size and the
// daemon's memory must stay flat, within 10% from the start of the run
// (after a warm-up) to its end. At the end the target must equal the source, or no verdict is printed.
import type pg from 'pg';

import type { Config } from '../../src/config/types.js';
import type { LoadResult } from '../support/load.js';
import { describeMachine, machineHeader } from '../support/machine.js';
import type { BenchContext } from '../support/options.js';
import { fmt, writeResults } from '../support/report.js';
import { createDatabase, tableFingerprint, withServers } from '../support/servers.js';
import {
  DaemonHandle,
  backlog,
  benchClient,
  benchConfig,
  uncapturedClient,
  waitCaughtUp,
} from '../support/trigsync.js';
import { DaemonRecorder } from './daemon-events.js';
import {
  catchUpLine,
  tableSizeLine,
  describeRun,
  driftNote,
  driftTable,
  seriesTable,
  verdictLine,
  writersLine,
  type CatchUp,
  type SoakSetup,
} from './report.js';
import { sampleUntil, type SamplerClients } from './sampler.js';
import {
  churnShare,
  churnWorkload,
  createTables,
  qualifiedTable,
  tableName,
  updateWorkload,
  writerClients,
} from './table.js';
import { drifts, figuresOf, tenths, type Series } from './windows.js';

export async function soakBench({ options, load }: BenchContext): Promise<void> {
  await withServers(['source', 'target'], async ({ clusters: [source, target] }) => {
    const sourceUrl = await createDatabase(source!, 'bench');
    const targetUrl = await createDatabase(target!, 'bench');
    const machine = await describeMachine(source!, load);
    console.log(`${machineHeader('soak', machine)}\n`);
    const config = benchConfig({ sourceUrl, targetUrl, tables: [qualifiedTable] });
    // Every 10 s: six samples per tenth of a full run; every twentieth of a shorter run: two per tenth.
    const setup: SoakSetup = {
      seconds: options.soakSeconds,
      rate: options.soakRate,
      sampleSeconds: Math.min(10, Math.max(1, options.soakSeconds / 20)),
    };
    console.log(`${describeRun(setup)}\n`);
    const quietSource = await uncapturedClient(config, sourceUrl);
    const quietTarget = await uncapturedClient(config, targetUrl);
    const sampler: SamplerClients = {
      source: await benchClient(sourceUrl),
      target: await benchClient(targetUrl),
    };
    const reported = new DaemonRecorder(config.targets[0]!.name);
    const daemon = new DaemonHandle(config);
    try {
      await createTables(quietSource, quietTarget);
      await Promise.all([quietSource.query('checkpoint'), quietTarget.query('checkpoint')]);
      // Installs the triggers and registers the target, which starts live: both sides hold the rows.
      await daemon.start(config, reported.subscribe);
      await waitCaughtUp(sampler.source, config);

      const origin = performance.now();
      reported.begin(origin);
      const stop = new AbortController();
      const writing = writeSteadily(load, sourceUrl, setup).finally(() => stop.abort());
      const [written, samples] = await Promise.all([
        writing,
        sampleUntil(sampler, origin, setup.sampleSeconds, stop.signal),
      ]);
      const catchUp = await timeCatchUp(sampler.source, config);
      await compareSides(quietSource, quietTarget);

      const series: Series = { ...writerSeries(written), daemon: reported.seconds, samples };
      const spans = tenths(setup.seconds);
      const byTenth = spans.map((span) => figuresOf(series, span));
      const drift = drifts(byTenth);
      console.log(seriesTable(spans, byTenth));
      console.log(`\n${driftTable(drift, spans)}`);
      console.log(driftNote());
      const transactions = written.reduce((n, w) => n + w.transactions, 0);
      console.log(`\n${writersLine(setup, transactions)}`);
      console.log(catchUpLine(catchUp));
      console.log(tableSizeLine(samples.at(-1)));
      console.log(verdictLine(drift));
      const file = await writeResults('soak', new Date(machine.date), {
        machine,
        options: { ...setup, clients: writerClients, churnShare },
        writers: written.map(({ transactions, tps, latencyMs }) => ({ transactions, tps, latencyMs })),
        catchUp,
        byTenth: byTenth.map((figures, i) => ({ ...spans[i], ...figures })),
        drift: drift.map(({ metric, ...d }) => ({ figure: metric.key, floor: metric.floor, ...d })),
        series,
      });
      console.log(`\nresults: ${file}`);
    } finally {
      await daemon.stop();
      await Promise.all(
        [quietSource, quietTarget, sampler.source, sampler.target].map((c) => c.end().catch(() => undefined)),
      );
    }
  });
}

/** The updates and the churn side by side, each at its share of the rate, for the whole run. */
function writeSteadily(load: BenchContext['load'], url: string, setup: SoakSetup): Promise<LoadResult[]> {
  const churnRate = setup.rate * churnShare;
  return Promise.all([
    load.run(updateWorkload, {
      url,
      clients: writerClients - 1,
      seconds: setup.seconds,
      rate: setup.rate - churnRate,
    }),
    load.run(churnWorkload, { url, clients: 1, seconds: setup.seconds, rate: churnRate }),
  ]);
}

/** Both generators' transactions per second, and their latency weighted by those, second by second. */
function writerSeries(results: readonly LoadResult[]): { tps: number[]; writeMs: number[] } {
  const seconds = Math.max(...results.map((r) => r.perSecond.length));
  const at = (i: number): { tps: number; latencyMs: number }[] =>
    results.map((r) => r.perSecond[i] ?? { tps: 0, latencyMs: 0 });
  const tps = Array.from({ length: seconds }, (_, i) => at(i).reduce((sum, s) => sum + s.tps, 0));
  const writeMs = tps.map((total, i) => at(i).reduce((sum, s) => sum + s.tps * s.latencyMs, 0) / total);
  return { tps, writeMs };
}

async function timeCatchUp(client: pg.Client, config: Config): Promise<CatchUp> {
  const stopped = performance.now();
  const backlogAtStop = await backlog(client, config);
  await waitCaughtUp(client, config);
  return { backlogAtStop, seconds: (performance.now() - stopped) / 1000 };
}

/** A run whose target differs from its source has measured a broken replication: fail it. */
async function compareSides(source: pg.Client, target: pg.Client): Promise<void> {
  const [a, b] = await Promise.all([
    tableFingerprint(source, tableName),
    tableFingerprint(target, tableName),
  ]);
  if (a.rows !== b.rows || a.hash !== b.hash) {
    throw new Error(
      `soak: the target differs from the source: ${fmt(a.rows, 0)} rows (hash ${a.hash}) on the source, ` +
        `${fmt(b.rows, 0)} rows (hash ${b.hash}) on the target\n${await keyedDiff(source, target)}`,
    );
  }
  console.error(`  target equals source: ${fmt(a.rows, 0)} rows, hash ${a.hash}`);
}

/** The rows that differ, by key: what a broken run leaves to investigate. */
async function keyedDiff(source: pg.Client, target: pg.Client): Promise<string> {
  const rows = async (client: pg.Client): Promise<Map<string, string>> => {
    const result = await client.query<{ id: string; row: string }>(
      `select id::text as id, t::text as row from ${tableName} t`,
    );
    return new Map(result.rows.map((r) => [r.id, r.row]));
  };
  const [left, right] = await Promise.all([rows(source), rows(target)]);
  const lines: string[] = [];
  for (const [id, row] of left)
    if (right.get(id) !== row) lines.push(`  ${id}: ${row} | ${right.get(id) ?? '-'}`);
  for (const [id, row] of right) if (!left.has(id)) lines.push(`  ${id}: - | ${row}`);
  return `id: source | target\n${lines.slice(0, 20).join('\n')}${lines.length > 20 ? `\n  (${lines.length} in all)` : ''}`;
}
