// Benchmark: fan-out (issue #20). A backlog of single-row changes written while the daemon is stopped,
// then drained to 1, 8 and 20 targets: rows/s, the source's buffer accesses against one target's, and the
// daemon's memory. Many targets at one position should cost the source about what one does.
import { describeMachine, machineHeader } from '../support/machine.js';
import type { BenchContext } from '../support/options.js';
import { writeResults } from '../support/report.js';
import { withServers } from '../support/servers.js';
import { measureFanout, writers, type FanoutResult } from './measure.js';
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
        for (const count of options.fanoutTargets) {
          const result = await measureFanout(rig, count);
          results.push(result);
          const memory = Object.entries(result.atPeakMB).map(([k, v]) => `${k} ${v}`);
          console.error(
            `  ${count} targets: ${Math.round(result.rowsPerSecond)} rows/s; at the RSS peak (MB): ${memory.join(', ')}`,
          );
        }
        console.log(fanoutReport(results));
        const file = await writeResults('fanout', new Date(machine.date), {
          machine,
          serverSettings,
          options: { targets: options.fanoutTargets, rows: options.fanoutRows, writers },
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
