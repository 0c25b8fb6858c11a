// trigsync as the benchmarks drive it: a config for one target (or several), the daemon in this process,
// and waiting until the targets have applied everything and the pruner has emptied the log.
import pino from 'pino';
import type pg from 'pg';

import { configFromObject } from '../../src/config/load.js';
import type { Config } from '../../src/config/types.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { connect } from '../../src/db/connect.js';
import type { TrigsyncEvents } from '../../src/lib/events.js';
import { createLogger, type Logger } from '../../src/lib/logger.js';
import { readStatus } from '../../src/changelog/status.js';
import { askPause } from '../../src/operator/commands.js';
import { waitFor } from '../../test/support/wait.js';
import type { LocalCluster } from '../../test/support/local-cluster.js';
import { createDatabase, rowCount } from './servers.js';

export const schema = 'trigsync';
const targetName = 'bench';

export interface BenchTarget {
  name: string;
  url: string;
}

/** One target named 'bench' at `targetUrl`, or the `targets` listed. */
type BenchTargets = { targetUrl: string } | { targets: readonly BenchTarget[] };

/** Defaults everywhere (apply.batchSize among them) unless given; no metrics port to collide on. */
export function benchConfig(
  options: { sourceUrl: string; tables: string[]; batchSize?: number } & BenchTargets,
): Config {
  return configFromObject(benchRawConfig(options), { env: {} });
}

/** benchConfig's object as a config file holds it, of `group` if one is given. */
export function benchRawConfig(
  options: { sourceUrl: string; tables: string[]; batchSize?: number; group?: string } & BenchTargets,
): Record<string, unknown> {
  const targets = 'targets' in options ? options.targets : [{ name: targetName, url: options.targetUrl }];
  return {
    source: { url: options.sourceUrl },
    schema,
    ...(options.group === undefined ? {} : { group: options.group }),
    tables: options.tables,
    targets: targets.map(({ name, url }) => ({ name, url, initialSync: 'none' })),
    ...(options.batchSize === undefined ? {} : { apply: { batchSize: options.batchSize } }),
    metrics: { enabled: false },
  };
}

/** A client whose writes are captured (any application_name but trigsync's). */
export function benchClient(url: string): Promise<pg.Client> {
  return connect(url, { applicationName: 'trigsync-bench' });
}

/** A client under trigsync's application_name: its writes are not captured. */
export function uncapturedClient(config: Config, url: string): Promise<pg.Client> {
  return connect(url, { applicationName: config.applicationName });
}

/** A target database of a benchmark with several. */
export interface TargetDatabase {
  /** trigsync's name for the target; the database has the same. */
  name: string;
  url: string;
  /** Under trigsync's application_name, as every write of ours to a target. */
  client: pg.Client;
}

/** Databases `names` on `cluster`, each made by `ddl`; `config` names them as its targets. */
export async function targetDatabases(
  cluster: LocalCluster,
  names: readonly string[],
  configOf: (databases: { name: string; url: string }[]) => Config,
  ddl: string,
): Promise<{ config: Config; targets: TargetDatabase[] }> {
  // One at a time: CREATE DATABASE copies template1, which must have no other user meanwhile.
  const databases: { name: string; url: string }[] = [];
  for (const name of names) databases.push({ name, url: await createDatabase(cluster, name) });
  const config = configOf(databases);
  const targets = await Promise.all(
    databases.map(async ({ name, url }): Promise<TargetDatabase> => {
      const client = await uncapturedClient(config, url);
      await client.query(ddl);
      return { name, url, client };
    }),
  );
  return { config, targets };
}

/** The daemon in this process, started and stopped as a benchmark needs it. */
export class DaemonHandle {
  private daemon: Daemon | undefined;
  /** Warnings and errors only, on stderr, so that they do not mix with the tables on stdout. */
  private readonly logger: Logger;

  /** `expected`: log lines that the benchmark causes on purpose, left out. */
  constructor(
    private config: Config,
    expected?: RegExp,
  ) {
    const stderr = pino.destination(2);
    this.logger = createLogger(
      'warn',
      expected === undefined
        ? stderr
        : {
            write: (line: string) => {
              if (!expected.test(line)) stderr.write(line);
            },
          },
    );
  }

  /**
   * Starts the daemon unless it runs with this config; `install` happens at every start, as with
   * `trigsync start`. `subscribe` sees the daemon's events from its very first batch.
   */
  async start(config: Config = this.config, subscribe?: (events: TrigsyncEvents) => void): Promise<void> {
    if (this.daemon !== undefined && config === this.config) return;
    await this.stop();
    this.config = config;
    const daemon = new Daemon(config, this.logger);
    subscribe?.(daemon.events);
    this.daemon = daemon;
    await daemon.start();
  }

  async stop(): Promise<void> {
    const daemon = this.daemon;
    this.daemon = undefined;
    await daemon?.stop();
  }

  /**
   * `trigsync pause` (`paused`) or `resume` of every target of the config, through `client` (the
   * source); a pause returns once each target's worker has stopped applying, as a disabled
   * subscription's worker has exited.
   */
  async setPaused(client: pg.Client, paused: boolean): Promise<void> {
    const daemon = this.daemon;
    if (daemon === undefined) throw new Error('the daemon is not running');
    const left = new Set(this.config.targets.map((t) => t.name));
    const stopped = new Promise<void>((resolve) => {
      const heard = ({ target, paused: now }: { target: string; paused: boolean }): void => {
        if (now) left.delete(target);
        if (left.size > 0) return;
        daemon.events.off('target:paused', heard);
        resolve();
      };
      daemon.events.on('target:paused', heard);
    });
    for (const target of this.config.targets) await askPause(client, this.config.schema, target.name, paused);
    if (paused) await stopped;
  }
}

/**
 * The backlog of the config's targets together; 0 exactly when each has applied every change captured
 * so far. NaN while one of them is not registered yet (the daemon has not started with it).
 */
export async function backlog(client: pg.Client, config: Config): Promise<number> {
  const status = await readStatus(client, config);
  return config.targets.reduce(
    (sum, target) => sum + (status.targets.find((t) => t.name === target.name)?.backlog ?? NaN),
    0,
  );
}

export async function waitCaughtUp(client: pg.Client, config: Config, timeoutMs = 300_000): Promise<void> {
  await waitFor(async () => (await backlog(client, config)) === 0, {
    what: 'the targets to catch up',
    timeoutMs,
    intervalMs: 200,
  });
}

/**
 * Wait until the running daemon has applied everything and its pruner has emptied the log, then vacuum
 * the log: each measurement starts from an empty log. The daemon's own pruner does it (every few
 * seconds): a second session pruning the same rows could deadlock with it.
 */
export async function drainLog(client: pg.Client, config: Config): Promise<void> {
  await waitCaughtUp(client, config);
  await waitFor(async () => (await rowCount(client, `${schema}.change_log`)) === 0, {
    what: 'the change log to be pruned',
    timeoutMs: 60_000,
    intervalMs: 250,
  });
  await client.query(`vacuum ${schema}.change_log`);
}
