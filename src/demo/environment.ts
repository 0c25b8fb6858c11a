/**
 * Everything the demo puts on the machine: a temporary directory holding three PostgreSQL servers (the
 * source and two replicas), the config file and the daemon's log, and a reaper process should the demo
 * die without cleaning up. `close()` takes it all away again and checks that no server process is left.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { chmod, copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { loadConfig } from '../config/load.js';
import type { Config } from '../config/types.js';
import { serverOsUser, type PgBinaries } from './binaries.js';
import { postgresProcessesUnder } from './processes.js';
import { DemoServer, demoHost } from './server.js';
import { demoConfigYaml, demoDatabase, demoRole, prepareShop } from './shop.js';

/** The metrics port of the docs, when nothing else holds it. */
const preferredMetricsPort = 9753;

export type ServerName = 'source' | 'reporting' | 'analytics';

function isPortFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

export class DemoEnvironment {
  readonly configFile: string;
  readonly daemonLog: string;
  /** Of the role trigsync connects as, on all three servers. */
  readonly password = randomBytes(12).toString('base64url');
  private servers: Record<ServerName, DemoServer> | undefined;

  private constructor(readonly dir: string) {
    this.configFile = join(dir, 'trigsync.yaml');
    this.daemonLog = join(dir, 'trigsync.log');
  }

  static async create(): Promise<DemoEnvironment> {
    const dir = await mkdtemp(join(tmpdir(), 'trigsync-demo-'));
    // As root, the servers run as the OS user "postgres", which must reach its data dirs in here.
    await chmod(dir, 0o755);
    const environment = new DemoEnvironment(dir);
    environment.startReaper();
    return environment;
  }

  server(name: ServerName): DemoServer {
    if (this.servers === undefined) throw new Error('the demo servers are not set up');
    return this.servers[name];
  }

  /** The role's URL of the shop database on one server, as in the config file. */
  url(name: ServerName): string {
    return this.server(name).url(demoRole, this.password, demoDatabase);
  }

  /** initdb and start all three at once; the servers exist (and are stopped by close()) from here on. */
  async startServers(binaries: PgBinaries, note: (text: string) => void, signal: AbortSignal): Promise<void> {
    const owner = await serverOsUser(note);
    const make = (name: ServerName): DemoServer => new DemoServer(name, this.dir, binaries, owner);
    this.servers = { source: make('source'), reporting: make('reporting'), analytics: make('analytics') };
    // Settled, not Promise.all: should one fail, cleanup must not begin while another still starts.
    const results = await Promise.allSettled(
      Object.values(this.servers).map(async (server) => {
        await server.init();
        await server.start(signal);
      }),
    );
    const failure = results.find((result) => result.status === 'rejected');
    if (failure !== undefined) throw failure.reason;
  }

  /** The shop on every server, then the config file, validated as any user's config. */
  async configure(): Promise<Config> {
    await Promise.all([
      prepareShop(this.server('source'), this.password, true),
      prepareShop(this.server('reporting'), this.password, false),
      prepareShop(this.server('analytics'), this.password, false),
    ]);
    const metricsPort = (await isPortFree(preferredMetricsPort, demoHost)) ? preferredMetricsPort : 0;
    const yaml = demoConfigYaml({
      sourceUrl: this.url('source'),
      reportingUrl: this.url('reporting'),
      analyticsUrl: this.url('analytics'),
      metricsPort,
    });
    // It holds passwords: for the user who runs the demo only.
    await writeFile(this.configFile, yaml, { mode: 0o600 });
    // The environment's TRIGSYNC_* variables do not apply: the demo's URLs are its own.
    return loadConfig({ file: this.configFile, env: {} });
  }

  /** Stop every server at once, synchronously: for an exit handler or a second Ctrl-C. */
  killNow(): void {
    for (const server of Object.values(this.servers ?? {})) server.killNow();
    rmSync(this.dir, { recursive: true, force: true, maxRetries: 3 });
  }

  /**
   * Stop the servers, remove the directory (keeping the daemon's log beside it when asked) and return
   * the pids of any server process still running under it: none, unless something went badly wrong.
   */
  async close(options: { keepLog: boolean }): Promise<{ keptLog: string | undefined; leftPids: number[] }> {
    const servers = Object.values(this.servers ?? {});
    await Promise.all(servers.map((server) => server.stop()));
    let leftPids = postgresProcessesUnder(this.dir);
    if (leftPids.length > 0) {
      for (const server of servers) server.killNow();
      leftPids = postgresProcessesUnder(this.dir);
    }
    let keptLog: string | undefined;
    if (options.keepLog && existsSync(this.daemonLog)) {
      keptLog = `${this.dir}.log`;
      await copyFile(this.daemonLog, keptLog);
    }
    await rm(this.dir, { recursive: true, force: true, maxRetries: 3 });
    return { keptLog, leftPids };
  }

  /** A process in its own session, so that it outlives the demo; it exits once the directory is gone. */
  private startReaper(): void {
    const script = fileURLToPath(new URL('./reaper.js', import.meta.url));
    const reaper = spawn(process.execPath, [script, String(process.pid), this.dir], {
      detached: true,
      stdio: 'ignore',
      cwd: '/',
    });
    reaper.unref();
  }
}
