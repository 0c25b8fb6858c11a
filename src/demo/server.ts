/**
 * One throwaway PostgreSQL server of the demo: initdb, then the postmaster run directly on a free port of
 * 127.0.0.1, its output in a log file. Detached (its own process group), so that Ctrl-C on the terminal
 * reaches the demo, which stops the servers in order, and not the servers themselves.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chown, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { sleep } from '../lib/runnable.js';
import type { OsUser, PgBinaries } from './binaries.js';
import { initDataDir, launchOnFreePort, spawnPostmaster } from './pg-process.js';
import { isAlive, killServerSync, livePostmaster, readPostmaster, signal } from './processes.js';

export const demoHost = '127.0.0.1';

/** Durability traded for speed, and a small footprint: three of these share a laptop. */
const serverSettings = [
  `listen_addresses=${demoHost}`,
  // TCP only: socket paths have length limits, and the demo connects over TCP anyway.
  'unix_socket_directories=',
  'fsync=off',
  'full_page_writes=off',
  'synchronous_commit=off',
  'max_connections=50',
  'shared_buffers=32MB',
];

const startTimeoutMs = 60_000;
const stopTimeoutMs = 15_000;

function logTail(file: string, from: number, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').slice(from).trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export class DemoServer {
  readonly dataDir: string;
  readonly logFile: string;
  /** Of the bootstrap superuser "postgres", used only to create the demo's role and database. */
  readonly superuserPassword = randomBytes(12).toString('base64url');
  #port = 0;

  constructor(
    /** source, reporting, analytics: also the name of its data dir. */
    readonly name: string,
    demoDir: string,
    private readonly binaries: PgBinaries,
    private readonly owner: OsUser | undefined,
  ) {
    this.dataDir = join(demoDir, name);
    this.logFile = join(demoDir, `${name}.log`);
  }

  get port(): number {
    return this.#port;
  }

  get pid(): number | undefined {
    return livePostmaster(this.dataDir)?.pid;
  }

  url(user: string, password: string, database: string): string {
    return `postgres://${user}:${encodeURIComponent(password)}@${demoHost}:${this.#port}/${database}`;
  }

  superuserUrl(database = 'postgres'): string {
    return this.url('postgres', this.superuserPassword, database);
  }

  async init(): Promise<void> {
    await writeFile(this.logFile, '');
    if (this.owner !== undefined) await chown(this.logFile, this.owner.uid, this.owner.gid);
    await initDataDir({
      initdb: this.binaries.initdb,
      dataDir: this.dataDir,
      user: 'postgres',
      password: this.superuserPassword,
      owner: this.owner,
    });
  }

  /** Start the server; the port is chosen once, so that a restart keeps the URLs valid. */
  async start(signal?: AbortSignal): Promise<void> {
    if (livePostmaster(this.dataDir) !== undefined) return;
    this.#port = await launchOnFreePort(this.#port, demoHost, (port) => this.launch(port, signal));
  }

  private async launch(port: number, abort?: AbortSignal): Promise<void> {
    const server = spawnPostmaster({
      postgres: this.binaries.postgres,
      dataDir: this.dataDir,
      port,
      settings: serverSettings,
      logFile: this.logFile,
      owner: this.owner,
    });
    const deadline = Date.now() + startTimeoutMs;
    while (server.exited() === undefined && Date.now() < deadline && abort?.aborted !== true) {
      const pm = readPostmaster(this.dataDir);
      if (pm !== undefined && pm.pid === server.pid && pm.status === 'ready') return;
      await sleep(20);
    }
    let exited = server.exited();
    if (exited === undefined) {
      // Not ready in time, or the demo was interrupted: do not leave it half started.
      killServerSync(this.dataDir);
      exited = abort?.aborted === true ? 'interrupted' : `not ready after ${startTimeoutMs / 1000} s`;
    }
    throw new Error(
      `PostgreSQL server "${this.name}" (port ${port}) failed to start: ${exited}\n` +
        `--- last lines of ${this.logFile} ---\n${logTail(this.logFile, server.logStart)}`,
    );
  }

  /** Fast shutdown: sessions are cut, as when a replica's host goes down for maintenance. */
  async stop(): Promise<void> {
    const pm = livePostmaster(this.dataDir);
    if (pm === undefined) return;
    signal(pm.pid, 'SIGINT');
    const deadline = Date.now() + stopTimeoutMs;
    while (isAlive(pm.pid) && Date.now() < deadline) await sleep(20);
    if (isAlive(pm.pid)) killServerSync(this.dataDir);
  }

  /** Stop at once, synchronously: for an exit handler or a second Ctrl-C. */
  killNow(): boolean {
    return killServerSync(this.dataDir);
  }
}
