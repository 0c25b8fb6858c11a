// Benchmark: fan-out (issue #20). A backlog of single-row changes written while the daemon is stopped,
// then drained to 1, 8 and 20 targets by one daemon, and to the 20 by two daemons of a group each: rows/s,
// the source's buffer accesses against one target's, and each daemon's memory. Many targets at one position
// should cost the source about what one does, and two groups should apply at least as fast as one.
import { describeMachine, machineHeader } from '../support/machine.js';
import type { BenchContext } from '../support/options.js';
import { writeResults } from '../support/report.js';
import { withServers } from '../support/servers.js';
import { measureFanout, writers, type FanoutResult, type Layout } from './measure.js';
import { fanoutReport } from './report.js';
import { setUp, tearDown } from './setup.js';

/**
 * Autovacuum off: a worker that vacuums the log during one run and not another would move the source's
 * counters by more than the difference being measured. Each run vacuums the log itself before the start.
 * A connection per worker and target on each side, with room to spare.
 */
const serverSettings = ['autovacuum=off', 'max_connections=300'];

export async function fanoutBench({ options, load }: BenchContext): Promise<void> {
  await withServers(
    ['source', 'target'],
    async ({ clusters: [source, target] }) => {
      const machine = await describeMachine(source!, load);
      console.log(`${machineHeader('fan-out', machine)}\n         ${serverSettings.join(' ')}\n`);
      const rig = await setUp(options, load, source!, target!);
      try {
        const results: FanoutResult[] = [];
        for (const layout of layouts(options.fanoutTargets)) {
          const result = await measureFanout(rig, layout);
          results.push(result);
          console.error(
            `  ${layout.targets} targets, ${layout.groups} group(s): ${Math.round(result.rowsPerSecond)} rows/s; ` +
              `daemon peak RSS (MB): ${result.daemonPeakMB.map(Math.round).join(', ')}`,
          );
        }
        console.log(fanoutReport(results));
        const file = await writeResults('fanout', new Date(machine.date), {
          machine,
          serverSettings,
          options: { layouts: layouts(options.fanoutTargets), rows: options.fanoutRows, writers },
          results,
        });
        console.log(`\nresults: ${file}`);
      } finally {
        await tearDown(rig);
      }
    },
    serverSettings,
  );
}

/**
 * Each target count with one daemon, then the largest split over two groups (a daemon each), which take
 * the targets over from the default group: last, since the default group no longer has them after.
 */
function layouts(counts: readonly number[]): Layout[] {
  const most = Math.max(...counts);
  return [
    ...counts.map((targets) => ({ targets, groups: 1 })),
    ...(most >= 2 ? [{ targets: most, groups: 2 }] : []),
  ];
}
