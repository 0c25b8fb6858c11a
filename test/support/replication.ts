// Helpers for replication tests: a config over fresh databases, the daemon in-process or as a child
// process, waiting until every target has caught up, and comparing tables (count + hash, keyed diff).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import pg from 'pg';
import { expect } from 'vitest';

import { main } from '../../src/cli/main.js';
import { collectingOutput } from '../../src/cli/output.js';
import { configFromObject } from '../../src/config/load.js';
import type { Config } from '../../src/config/types.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { createLogger, type Logger } from '../../src/lib/logger.js';
import type { Status, TargetStatus } from '../../src/lib/status-report.js';
import { readStatus } from '../../src/changelog/status.js';
import {
  freshDatabase,
  sharedClusters,
  trackResource,
  waitFor,
  type FreshDatabase,
  type PgCluster,
} from './fixtures.js';
import { withClient } from './cluster.js';
import { delay, type WaitForOptions } from './wait.js';

/** A validated config; the raw object is what a YAML file would hold. */
export function makeConfig(raw: Record<string, unknown>): Config {
  return configFromObject(
    {
      apply: { pollIntervalMs: 200 },
      retry: { initialDelayMs: 100, maxDelayMs: 1000 },
      // Any free port: tests run side by side.
      metrics: { host: '127.0.0.1', port: 0 },
      ...raw,
    },
    { env: {} },
  );
}

/** A fresh database on the source cluster made with `sourceDdl`, and one on the first target's with `targetDdl`. */
export async function freshPair(
  sourceDdl: string,
  targetDdl = sourceDdl,
): Promise<{ src: FreshDatabase; dst: FreshDatabase }> {
  const { source, target1 } = sharedClusters();
  const [src, dst] = await Promise.all([freshDatabase(source), freshDatabase(target1)]);
  await Promise.all([source.query(sourceDdl, [], src.name), target1.query(targetDdl, [], dst.name)]);
  return { src, dst };
}

/** The daemon in this process, stopped by the test (leak-checked); `beforeStart` may listen to its events. */
export async function startDaemon(
  config: Config,
  logger?: Logger,
  beforeStart?: (daemon: Daemon) => void,
): Promise<Daemon> {
  const daemon = new Daemon(
    config,
    logger ?? createLogger(process.env.TRIGSYNC_TEST_LOG === '1' ? 'trace' : 'silent'),
  );
  let stopped = false;
  trackResource({
    what: 'an in-process trigsync daemon',
    isOpen: () => !stopped,
    close: () => daemon.stop(),
  });
  const stop = daemon.stop.bind(daemon);
  daemon.stop = async () => {
    await stop();
    stopped = true;
  };
  beforeStart?.(daemon);
  try {
    await daemon.start();
  } catch (thrown) {
    await daemon.stop();
    throw thrown;
  }
  return daemon;
}

/** `trigsync start` as a child process, as users run it: for SIGKILL and SIGTERM tests. */
export class ChildDaemon {
  private child: ChildProcess | undefined;
  private exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
  private constructor(
    readonly configFile: string,
    readonly logFile: string,
    /** Node's own options, such as a heap limit. */
    private readonly nodeArgs: string[],
  ) {}

  static async create(raw: Record<string, unknown>, nodeArgs: string[] = []): Promise<ChildDaemon> {
    const dir = await mkdtemp(join(tmpdir(), 'trigsync-daemon-'));
    const configFile = join(dir, 'config.json');
    await writeFile(configFile, JSON.stringify({ metrics: { host: '127.0.0.1', port: 0 }, ...raw }));
    const daemon = new ChildDaemon(configFile, join(dir, 'daemon.log'), nodeArgs);
    trackResource({
      what: 'a trigsync child daemon',
      isOpen: () => daemon.running,
      close: () => daemon.kill(),
    });
    return daemon;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  async start(): Promise<void> {
    const { openSync } = await import('node:fs');
    const log = openSync(this.logFile, 'a');
    const args = [...this.nodeArgs, 'bin/trigsync.js', 'start', '--config', this.configFile];
    this.child = spawn(process.execPath, args, {
      stdio: ['ignore', log, log],
      env: { ...process.env, TRIGSYNC_CONFIG: '' },
    });
    const child = this.child;
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    await waitFor(async () => (await this.log()).includes('daemon started') || !this.running, {
      what: 'the daemon to start',
      timeoutMs: 20_000,
    });
    if (!this.running) throw new Error(`daemon exited at start:\n${await this.log()}`);
  }

  /** SIGTERM, then the exit code. */
  async stop(): Promise<number | null> {
    if (!this.running) return null;
    this.child!.kill('SIGTERM');
    return (await this.exited!).code;
  }

  /** Send a signal without waiting. */
  signal(signal: NodeJS.Signals): void {
    if (this.running) this.child!.kill(signal);
  }

  /** Resolves when the process has exited. */
  async exit(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.exited === undefined) throw new Error('never started');
    return this.exited;
  }

  /** SIGKILL: no chance to finish anything. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.child!.kill('SIGKILL');
    await this.exited;
  }

  log(): Promise<string> {
    return readFile(this.logFile, 'utf8').catch(() => '');
  }

  /**
   * SIGKILL three times over the next `durationMs`, each at a random instant of its third, starting it
   * again `downMs` after each; resolves after the third start, to the moments (ms) it was killed at.
   */
  async killThreeTimes(durationMs: number, downMs = 0): Promise<number[]> {
    const kills = [0, 1, 2].map((third) => Math.round(((third + Math.random()) * durationMs) / 3));
    console.info('kill -9 at ms', kills);
    const started = Date.now();
    for (const at of kills) {
      await delay(Math.max(0, at - (Date.now() - started)));
      await this.kill();
      await delay(downMs);
      await this.start();
    }
    return kills;
  }

  /** The /metrics URL this run logged (its port is chosen at start). */
  async metricsUrl(): Promise<string> {
    const urls = [...(await this.log()).matchAll(/"metrics":"([^"]+)","msg":"metrics listening"/g)];
    const url = urls.at(-1)?.[1];
    if (url === undefined) throw new Error('the daemon logged no metrics URL');
    return url;
  }

  /** The process id, while it runs. */
  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }
}

/** A config written to a file of its own, as `--config` takes it. */
export async function configFile(raw: Record<string, unknown>): Promise<string> {
  const file = join(await mkdtemp(join(tmpdir(), 'trigsync-config-')), 'config.json');
  await writeFile(file, JSON.stringify(raw));
  return file;
}

/** A trigsync command run in this process as users type it: its exit code, stdout and stderr together. */
export async function runCli(file: string, ...args: string[]): Promise<{ code: number; out: string }> {
  const out = collectingOutput();
  const code = await main([...args, '--config', file], out);
  return { code, out: [...out.stdout, ...out.stderr].join('\n') };
}

/** trigsync_conflicts_total of an in-process daemon, summed over targets and tables. */
export async function conflictsCounted(daemon: Daemon, target?: string): Promise<number> {
  const { values } = await daemon.metrics.conflicts.get();
  return values
    .filter((v) => target === undefined || v.labels.target === target)
    .reduce((n, v) => n + v.value, 0);
}

/** A logger that keeps its JSON lines, for tests that look for a warning. */
export function collectingLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return { logger: createLogger('info', { write: (line: string) => void lines.push(line) }), lines };
}

/** One target's line of `trigsync status`. */
export async function targetStatus(config: Config, target: string): Promise<TargetStatus> {
  const status = await withClient(config.source.url, (client) => readStatus(client, config));
  const found = status.targets.find((t) => t.name === target);
  if (found === undefined) throw new Error(`no target ${target} in status`);
  return found;
}

/** Wait until `target` parks; its status then, whose lastError says why. */
export async function waitParked(
  config: Config,
  target: string,
  options: WaitForOptions,
): Promise<TargetStatus> {
  return waitFor(async () => {
    const status = await targetStatus(config, target);
    return status.state === 'parked' ? status : undefined;
  }, options);
}

/**
 * Wait until every configured target has applied everything captured so far; fail at once, with its
 * error, if one parks (rather than after the whole timeout).
 */
export async function waitAppliedOrParked(config: Config): Promise<void> {
  const targets = await waitFor(
    async () => {
      const { targets } = await withClient(config.source.url, (client) => readStatus(client, config));
      const configured = targets.filter((t) => t.configured);
      const done = configured.every((t) => t.backlog === 0 && t.state !== 'new');
      return done || configured.some((t) => t.state === 'parked') ? configured : undefined;
    },
    { what: 'every target to apply everything or one to park', timeoutMs: 30_000, intervalMs: 100 },
  );
  for (const t of targets) expect(t.state, `${t.name} parked: ${t.lastError}`).not.toBe('parked');
}

/** Each statement in a transaction of its own (unless it says begin), on one connection. */
export async function runEach(url: string, ...statements: string[]): Promise<void> {
  await withClient(url, async (client) => {
    for (const sql of statements) await client.query(sql);
  });
}

/** Wait until every configured target has applied everything captured so far. */
export async function waitCaughtUp(config: Config, timeoutMs = 60_000): Promise<Status> {
  let last: Status | undefined;
  await waitFor(
    async () => {
      last = await withClient(config.source.url, (client) => readStatus(client, config));
      return last.targets.filter((t) => t.configured).every((t) => t.backlog === 0 && t.state !== 'new');
    },
    { what: 'every target to catch up', timeoutMs, intervalMs: 100 },
  ).catch((thrown: unknown) => {
    throw new Error(`${String(thrown)}\nlast status: ${JSON.stringify(last)}`);
  });
  return last!;
}

export interface Fingerprint {
  count: number;
  hash: string;
}

/** count(*) and sum(hashtext(t::text)) over a query's rows, as the seeds compare tables. */
export async function fingerprint(url: string, query: string): Promise<Fingerprint> {
  return withClient(url, async (client) => {
    const result = await client.query<{ count: string; hash: string | null }>(
      `select count(*) as count, coalesce(sum(hashtext(t::text)), 0)::text as hash from (${query}) t`,
    );
    return { count: Number(result.rows[0]!.count), hash: result.rows[0]!.hash ?? '0' };
  });
}

async function keyedRows(url: string, query: string, key: string): Promise<Map<string, string>> {
  return withClient(url, async (client) => {
    await client.query(`set timezone = 'UTC'; set extra_float_digits = 1`);
    const result = await client.query<{ k: string; r: string }>(
      `select (${key})::text as k, t::text as r from (${query}) t`,
    );
    return new Map(result.rows.map((row) => [row.k, row.r]));
  });
}

/**
 * Expect the source query's rows to equal the target query's rows: count + hash first, and when they
 * differ, a keyed diff naming the missing, extra and different keys.
 */
export async function expectSameRows(
  source: { url: string; query: string },
  target: { url: string; query: string },
  key: string,
): Promise<void> {
  const [a, b] = await Promise.all([
    fingerprint(source.url, source.query),
    fingerprint(target.url, target.query),
  ]);
  if (a.count === b.count && a.hash === b.hash) return;
  const [left, right] = await Promise.all([
    keyedRows(source.url, source.query, key),
    keyedRows(target.url, target.query, key),
  ]);
  const missing = [...left.keys()].filter((k) => !right.has(k));
  const extra = [...right.keys()].filter((k) => !left.has(k));
  const different = [...left.keys()].filter((k) => right.has(k) && right.get(k) !== left.get(k));
  const cut = (row: string | undefined): string =>
    row === undefined ? '' : row.length > 300 ? `${row.slice(0, 300)}…` : row;
  const show = (keys: string[]): string =>
    keys
      .slice(0, 10)
      .map((k) => `${k}: ${cut(left.get(k))} | ${cut(right.get(k))}`)
      .join('\n    ');
  expect.fail(
    `tables differ: source ${a.count} rows, target ${b.count} rows\n` +
      `  missing on target (${missing.length}):\n    ${show(missing)}\n` +
      `  extra on target (${extra.length}):\n    ${show(extra)}\n` +
      `  different (${different.length}):\n    ${show(different)}`,
  );
}

/** Expect table `items` (or `table`), keyed by id, to hold the same rows on both databases. */
export async function expectSameItems(sourceUrl: string, targetUrl: string, table = 'items'): Promise<void> {
  const query = `select * from ${table}`;
  await expectSameRows({ url: sourceUrl, query }, { url: targetUrl, query }, 'id');
}

/**
 * A source and a target dst (on `targetCluster`, else the shared one), each with an empty table items
 * (id int primary key, v text), replicated once with `apply` and stopped: the position stored, ready
 * for a backlog.
 */
export async function caughtUpPair(apply: Record<string, unknown> = {}, targetCluster?: PgCluster) {
  const { source, target1 } = sharedClusters();
  const [src, dst] = await Promise.all([freshDatabase(source), freshDatabase(targetCluster ?? target1)]);
  for (const db of [src, dst])
    await db.cluster.query('create table items (id int primary key, v text)', [], db.name);
  const config = makeConfig({
    source: { url: src.url },
    tables: ['items'],
    targets: [{ name: 'dst', url: dst.url, initialSync: 'none' }],
    apply,
    metrics: { enabled: false },
  });
  const daemon = await startDaemon(config);
  await waitCaughtUp(config);
  await daemon.stop();
  return { src, dst, config };
}

/** A client under an application_name of the test's choice (trigsync's own, to test loopback). */
export async function clientAs(url: string, applicationName: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, application_name: applicationName });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}
