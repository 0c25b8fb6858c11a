// Load generators: pgbench when the machine has one, else a Node loop of prepared statements.
// Both run one script per transaction (one statement in autocommit, or several between BEGIN and COMMIT),
// `clients` connections, for a time or a count, as fast as they can or at a fixed rate.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

import pg from 'pg';

/** One transaction of a workload, written for both generators. */
export interface Workload {
  name: string;
  /** A pgbench custom script. */
  script: string;
  /** The same statement for the Node generator, with its parameters drawn per transaction. */
  statement: string;
  values: () => unknown[];
  /**
   * Statements without parameters that follow `statement` in the same transaction, as an application's
   * BEGIN ... COMMIT (the pgbench script spells out the same); absent: `statement` alone, in autocommit.
   */
  followedBy?: readonly string[];
}

export interface LoadRun {
  url: string;
  clients: number;
  /** Run for this long, or run `transactions` per client. */
  seconds?: number;
  transactions?: number;
  /** Transactions per second of all clients together; as fast as possible when absent. */
  rate?: number;
}

export interface Interval {
  tps: number;
  /** At a fixed rate, counted from each transaction's scheduled start, so that falling behind shows. */
  latencyMs: number;
}

export interface LoadResult {
  transactions: number;
  tps: number;
  latencyMs: number;
  /** Each second of the run. */
  perSecond: Interval[];
}

/** The load's sessions carry this name, so that they can be told from the others in pg_stat_activity. */
export const loadApplicationName = 'trigsync-bench-load';

export interface LoadGenerator {
  /** For the report: which generator and version. */
  readonly description: string;
  run(workload: Workload, run: LoadRun): Promise<LoadResult>;
}

/** Integer in [1, max]; max below 2^53. */
export function randomId(max: number): number {
  return 1 + Math.floor(Math.random() * max);
}

/** The newest pgbench in PATH or /usr/lib/postgresql/<version>/bin, unless the Node generator is wanted. */
export async function loadGenerator(forceNode: boolean): Promise<LoadGenerator> {
  if (!forceNode) {
    const path = findPgbench();
    if (path !== undefined) return new Pgbench(path, await output(path, ['--version']));
  }
  return new NodeLoad();
}

function findPgbench(): string | undefined {
  const versioned = (() => {
    try {
      return readdirSync('/usr/lib/postgresql')
        .filter((v) => /^\d+$/.test(v))
        .sort((a, b) => Number(b) - Number(a))
        .map((v) => `/usr/lib/postgresql/${v}/bin`);
    } catch {
      return [];
    }
  })();
  const dirs = [...versioned, ...(process.env.PATH ?? '').split(delimiter).filter(Boolean)];
  return dirs.map((dir) => join(dir, 'pgbench')).find((path) => existsSync(path));
}

function output(command: string, args: string[], env?: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code, signal) => {
      if (code === 0) resolve(`${stdout}${stderr}`.trim());
      else reject(new Error(`${command} failed (${signal ?? `exit code ${code}`}):\n${stdout}\n${stderr}`));
    });
  });
}

class Pgbench implements LoadGenerator {
  readonly description: string;

  constructor(
    private readonly path: string,
    version: string,
  ) {
    this.description = `${version} (${path}), -M prepared`;
  }

  async run(workload: Workload, run: LoadRun): Promise<LoadResult> {
    const url = new URL(run.url);
    const script = join(tmpdir(), `trigsync-bench-${randomBytes(6).toString('hex')}.sql`);
    await writeFile(script, workload.script);
    const limit = run.seconds !== undefined ? ['-T', String(run.seconds)] : ['-t', String(run.transactions)];
    const args = [
      ...['-n', '-M', 'prepared', '-f', script, '-P', '1'],
      ...['-c', String(run.clients), '-j', String(Math.min(run.clients, availableParallelism()))],
      ...limit,
      ...(run.rate === undefined ? [] : ['-R', String(run.rate)]),
      ...['-h', url.hostname, '-p', url.port, '-U', decodeURIComponent(url.username)],
      decodeURIComponent(url.pathname.slice(1)),
    ];
    const env = {
      ...process.env,
      PGPASSWORD: decodeURIComponent(url.password),
      PGAPPNAME: loadApplicationName,
      LC_ALL: 'C',
    };
    try {
      return parsePgbench(await output(this.path, args, env));
    } finally {
      await rm(script, { force: true });
    }
  }
}

function parsePgbench(text: string): LoadResult {
  const number = (pattern: RegExp): number => {
    const match = pattern.exec(text);
    if (match?.[1] === undefined) throw new Error(`pgbench output lacks ${String(pattern)}:\n${text}`);
    return Number(match[1]);
  };
  // "progress: 3.0 s, 2345.6 tps, lat 0.426 ms stddev ..." every second on stderr.
  const perSecond = [...text.matchAll(/^progress: [\d.]+ s, ([\d.]+) tps, lat ([\d.]+) ms/gm)].map((m) => ({
    tps: Number(m[1]),
    latencyMs: Number(m[2]),
  }));
  return {
    transactions: number(/number of transactions actually processed: (\d+)/),
    tps: number(/^tps = ([\d.]+)/m),
    latencyMs: number(/latency average = ([\d.]+) ms/),
    perSecond,
  };
}

/** Without pgbench: each client a connection running the statement as a named prepared statement. */
class NodeLoad implements LoadGenerator {
  readonly description = 'Node load generator (node-postgres), named prepared statements';

  async run(workload: Workload, run: LoadRun): Promise<LoadResult> {
    const clients = await Promise.all(
      Array.from({ length: run.clients }, async () => {
        const client = new pg.Client({ connectionString: run.url, application_name: loadApplicationName });
        await client.connect();
        return client;
      }),
    );
    const counts: number[] = [];
    const latencies: number[] = [];
    let transactions = 0;
    const started = performance.now();
    const deadline = run.seconds === undefined ? Infinity : started + run.seconds * 1000;
    // At a fixed rate each client has a schedule, as pgbench -R: its i-th transaction starts at i × gap.
    const gapMs = run.rate === undefined ? 0 : (1000 * run.clients) / run.rate;
    const loop = async (client: pg.Client, offset: number): Promise<void> => {
      for (let i = 0; i < (run.transactions ?? Infinity); i++) {
        const scheduled = run.rate === undefined ? performance.now() : started + offset + i * gapMs;
        if (scheduled >= deadline) return;
        const wait = scheduled - performance.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        await runTransaction(client, workload);
        const now = performance.now();
        const second = Math.floor((now - started) / 1000);
        counts[second] = (counts[second] ?? 0) + 1;
        latencies[second] = (latencies[second] ?? 0) + (now - scheduled);
        transactions++;
      }
    };
    try {
      await Promise.all(clients.map((client, i) => loop(client, (i * gapMs) / run.clients)));
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
    const seconds = (performance.now() - started) / 1000;
    const latencyTotal = latencies.reduce((a, b) => a + b, 0);
    // The last second is partial: leave it out, as pgbench does.
    const perSecond = Array.from({ length: Math.floor(seconds) }, (_, i) => ({
      tps: counts[i] ?? 0,
      latencyMs: (latencies[i] ?? 0) / (counts[i] || 1),
    }));
    return { transactions, tps: transactions / seconds, latencyMs: latencyTotal / transactions, perSecond };
  }
}

async function runTransaction(client: pg.Client, workload: Workload): Promise<void> {
  const first = { name: workload.name, text: workload.statement, values: workload.values() };
  if (workload.followedBy === undefined) {
    await client.query(first);
    return;
  }
  await client.query('begin');
  await client.query(first);
  for (const [i, text] of workload.followedBy.entries()) {
    await client.query({ name: `${workload.name}_${i + 1}`, text });
  }
  await client.query('commit');
}

/** Single-row INSERTs into `table (id, a, b, c)` with keys from a large random range, as application ids. */
export function insertWorkload(table: string, payload: string): Workload {
  return {
    name: 'insert',
    script: `\\set id random(1, 1000000000000000)
\\set a random(1, 1000000)
insert into ${table} (id, a, b, c) values (:id, :a, '${payload}', now());
`,
    statement: `insert into ${table} (id, a, b, c) values ($1, $2, '${payload}', now())`,
    values: () => [randomId(1e15), randomId(1e6)],
  };
}
