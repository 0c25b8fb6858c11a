/**
 * Running PostgreSQL straight from its binaries: the pieces that the demo's servers (server.ts) and the
 * test harness's clusters (test/support/local-cluster.ts) share. Node builtins only, never the
 * EmbeddedPostgres class; how to wait for a server, stop it and clean up after it stays with each user.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, statSync } from 'node:fs';
import { chown, mkdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';

import type { OsUser } from './binaries.js';

const portAttempts = 5;

/** The environment of initdb and postgres. */
export function serverEnv(): NodeJS.ProcessEnv {
  // English messages: "Address already in use" is recognised in the log.
  return { ...process.env, LC_ALL: 'C', LC_MESSAGES: 'C' };
}

export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Run a program to its end as the server's OS user; its output goes into the error should it fail. */
export function runAsServerUser(command: string, args: string[], owner: OsUser | undefined): Promise<void> {
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

export interface InitdbOptions {
  initdb: string;
  dataDir: string;
  /** The bootstrap superuser and its password. */
  user: string;
  password: string;
  owner: OsUser | undefined;
}

/** Create the data dir and run initdb in it. */
export async function initDataDir(options: InitdbOptions): Promise<void> {
  const { dataDir, owner } = options;
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  // initdb wants an empty data dir, so the password file sits next to it.
  const passwordFile = `${dataDir}.pwfile`;
  await writeFile(passwordFile, `${options.password}\n`, { mode: 0o600 });
  if (owner !== undefined) {
    await chown(dataDir, owner.uid, owner.gid);
    await chown(passwordFile, owner.uid, owner.gid);
  }
  try {
    await runAsServerUser(
      options.initdb,
      [
        `--pgdata=${dataDir}`,
        `--username=${options.user}`,
        `--pwfile=${passwordFile}`,
        // Real password checks on every connection, so that password changes take effect.
        '--auth=scram-sha-256',
        '--encoding=UTF8',
        '--locale=C',
        '--no-sync',
        // Not --no-instructions, which PostgreSQL 13's initdb refuses: its output is not shown anyway.
      ],
      owner,
    );
  } finally {
    await rm(passwordFile, { force: true });
  }
}

export interface PostmasterOptions {
  postgres: string;
  dataDir: string;
  port: number;
  /** `name=value`, each passed as `-c`; a later one overrides an earlier one. */
  settings: readonly string[];
  logFile: string;
  owner: OsUser | undefined;
}

export interface SpawnedPostmaster {
  pid: number | undefined;
  /** Where this start's output begins in the log file. */
  logStart: number;
  /** How it ended (a signal, an exit code, a spawn error); undefined while it runs. */
  exited(): string | undefined;
}

/**
 * Spawn the postmaster detached: its own process group, so that Ctrl-C on the terminal reaches us and
 * not the server, which is stopped in order by whoever started it. Output goes straight to the log file.
 */
export function spawnPostmaster(options: PostmasterOptions): SpawnedPostmaster {
  const { dataDir, logFile } = options;
  const logStart = statSync(logFile, { throwIfNoEntry: false })?.size ?? 0;
  const log = openSync(logFile, 'a');
  const settings = options.settings.flatMap((setting) => ['-c', setting]);
  const child = spawn(options.postgres, ['-D', dataDir, '-p', String(options.port), ...settings], {
    detached: true,
    stdio: ['ignore', log, log],
    env: serverEnv(),
    ...options.owner,
  });
  closeSync(log);
  child.unref();
  let exited: string | undefined;
  child.once('exit', (code, signal) => (exited = signal ?? `exit code ${code}`));
  child.once('error', (error) => (exited = error.message));
  return { pid: child.pid, logStart, exited: () => exited };
}

/**
 * Launch a server on `port`, or on a free port of `host` when it is 0, and return the port. Another
 * program may take a free port between freePort() and the server's bind: then, and only for a port
 * chosen here, try again on another. `launch` fails with the log's tail in its message, which names it.
 */
export async function launchOnFreePort(
  port: number,
  host: string,
  launch: (port: number) => Promise<void>,
): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    const chosen = port || (await freePort(host));
    try {
      await launch(chosen);
      return chosen;
    } catch (error) {
      const retry = port === 0 && error instanceof Error && error.message.includes('Address already in use');
      if (!retry || attempt === portAttempts) throw error;
    }
  }
}
