// Benchmark: how long a single-row INSERT takes from its commit on the source to its commit on the
// target, at steady rates and with the writers flat out; trigsync's daemon applying to one target, then
// PostgreSQL's native logical replication on the same servers, for the ratio of the two.
import type pg from 'pg';

import type { LoadGenerator } from '../support/load.js';
import { logicalSettings } from '../support/logical.js';
import { describeMachine, machineHeader } from '../support/machine.js';
import type { BenchContext } from '../support/options.js';
import { fmt, writeResults } from '../support/report.js';
import { createDatabase, withServers } from '../support/servers.js';
import { benchClient, benchConfig, uncapturedClient } from '../support/trigsync.js';
import { rowLatencies, summarize } from './measure.js';
import { NativeReplicator, TrigsyncReplicator, type Replicator } from './replicators.js';
import { latencyNotes, latencyTable } from './report.js';
import {
  latencyCases,
  latencyWorkload,
  nativeTable,
  sourceDdl,
  targetDdl,
  trigsyncTable,
  type LatencyCase,
  type RunResult,
} from './setup.js';

/** Native replication needs wal_level=logical; the latency needs every commit's timestamp. */
const serverSettings = [...logicalSettings, 'track_commit_timestamp=on'];

export async function latencyBench({ options, load }: BenchContext): Promise<void> {
  await withServers(
    ['source', 'target'],
    async ({ clusters: [source, target] }) => {
      const sourceUrl = await createDatabase(source!, 'bench');
      // One target database per system: the subscription's and trigsync's never meet.
      const trigsyncTargetUrl = await createDatabase(target!, 'bench_trigsync');
      const nativeTargetUrl = await createDatabase(target!, 'bench_native');
      const machine = await describeMachine(source!, load);
      console.log(machineHeader('replication latency', machine));
      console.log(`         ${serverSettings.join(' ')} (both systems)\n`);
      const config = benchConfig({
        sourceUrl,
        targetUrl: trigsyncTargetUrl,
        tables: [`public.${trigsyncTable}`],
      });
      const admin = await benchClient(sourceUrl);
      const quietSource = await uncapturedClient(config, sourceUrl);
      const quietTarget = await uncapturedClient(config, trigsyncTargetUrl);
      const nativeTarget = await benchClient(nativeTargetUrl);
      const trigsync = new TrigsyncReplicator(config, admin, quietSource, quietTarget);
      const native = new NativeReplicator(admin, sourceUrl, nativeTarget);
      try {
        await admin.query(`${sourceDdl(trigsyncTable)}; ${sourceDdl(nativeTable)}`);
        await quietTarget.query(targetDdl(trigsyncTable));
        await nativeTarget.query(targetDdl(nativeTable));

        const cases = latencyCases(options);
        const results: RunResult[] = [];
        for (const latencyCase of cases) {
          for (const replicator of [trigsync, native]) {
            const result = await measureRun(replicator, latencyCase, {
              admin,
              sourceUrl,
              load,
              seconds: options.latencySeconds,
            });
            results.push(result);
            console.error(
              `  ${latencyCase.label}, ${replicator.name}: ${fmt(result.tps)} tx/s, ` +
                `p50 ${fmt(result.latency.p50Ms)} ms, p99 ${fmt(result.latency.p99Ms)} ms, ` +
                `max ${fmt(result.latency.maxMs)} ms`,
            );
          }
        }

        console.log(
          `Single-row INSERT transactions for ${options.latencySeconds} s each: latency in ms from the ` +
            'source commit to the target',
        );
        console.log(latencyTable(cases, results));
        console.log(`\n${latencyNotes(cases, results, config.apply.pollIntervalMs)}`);
        const file = await writeResults('latency', new Date(machine.date), {
          machine,
          serverSettings,
          options: {
            seconds: options.latencySeconds,
            rates: options.latencyRates,
            pollIntervalMs: config.apply.pollIntervalMs,
          },
          cases,
          results,
        });
        console.log(`\nresults: ${file}`);
      } finally {
        await Promise.allSettled([trigsync.close(), native.close()]);
        await Promise.allSettled([admin, quietSource, quietTarget, nativeTarget].map((c) => c.end()));
      }
    },
    serverSettings,
  );
}

interface RunContext {
  admin: pg.Client;
  sourceUrl: string;
  load: LoadGenerator;
  seconds: number;
}

/** One system, one case: from empty tables, load for `seconds`, wait until the target has it all. */
async function measureRun(
  replicator: Replicator,
  latencyCase: LatencyCase,
  { admin, sourceUrl, load, seconds }: RunContext,
): Promise<RunResult> {
  const { table, target } = replicator;
  await replicator.start();
  await Promise.all([admin.query(`vacuum analyze ${table}`), target.query(`vacuum analyze ${table}`)]);
  // A checkpoint now rather than one that lands in the middle of one system's run only.
  await Promise.all([admin.query('checkpoint'), target.query('checkpoint')]);
  const written = await load.run(latencyWorkload(table), {
    url: sourceUrl,
    clients: latencyCase.clients,
    seconds,
    ...(latencyCase.rate === undefined ? {} : { rate: latencyCase.rate }),
  });
  await replicator.caughtUp();
  const latencies = await rowLatencies(admin, target, table);
  await replicator.stopAndEmpty();
  const [own, other] =
    replicator.name === 'trigsync'
      ? [latencies.byCommit, latencies.byArrival]
      : [latencies.byArrival, latencies.byCommit];
  return {
    case: latencyCase.key,
    system: replicator.name,
    clients: latencyCase.clients,
    rate: latencyCase.rate ?? null,
    seconds,
    transactions: written.transactions,
    tps: written.tps,
    latency: summarize(own),
    otherClock: summarize(other),
  };
}
