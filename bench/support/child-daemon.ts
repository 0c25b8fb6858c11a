// `trigsync start` as a process of its own, as users run it: for figures about the daemon alone (its
// memory), which the bench's process, holding clients, results and the load generator, would blur. Runs
// the built CLI (`npm run bench` builds first).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { waitFor } from '../../test/support/wait.js';

const launcher = new URL('../../bin/trigsync.js', import.meta.url).pathname;
const built = new URL('../../dist/cli/main.js', import.meta.url).pathname;

/**
 * Node's own options for the daemons, from BENCH_DAEMON_NODE_ARGS (say `--cpu-prof` or a heap limit), so
 * that a run can profile or tune them without touching the bench's own process as NODE_OPTIONS would.
 */
function nodeArgs(): string[] {
  return (process.env.BENCH_DAEMON_NODE_ARGS ?? '').split(/\s+/).filter((arg) => arg !== '');
}

export class BenchChildDaemon {
  private child: ChildProcess | undefined;
  private exited: Promise<void> | undefined;

  private constructor(
    private readonly dir: string,
    readonly name: string,
  ) {}

  /** `raw` as a config file would hold it; `name` tells this daemon's figures and errors apart. */
  static async create(name: string, raw: Record<string, unknown>): Promise<BenchChildDaemon> {
    if (!existsSync(built)) throw new Error(`${built} is missing: run 'npm run build' first`);
    const dir = await mkdtemp(join(tmpdir(), 'trigsync-bench-daemon-'));
    await writeFile(join(dir, 'config.json'), JSON.stringify(raw));
    return new BenchChildDaemon(dir, name);
  }

  private get logFile(): string {
    return join(this.dir, 'daemon.log');
  }

  private get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Spawns the daemon and resolves once it logged its start (installed, leading, workers running). */
  async start(): Promise<void> {
    const log = openSync(this.logFile, 'w');
    const args = [...nodeArgs(), launcher, 'start', '--config', join(this.dir, 'config.json')];
    const child = spawn(process.execPath, args, {
      stdio: ['ignore', log, log],
      env: { ...process.env, TRIGSYNC_CONFIG: '' },
    });
    closeSync(log);
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    await waitFor(async () => (await this.log()).includes('"daemon started"') || !this.running, {
      what: `daemon ${this.name} to start`,
      timeoutMs: 60_000,
      intervalMs: 10,
    });
    if (!this.running) throw new Error(`daemon ${this.name} exited at start:\n${await this.log()}`);
  }

  /**
   * The most memory the process has held resident since it started (VmHWM of /proc/PID/status), in MB:
   * the kernel's own high-water mark, so no peak falls between two samples.
   */
  async peakRssMB(): Promise<number> {
    const pid = this.child?.pid;
    if (!this.running || pid === undefined) throw new Error(`daemon ${this.name} is not running`);
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kB = /^VmHWM:\s+(\d+) kB$/m.exec(status)?.[1];
    if (kB === undefined) throw new Error(`no VmHWM in /proc/${pid}/status`);
    return Number(kB) / 1024;
  }

  /** SIGTERM, as a container stop sends, and wait for the exit; throws with the log on a failed exit. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.child!.kill('SIGTERM');
    await this.exited;
    if (this.child!.exitCode !== 0) {
      throw new Error(`daemon ${this.name} exited with ${this.child!.exitCode}:\n${await this.log()}`);
    }
  }

  /** Stops it if it runs (SIGKILL: on a failed run, no need to wait) and removes its files. */
  async dispose(): Promise<void> {
    if (this.running) {
      this.child!.kill('SIGKILL');
      await this.exited;
    }
    await rm(this.dir, { recursive: true, force: true });
  }

  log(): Promise<string> {
    return readFile(this.logFile, 'utf8').catch(() => '');
  }
}
