/**
 * The demo's PostgreSQL processes, seen through their data directories. Synchronous on purpose: these
 * also run in an 'exit' handler and in the reaper, where nothing asynchronous gets to run any more.
 * Process discovery reads /proc, so the thoroughness is Linux-only; elsewhere signals alone are used.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';

const hasProc = existsSync('/proc/self/stat');
const sleepCell = new Int32Array(new SharedArrayBuffer(4));

export function sleepSync(ms: number): void {
  Atomics.wait(sleepCell, 0, 0, ms);
}

function procStat(pid: number): { state: string; ppid: number } | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid ...", where comm may hold spaces and parentheses.
    const fields = raw.slice(raw.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0] ?? '', ppid: Number(fields[1]) };
  } catch {
    return undefined;
  }
}

function commandOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Running, that is: a zombie counts as gone (nobody may ever reap it in a container). */
export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (hasProc) {
    const stat = procStat(pid);
    return stat !== undefined && stat.state !== 'Z' && stat.state !== 'X';
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === 'EPERM';
  }
}

export function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // Gone already.
  }
}

export interface Postmaster {
  pid: number;
  /** "ready" once the server accepts connections. */
  status: string;
  /** The SysV shared memory segment, which only a clean exit removes. */
  shmId: number | undefined;
}

/** postmaster.pid: line 1 the pid, line 7 the shared memory key and id, line 8 the status. */
export function readPostmaster(dataDir: string): Postmaster | undefined {
  let lines: string[];
  try {
    lines = readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n');
  } catch {
    return undefined;
  }
  const pid = Number(lines[0]);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  const shmId = Number((lines[6] ?? '').trim().split(/\s+/)[1]);
  return {
    pid,
    status: (lines[7] ?? '').trim(),
    shmId: Number.isInteger(shmId) && shmId >= 0 ? shmId : undefined,
  };
}

/** The running postmaster of a data dir; a stale pid file, or a pid reused by another program, is none. */
export function livePostmaster(dataDir: string): Postmaster | undefined {
  const pm = readPostmaster(dataDir);
  if (pm === undefined || !isAlive(pm.pid)) return undefined;
  if (hasProc && commandOf(pm.pid) !== 'postgres') return undefined;
  return pm;
}

/**
 * postgres and initdb processes of a directory: every server process runs with its data dir as working
 * directory (backends too, whose command line is rewritten); initdb and the postmaster also name it.
 */
export function postgresProcessesUnder(dir: string): number[] {
  if (!hasProc) return [];
  const root = resolve(dir);
  const under = (path: string): boolean => path === root || path.startsWith(`${root}/`);
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    const command = commandOf(pid);
    if ((command !== 'postgres' && command !== 'initdb') || !isAlive(pid)) continue;
    try {
      const cwd = readlinkSync(`/proc/${pid}/cwd`).replace(/ \(deleted\)$/, '');
      const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if ([cwd, ...args.map((arg) => arg.replace(/^--?[\w-]+=/, ''))].some(under)) found.push(pid);
    } catch {
      // Exited while we looked.
    }
  }
  return found;
}

function waitUntil(condition: () => boolean, timeoutMs: number): boolean {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (condition()) return true;
    if (Date.now() >= deadline) return false;
    sleepSync(20);
  }
}

/**
 * Stop the server of a data dir now, whatever it is doing: an immediate shutdown (SIGQUIT), which still
 * removes its shared memory, then SIGKILL for anything of it left. True when nothing of it runs.
 */
export function killServerSync(dataDir: string, graceMs = 2_000): boolean {
  const pm = livePostmaster(dataDir);
  let killed = false;
  if (pm !== undefined) {
    signal(pm.pid, 'SIGQUIT');
    if (!waitUntil(() => !isAlive(pm.pid), graceMs)) {
      signal(pm.pid, 'SIGKILL');
      killed = true;
    }
  }
  const clean = waitUntil(() => {
    const left = postgresProcessesUnder(dataDir);
    for (const pid of left) signal(pid, 'SIGKILL');
    return left.length === 0 && !(pm !== undefined && isAlive(pm.pid));
  }, 5_000);
  // A killed postmaster cannot drop its segment: without this every hard stop would leak one.
  if (killed && pm?.shmId !== undefined) spawnSync('ipcrm', ['-m', String(pm.shmId)], { stdio: 'ignore' });
  return clean;
}
