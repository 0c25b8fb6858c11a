// Benchmark: the workload users run. Transactions that each place an order and its lines (a foreign key
// between them, on both sides) from several writers, replicated by trigsync and by PostgreSQL's native
// logical replication on the same servers, one after the other: as a backlog written while replication
// was stopped and as writes while it runs, with the network between replication and the far server
// direct or delayed by a proxy. Every run must leave the target equal to the source.
import { logicalSettings } from '../support/logical.js';
import { describeMachine, machineHeader } from '../support/machine.js';
import type { BenchContext } from '../support/options.js';
import { fmt, writeResults } from '../support/report.js';
import { withServers } from '../support/servers.js';
import { measureRun, modes, type RunResult } from './measure.js';
import { keptUpSeconds, relationalNotes, relationalTable, writersTable } from './report.js';
import { openRoutes, routeLines, type Routes } from './routes.js';
import { linesPerOrder, setUp, shapes, tearDown, writers } from './setup.js';
import { NativeSide, TrigsyncSide } from './sides.js';

export async function relationalBench({ options, load }: BenchContext): Promise<void> {
  await withServers(
    ['source', 'target'],
    async ({ clusters: [source, target] }) => {
      const machine = await describeMachine(source!, load);
      const rig = await setUp(options, load, source!, target!);
      const trigsync = new TrigsyncSide(rig);
      const native = new NativeSide(rig);
      let opened: Routes | undefined;
      try {
        opened = await openRoutes(rig, options.delays);
        const { routes } = opened;
        console.log(machineHeader('relational (orders and their lines)', machine));
        console.log(`         ${logicalSettings.join(' ')} (both systems)`);
        console.log(`${routeLines(routes).join('\n')}\n`);
        // One run of each system first, not shown: every later run finds the bench's process warm (its
        // JavaScript compiled, trigsync's daemon included), and the first shown run would not.
        for (const side of [trigsync, native]) {
          await measureRun(rig, side, { shape: 'orders', mode: 'backlog', route: routes[0]!, repeat: 0 });
        }
        const results: RunResult[] = [];
        // Delay by delay, trigsync then native in each workload and repeat, so that a change in the
        // machine's load hits both alike.
        for (const route of routes) {
          for (const shape of shapes) {
            for (const mode of modes) {
              for (let repeat = 0; repeat < options.repeats; repeat++) {
                for (const side of [trigsync, native]) {
                  const result = await measureRun(rig, side, { shape, mode, route, repeat });
                  results.push(result);
                  console.error(
                    `  ${shape}, ${mode}, ${route.delayMs} ms, ${side.system}, run ${repeat + 1}: ` +
                      `${fmt(result.rowsPerSecond)} rows/s${result.finished ? '' : ' (did not finish)'}`,
                  );
                }
              }
            }
          }
        }
        for (const shape of shapes) {
          console.log(`${relationalTable(results, shape, options)}\n`);
          console.log(`${writersTable(results, shape, options.delays)}\n`);
        }
        console.log(relationalNotes(options.maxWaitSeconds, options.repeats, options.backlogBy));
        const file = await writeResults('relational', new Date(machine.date), {
          machine,
          serverSettings: logicalSettings,
          options: {
            orders: options.orders,
            singles: options.singles,
            delays: options.delays,
            maxWaitSeconds: options.maxWaitSeconds,
            repeats: options.repeats,
            writers,
            linesPerOrder,
            keptUpSeconds,
          },
          // The figures only: a route's URLs carry the servers' passwords.
          routes: routes.map(({ delayMs, targetSelectOneMs, sourceSelectOneMs }) => ({
            delayMs,
            targetSelectOneMs,
            sourceSelectOneMs,
          })),
          results,
        });
        console.log(`\nresults: ${file}`);
      } finally {
        await Promise.allSettled([trigsync.close(), native.close()]);
        await opened?.close();
        await tearDown(rig);
      }
    },
    logicalSettings,
  );
}
