// Benchmark: replication throughput (issue #8, points 2 and 4). Changes are captured while replication is
// stopped, then it starts and we time until the targets have committed them all: many single-row
// transactions, one transaction of as many rows, an UPDATE and a DELETE of as many rows, and a large
// backlog; to one target (at each apply.batchSize asked for) and to several at once; trigsync beside
// PostgreSQL's native logical replication, on the same servers.
import { describeMachine, machineHeader } from '../support/machine.js';
import type { BenchContext } from '../support/options.js';
import { fmt, writeResults } from '../support/report.js';
import { withServers } from '../support/servers.js';
import {
  backlogRowsPerTransaction,
  backlogWriters,
  throughputCases,
  writers,
  type ThroughputResult,
} from './cases.js';
import { timeNative } from './native.js';
import { batchSizeSummary, fanOutShare, nativeShare, oneTargetRowsPerSecond, resultTable } from './report.js';
import { serverSettings, setUp, tearDown, type Rig } from './setup.js';
import { timeTrigsync } from './trigsync-apply.js';

export async function throughputBench({ options, load }: BenchContext): Promise<void> {
  await withServers(
    ['source', 'target'],
    async ({ clusters: [source, target] }) => {
      const machine = await describeMachine(source!, load);
      console.log(`${machineHeader('throughput', machine)}\n`);
      const rig = await setUp(options, load, source!, target!);
      try {
        const results = await measure(rig);
        const cases = throughputCases(options);
        const defaultSize = options.batchSizes[0]!;
        console.log(resultTable(results, cases, defaultSize));
        const summary = batchSizeSummary(results, cases, defaultSize);
        if (summary !== '') console.log(`\n${summary}`);
        const file = await writeResults('throughput', new Date(machine.date), {
          machine,
          options: {
            rows: options.rows,
            batchSizes: options.batchSizes,
            targets: options.targets,
            backlog: options.backlog,
            writers,
            backlogWriters,
            backlogRowsPerTransaction,
          },
          goals: { oneTargetRowsPerSecond, fanOutShare, nativeShare },
          results,
        });
        console.log(`\nresults: ${file}`);
      } finally {
        await tearDown(rig);
      }
    },
    serverSettings(options),
  );
}

/**
 * Case by case, trigsync then native, so that a change in the machine's load hits both alike. The
 * several-target cases come last: once the daemon has registered their targets, a config without them
 * would leave those targets holding the log.
 */
async function measure(rig: Rig): Promise<ThroughputResult[]> {
  const { options } = rig;
  const cases = throughputCases(options);
  const defaultSize = options.batchSizes[0]!;
  const alone = rig.targets.slice(0, 1);
  const results: ThroughputResult[] = [];
  const record = (result: ThroughputResult): void => {
    results.push(result);
    const size = result.batchSize === null ? '' : `, batchSize ${fmt(result.batchSize, 0)}`;
    console.error(
      `  ${cases[result.case].label}, ${result.replication}, ${result.targets} target(s)${size}: ` +
        `${fmt(result.rowsPerSecond)} rows/s`,
    );
  };

  for (const throughputCase of [cases.transactions, cases.statement]) {
    for (const batchSize of options.batchSizes) {
      record(await timeTrigsync(rig, throughputCase, alone, batchSize));
    }
    record(await timeNative(rig, throughputCase, alone));
  }
  for (const throughputCase of [cases.update, cases.delete]) {
    record(await timeTrigsync(rig, throughputCase, alone, defaultSize));
    record(await timeNative(rig, throughputCase, alone));
  }
  record(await timeTrigsync(rig, cases.backlog, alone, defaultSize));
  record(await timeNative(rig, cases.backlog, alone));
  if (rig.targets.length > 1) {
    for (const throughputCase of [cases.transactions, cases.statement]) {
      record(await timeTrigsync(rig, throughputCase, rig.targets, defaultSize));
      record(await timeNative(rig, throughputCase, rig.targets));
    }
  }
  return results;
}
