// A network delay between two parts of a benchmark: a TCP proxy in front of one server that holds every
// chunk, each way, for a fixed time (delay-proxy-child.ts). It runs in a child process, so that its timers
// do not wait behind the work of the bench process, where the daemon runs. The child runs the
// TypeScript as this process does: fork() passes on tsx's loader (`npm run bench` is `tsx bench/main.ts`).
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import pg from 'pg';

import { median } from './report.js';

const childScript = fileURLToPath(new URL('./delay-proxy-child.ts', import.meta.url));

export class DelayProxy {
  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
    /** One way: a round trip through the proxy takes twice this more than without it. */
    readonly delayMs: number,
  ) {}

  /** A proxy on a free local port in front of `url`'s server, delaying each way by `delayMs` (> 0). */
  static async start(url: string, delayMs: number): Promise<DelayProxy> {
    const upstream = new URL(url);
    const child = fork(childScript, [upstream.hostname, upstream.port, String(delayMs)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const port = await new Promise<number>((resolve, reject) => {
      child.once('message', (message: { port: number }) => resolve(message.port));
      child.once('error', reject);
      child.once('exit', (code, signal) =>
        reject(new Error(`delay proxy exited before listening (${signal ?? `exit code ${code}`})`)),
      );
    });
    child.removeAllListeners('exit');
    return new DelayProxy(child, port, delayMs);
  }

  /** `url` with its host and port replaced by the proxy's: the same server, reached through the delay. */
  url(url: string): string {
    const parsed = new URL(url);
    parsed.hostname = '127.0.0.1';
    parsed.port = String(this.port);
    return parsed.toString();
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    await exited;
  }
}

/** The median time of `select 1` on a fresh connection to `url`, in ms: a round trip, as measured. */
export async function selectOneMs(url: string, samples = 20): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    // The first queries pay for the backend's caches.
    for (let i = 0; i < 3; i++) await client.query('select 1');
    const times: number[] = [];
    for (let i = 0; i < samples; i++) {
      const started = performance.now();
      await client.query('select 1');
      times.push(performance.now() - started);
    }
    return median(times);
  } finally {
    await client.end();
  }
}
