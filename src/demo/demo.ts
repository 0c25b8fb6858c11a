/**
 * `trigsync demo`: three embedded PostgreSQL servers, the daemon between them, shop traffic, a live
 * view, an outage of one replica, verify, and then everything taken away again: on time, on Ctrl-C,
 * or on an error. Setup here, the story in scenario.ts.
 */
import { destination } from 'pino';

import { Daemon } from '../daemon/daemon.js';
import { coerceError } from '../failure/errors.js';
import { createLogger } from '../lib/logger.js';
import { sleep } from '../lib/runnable.js';
import { findPgBinaries } from './binaries.js';
import { DemoEnvironment } from './environment.js';
import { LiveView, type Terminal } from './live-view.js';
import { DemoMonitor } from './monitor.js';
import { Interrupted, runScenario } from './scenario.js';
import { closingLines, introLines, verifyLines, type DemoPaths } from './summary.js';
import { ShopWorkload } from './workload.js';

export interface DemoOptions {
  durationSeconds: number;
  terminal: Terminal;
  /** Aborted by the first Ctrl-C or SIGTERM: the demo stops what runs and cleans up. */
  signal: AbortSignal;
}

/** equal: verify found every replica equal; different: it did not; interrupted: stopped before. */
export type DemoOutcome = 'equal' | 'different' | 'interrupted';

/** Modest, visible traffic: a 2-core laptop also runs three servers and the daemon. */
const workloadOptions = { writers: 3, transactionsPerSecond: 150 };
/** Time kept at the end of --duration for the last changes, verify and cleanup. */
const closingReserveMs = 2_000;
const daemonStopTimeoutMs = 15_000;

export async function runDemo(options: DemoOptions): Promise<DemoOutcome> {
  const { durationSeconds, terminal, signal } = options;
  const startedAt = Date.now();
  const endsAt = startedAt + durationSeconds * 1000 - closingReserveMs;
  // Before anything is created: without the dev dependencies there is nothing to clean up.
  const binaries = await findPgBinaries();
  const environment = await DemoEnvironment.create();
  // Whatever ends this process from here on (an uncaught error, process.exit on a second Ctrl-C), the
  // servers go with it; a SIGKILL is left to the reaper.
  const onExit = (): void => environment.killNow();
  process.on('exit', onExit);

  const logFile = destination({ dest: environment.daemonLog, sync: true });
  let daemon: Daemon | undefined;
  let workload: ShopWorkload | undefined;
  let monitor: DemoMonitor | undefined;
  let view: LiveView | undefined;
  let outcome: DemoOutcome = 'interrupted';
  let failed = false;
  try {
    terminal.print(`Starting three PostgreSQL servers (source, reporting, analytics) in ${environment.dir}`);
    await environment.startServers(binaries, (text) => terminal.print(text), signal);
    if (signal.aborted) throw new Interrupted();
    const config = await environment.configure();
    const started = ['source', 'reporting', 'analytics'] as const;
    terminal.print(
      started.map((name) => `  ${name} on port ${environment.server(name).port}`).join('\n') +
        '\n  each with the role trigsync (no superuser) owning the database shop',
    );

    daemon = new Daemon(config, createLogger(config.log.level, logFile));
    await daemon.start();
    if (signal.aborted) throw new Interrupted();
    const paths: DemoPaths = {
      dir: environment.dir,
      configFile: environment.configFile,
      daemonLog: environment.daemonLog,
      metricsUrl: daemon.metricsUrl,
    };
    for (const line of introLines(paths, durationSeconds)) terminal.print(line);

    const shop = new ShopWorkload({ url: environment.url('source'), ...workloadOptions });
    workload = shop;
    shop.run().catch((thrown: unknown) => terminal.print(`workload: ${coerceError(thrown).message}`));
    monitor = new DemoMonitor(config, daemon.events, () => shop);
    monitor.run().catch((thrown: unknown) => terminal.print(`monitor: ${coerceError(thrown).message}`));
    view = new LiveView(terminal, () => monitor!.snapshot(), durationSeconds, startedAt);
    view.start();

    const report = await runScenario({
      config,
      environment,
      events: daemon.events,
      monitor,
      workload: shop,
      view,
      endsAt,
      signal,
    });
    view.stop();
    outcome = report.equal ? 'equal' : 'different';
    for (const line of [...verifyLines(report), ...closingLines(paths)]) terminal.print(line);
  } catch (thrown) {
    if (!(thrown instanceof Interrupted || signal.aborted)) {
      failed = true;
      throw thrown;
    }
  } finally {
    view?.stop();
    terminal.print(
      outcome === 'interrupted' && !failed
        ? 'Interrupted: cleaning up (Ctrl-C again to stop at once)'
        : 'Cleaning up: stopping everything',
    );
    await workload?.stop();
    await monitor?.stop();
    await stopDaemon(daemon, (text) => terminal.print(text));
    logFile.flushSync();
    logFile.end();
    const keepLog = failed || outcome === 'different';
    const { keptLog, leftPids } = await environment.close({ keepLog });
    process.off('exit', onExit);
    if (leftPids.length > 0) {
      terminal.print(`WARNING: PostgreSQL processes left running: ${leftPids.join(', ')}`);
    } else {
      terminal.print(`Stopped the three servers and removed ${environment.dir}`);
    }
    if (keptLog !== undefined) terminal.print(`The daemon's log is kept in ${keptLog}`);
  }
  return outcome;
}

/** Stop the daemon, but not forever: the servers are stopped next in any case, which ends its sessions. */
async function stopDaemon(daemon: Daemon | undefined, print: (text: string) => void): Promise<void> {
  if (daemon === undefined) return;
  const timer = new AbortController();
  const stopped = await Promise.race([
    daemon.stop().then(
      () => true,
      (thrown: unknown) => {
        print(`stopping the daemon: ${coerceError(thrown).message}`);
        return true;
      },
    ),
    sleep(daemonStopTimeoutMs, timer.signal).then(() => false),
  ]);
  timer.abort();
  if (!stopped) print(`the daemon did not stop within ${daemonStopTimeoutMs / 1000} s; stopping the servers`);
}
