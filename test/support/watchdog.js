// Reaper for the PostgreSQL servers of a test run. Plain JS and node builtins only, so it can run as a
// detached process that outlives vitest:
//
//   node watchdog.js <parentPid> <runRoot>    watch: when the parent dies, stop every postmaster under
//                                             runRoot and remove it; exit quietly once runRoot is gone
//   node watchdog.js --reap <runRoot>         do that now
//
// The same functions are imported by the global setup (stale sweep, teardown, Ctrl-C) and the tests. They
// are synchronous on purpose: they must also work inside a signal handler just before the process exits.
// Process discovery reads /proc, so it is Linux-only; elsewhere only postmaster.pid files are used.
import { existsSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import process from 'node:process';
import { pathToFileURL } from 'node:url';

/** A run root holding this file is kept for inspection (TRIGSYNC_TEST_KEEP=1): stop servers, keep files. */
export const KEEP_MARKER = 'KEPT';

const POSTGRES_COMMANDS = new Set(['postgres', 'initdb']);
const hasProc = existsSync('/proc/self/stat');
const sleepCell = new Int32Array(new SharedArrayBuffer(4));

export function sleepSync(ms) {
  Atomics.wait(sleepCell, 0, 0, ms);
}

function procStat(pid) {
  try {
    const raw = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid ..." where comm may contain spaces and parentheses.
    const fields = raw.slice(raw.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0], ppid: Number(fields[1]), startTime: fields[19] };
  } catch {
    return null;
  }
}

/** Alive means running: zombies count as dead, since PID 1 in a container may never reap them. */
export function isAlive(pid) {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (hasProc) {
    const stat = procStat(pid);
    return stat !== null && stat.state !== 'Z' && stat.state !== 'X';
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

/**
 * True once the process table has no entry for pid: a zombie is not alive, but until its parent reaps
 * it, kill(pid, 0) still succeeds, and a postmaster started on the same data dir then refuses to run
 * ("lock file postmaster.pid already exists").
 */
export function hasExited(pid) {
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return error.code === 'ESRCH';
  }
}

/** Kernel start time of a process, to notice a pid that was reused by another process. */
export function processStartTime(pid) {
  return hasProc ? (procStat(pid)?.startTime ?? null) : null;
}

function commandOf(pid) {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return null;
  }
}

export function signalProcess(pid, signal) {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

/** postmaster.pid: line 1 is the pid, line 4 the port, line 7 the SysV shared memory key and id. */
export function readPostmasterPid(dataDir) {
  let lines;
  try {
    lines = readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n');
  } catch {
    return null;
  }
  const pid = Number(lines[0]);
  if (!Number.isInteger(pid) || pid <= 0) return null;
  const shmId = Number((lines[6] ?? '').trim().split(/\s+/)[1]);
  return {
    pid,
    port: Number(lines[3]) || null,
    status: (lines[7] ?? '').trim(),
    shmId: Number.isInteger(shmId) && shmId >= 0 ? shmId : null,
  };
}

/** The postmaster of dataDir if it is running; a pid reused by something else does not count. */
export function livePostmaster(dataDir) {
  const pm = readPostmasterPid(dataDir);
  if (pm === null || !isAlive(pm.pid)) return null;
  if (hasProc && commandOf(pm.pid) !== 'postgres') return null;
  return pm;
}

function canonical(path) {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}

function isUnder(path, root) {
  return path === root || path.startsWith(`${root}/`);
}

/**
 * Postgres and initdb processes belonging to root. Every postgres process runs with its data dir as
 * working directory (backends included, whose command line is rewritten), and initdb and the postmaster
 * name the data dir on their command line.
 */
export function findPostgresProcesses(root) {
  if (!hasProc) return [];
  const roots = [...new Set([resolve(root), canonical(root)])];
  const found = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    if (!POSTGRES_COMMANDS.has(commandOf(pid) ?? '')) continue;
    if (!isAlive(pid)) continue;
    let paths;
    try {
      // Arguments like "-D", "<dir>" or "--pgdata=<dir>" count; whole paths only, so that "/x/a" does
      // not claim the server of "/x/ab".
      const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      const cwd = readlinkSync(`/proc/${pid}/cwd`).replace(/ \(deleted\)$/, '');
      paths = [cwd, ...args.map((arg) => arg.replace(/^--?[\w-]+=/, ''))];
    } catch {
      continue;
    }
    if (paths.some((path) => roots.some((r) => isUnder(path, r)))) found.push(pid);
  }
  return found;
}

function waitUntil(condition, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (condition()) return true;
    if (Date.now() >= deadline) return false;
    sleepSync(10);
  }
}

/** Data directories (they hold PG_VERSION) up to a few levels below root; never walks inside one. */
function findDataDirs(root, depth = 3) {
  if (existsSync(join(root, 'PG_VERSION'))) return [root];
  if (depth === 0) return [];
  let entries;
  try {
    entries = readdirSync(root, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.filter((e) => e.isDirectory()).flatMap((e) => findDataDirs(join(root, e.name), depth - 1));
}

/** A SIGKILLed postmaster cannot drop its SysV segment; without this every crash test leaks one. */
export function removeSharedMemory(shmId) {
  if (shmId !== null) spawnSync('ipcrm', ['-m', String(shmId)], { stdio: 'ignore' });
}

/**
 * Stop every server under root: immediate shutdown (SIGQUIT) first, so that each postmaster still cleans
 * up its shared memory, then SIGKILL for whatever is left. Returns true when nothing is left running.
 */
export function stopPostgresUnder(root, { graceMs = 3000, killMs = 5000 } = {}) {
  const postmasters = findDataDirs(root)
    .map((dir) => livePostmaster(dir))
    .filter((pm) => pm !== null);
  for (const pm of postmasters) signalProcess(pm.pid, 'SIGQUIT');
  waitUntil(() => postmasters.every((pm) => !isAlive(pm.pid)), graceMs);
  const killed = postmasters.filter((pm) => isAlive(pm.pid));
  const clean = waitUntil(() => {
    const left = findPostgresProcesses(root);
    for (const pid of left) signalProcess(pid, 'SIGKILL');
    return left.length === 0 && killed.every((pm) => !isAlive(pm.pid));
  }, killMs);
  for (const pm of killed) removeSharedMemory(pm.shmId);
  return clean;
}

/** Stop the servers of a run and remove its directory (unless keep). */
export function reapRunRoot(runRoot, { keep = false } = {}) {
  const clean = stopPostgresUnder(runRoot);
  if (!keep) rmSync(runRoot, { recursive: true, force: true, maxRetries: 3 });
  return clean;
}

/** Reap run-<pid>-* directories whose vitest process is gone (killed before the watchdog could act). */
export function sweepStaleRuns(baseDir) {
  let names;
  try {
    names = readdirSync(baseDir);
  } catch {
    return [];
  }
  const swept = [];
  for (const name of names) {
    const match = /^run-(\d+)-/.exec(name);
    if (match === null || isAlive(Number(match[1]))) continue;
    const dir = join(baseDir, name);
    if (existsSync(join(dir, KEEP_MARKER))) continue;
    reapRunRoot(dir);
    swept.push(dir);
  }
  return swept;
}

function watch(parentPid, runRoot) {
  const parentStart = processStartTime(parentPid);
  const parentGone = () =>
    !isAlive(parentPid) || (parentStart !== null && processStartTime(parentPid) !== parentStart);
  for (;;) {
    // Normal teardown removed the run root: nothing to do.
    if (!existsSync(runRoot)) return;
    if (parentGone()) {
      reapRunRoot(runRoot, { keep: existsSync(join(runRoot, KEEP_MARKER)) });
      return;
    }
    sleepSync(500);
  }
}

function main(args) {
  if (args[0] === '--reap' && args[1]) {
    process.exitCode = reapRunRoot(resolve(args[1])) ? 0 : 1;
    return;
  }
  const parentPid = Number(args[0]);
  if (!Number.isInteger(parentPid) || !args[1]) {
    process.stderr.write('usage: watchdog.js <parentPid> <runRoot> | --reap <runRoot>\n');
    process.exitCode = 2;
    return;
  }
  watch(parentPid, resolve(args[1]));
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main(process.argv.slice(2));
}
