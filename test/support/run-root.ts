// The run root: one directory per vitest run holding every data dir of that run, watched by watchdog.js.
import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClusterInfo, ClusterKind } from './cluster.js';

export const SHARED_CLUSTER_NAMES = ['source', 'target1', 'target2'] as const;
export type SharedClusterName = (typeof SHARED_CLUSTER_NAMES)[number];

/** What the global setup provides to test workers (inject('trigsyncPg')). */
export interface PgRunInfo {
  runRoot: string;
  kind: ClusterKind;
  clusters: ClusterInfo[];
}

declare module 'vitest' {
  export interface ProvidedContext {
    trigsyncPg: PgRunInfo;
  }
}

export const WATCHDOG_PATH = fileURLToPath(new URL('./watchdog.js', import.meta.url));

/** All runs live here as run-<vitest pid>-<random>; the pid lets a later run sweep dead runs. */
export function testBaseDir(): string {
  return join(tmpdir(), 'trigsync-test');
}

export function keepRequested(): boolean {
  return process.env['TRIGSYNC_TEST_KEEP'] === '1';
}

export async function createRunRoot(): Promise<string> {
  const base = testBaseDir();
  await mkdir(base, { recursive: true });
  const runRoot = await mkdtemp(join(base, `run-${process.pid}-`));
  // The servers run as the "postgres" OS user when we are root: it must reach its data dirs.
  await chmod(base, 0o755);
  await chmod(runRoot, 0o755);
  return runRoot;
}

/**
 * Starts the watchdog in its own session, so that it survives a SIGKILL of vitest or of vitest's whole
 * process group, and then reaps the run.
 */
export function startWatchdog(runRoot: string): void {
  const watchdog = spawn(process.execPath, [WATCHDOG_PATH, String(process.pid), runRoot], {
    detached: true,
    stdio: 'ignore',
    cwd: '/',
  });
  watchdog.unref();
}
