// Benchmark options: flags, else environment variables, else the full-length defaults of the issues.
import { parseArgs } from 'node:util';

import { configSchema } from '../../src/config/schema.js';
import type { LoadGenerator } from './load.js';

export interface BenchOptions {
  /** capture: seconds per single-row TPS run. */
  seconds: number;
  /** capture: client counts of the single-row runs. */
  clients: number[];
  /** throughput: changes per case. */
  rows: number;
  /** throughput: apply.batchSize values; the first is trigsync's default. */
  batchSizes: number[];
  /** throughput: how many targets the fan-out cases apply to. */
  targets: number;
  /** throughput: changes in the backlog whose drain is timed. */
  backlog: number;
  /** latency: seconds per steady-rate run. */
  latencySeconds: number;
  /** latency: transactions per second of the steady-rate runs. */
  latencyRates: number[];
  /** soak: seconds of steady writes. */
  soakSeconds: number;
  /** soak: transactions per second of the writers. */
  soakRate: number;
  /** prune: seconds each design runs. */
  pruneSeconds: number;
  /** prune: log rows per second the writers aim at; 0: as fast as they can. */
  pruneRate: number;
  /**
   * capture: rounds through the single-row modes, each mode once a round, so that the machine's drift
   * hits every mode alike; the table shows each mode's median TPS and each round's ratio.
   */
  captureRounds: number;
  /** relational: transactions of one order and its lines, per run. */
  orders: number;
  /** relational: single-row transactions per run. */
  singles: number;
  /** relational: one-way network delays in ms between the replication and a server; 0: no proxy. */
  delays: number[];
  /** relational: how long a run waits for its target before it is reported as not finished. */
  maxWaitSeconds: number;
  /** relational: runs of each system per workload and delay; the tables show the median's. */
  repeats: number;
  /**
   * relational: how trigsync stops for a backlog and goes on: `pause` (trigsync pause and resume, its
   * daemon running, as native's subscription is disabled and enabled) or `restart` (the daemon stopped,
   * then started: its start timed too).
   */
  backlogBy: 'pause' | 'restart';
  /** fanout: target counts, each run on its own. */
  fanoutTargets: number[];
  /** fanout: single-row changes in the drained backlog. */
  fanoutRows: number;
  /** Use the Node load generator even where pgbench exists. */
  nodeLoad: boolean;
}

export interface BenchContext {
  options: BenchOptions;
  load: LoadGenerator;
}

export const benchNames = [
  'capture',
  'throughput',
  'latency',
  'soak',
  'prune',
  'relational',
  'fanout',
] as const;
export type BenchName = (typeof benchNames)[number];

export const usage = `usage: npm run bench -- [capture] [throughput] [latency] [soak] [prune] [relational] [fanout] [options]
                                                                             (all when none is named)
  --quick               short runs for a first look: 5-s runs, a 200k backlog, a 60-s soak, default batch size
                        only, 1,000 orders, 4,000 single rows, 60-s waits and one run a case in relational
  --seconds N           capture: seconds per single-row TPS run             (BENCH_SECONDS, default 20)
  --clients LIST        capture: client counts                              (BENCH_CLIENTS, default 1,4,8)
  --rows N              throughput: changes per case                        (BENCH_ROWS, default 100000)
  --batch-sizes LIST    throughput: apply.batchSize values besides default  (BENCH_BATCH_SIZES, default 1000,10000)
  --targets N           throughput: targets of the fan-out cases            (BENCH_TARGETS, default 4)
  --backlog N           throughput: changes in the drained backlog          (BENCH_BACKLOG, default 1000000)
  --latency-seconds N   latency: seconds per steady-rate run                (BENCH_LATENCY_SECONDS, default 30)
  --latency-rates LIST  latency: tx/s of the steady-rate runs               (BENCH_LATENCY_RATES, default 200,2000)
  --soak-seconds N      soak: seconds of steady writes                      (BENCH_SOAK_SECONDS, default 600)
  --soak-rate N         soak: tx/s of the writers                           (BENCH_SOAK_RATE, default 2000)
  --prune-seconds N     prune: seconds per design                           (BENCH_PRUNE_SECONDS, default 60)
  --prune-rate N        prune: log rows/s the writers aim at; 0: flat out   (BENCH_PRUNE_RATE, default 30000)
  --capture-rounds N    capture: rounds through the single-row modes, median (BENCH_CAPTURE_ROUNDS, default 1)
  --orders N            relational: transactions (an order, 3 lines) a run  (BENCH_ORDERS, default 5000)
  --singles N           relational: single-row transactions a run           (BENCH_SINGLES, default 20000)
  --delays LIST         relational: one-way network delays in ms; 0: none   (BENCH_DELAYS, default 0,5,20)
  --max-wait N          relational: seconds a run waits for its target      (BENCH_MAX_WAIT, default 120)
  --repeats N           relational: runs of each system per case, median    (BENCH_REPEATS, default 3)
  --backlog-by WAY      relational: trigsync's backlog by pause or restart  (BENCH_BACKLOG_BY, default pause)
  --fanout-targets LIST fanout: target counts, a run each                 (BENCH_FANOUT_TARGETS, default 1,8,20)
  --fanout-rows N       fanout: single-row changes in the drained backlog   (BENCH_FANOUT_ROWS, default 50000)
  --node-load           use the Node load generator instead of pgbench      (BENCH_NODE_LOAD=1)`;

export function parseOptions(argv: string[]): { names: BenchName[]; options: BenchOptions } | 'help' {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      quick: { type: 'boolean' },
      seconds: { type: 'string' },
      clients: { type: 'string' },
      rows: { type: 'string' },
      'batch-sizes': { type: 'string' },
      targets: { type: 'string' },
      backlog: { type: 'string' },
      'latency-seconds': { type: 'string' },
      'latency-rates': { type: 'string' },
      'soak-seconds': { type: 'string' },
      'soak-rate': { type: 'string' },
      'prune-seconds': { type: 'string' },
      'prune-rate': { type: 'string' },
      'capture-rounds': { type: 'string' },
      orders: { type: 'string' },
      singles: { type: 'string' },
      delays: { type: 'string' },
      'max-wait': { type: 'string' },
      repeats: { type: 'string' },
      'backlog-by': { type: 'string' },
      'fanout-targets': { type: 'string' },
      'fanout-rows': { type: 'string' },
      'node-load': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) return 'help';
  const unknown = positionals.filter((p) => !(benchNames as readonly string[]).includes(p));
  if (unknown.length > 0) throw new Error(`unknown benchmark ${unknown.join(', ')}\n${usage}`);
  const env = process.env;
  const quick = values.quick === true;
  const defaultBatchSize = Number(configSchema.apply.batchSize.default);
  const extraSizes = list(values['batch-sizes'] ?? env.BENCH_BATCH_SIZES ?? (quick ? '' : '1000,10000'));
  return {
    names: positionals.length === 0 ? [...benchNames] : (positionals as BenchName[]),
    options: {
      seconds: int(values.seconds ?? env.BENCH_SECONDS ?? (quick ? '5' : '20'), 'seconds'),
      clients: list(values.clients ?? env.BENCH_CLIENTS ?? '1,4,8'),
      rows: int(values.rows ?? env.BENCH_ROWS ?? '100000', 'rows'),
      batchSizes: [...new Set([defaultBatchSize, ...extraSizes])],
      targets: int(values.targets ?? env.BENCH_TARGETS ?? '4', 'targets'),
      backlog: int(values.backlog ?? env.BENCH_BACKLOG ?? (quick ? '200000' : '1000000'), 'backlog'),
      latencySeconds: int(
        values['latency-seconds'] ?? env.BENCH_LATENCY_SECONDS ?? (quick ? '5' : '30'),
        'latency-seconds',
      ),
      latencyRates: list(values['latency-rates'] ?? env.BENCH_LATENCY_RATES ?? '200,2000'),
      soakSeconds: int(
        values['soak-seconds'] ?? env.BENCH_SOAK_SECONDS ?? (quick ? '60' : '600'),
        'soak-seconds',
      ),
      soakRate: int(values['soak-rate'] ?? env.BENCH_SOAK_RATE ?? '2000', 'soak-rate'),
      pruneSeconds: int(values['prune-seconds'] ?? env.BENCH_PRUNE_SECONDS ?? (quick ? '15' : '60'), 'prune'),
      pruneRate: int(values['prune-rate'] ?? env.BENCH_PRUNE_RATE ?? '30000', 'prune-rate', 0),
      captureRounds: int(values['capture-rounds'] ?? env.BENCH_CAPTURE_ROUNDS ?? '1', 'capture-rounds'),
      orders: int(values.orders ?? env.BENCH_ORDERS ?? (quick ? '1000' : '5000'), 'orders'),
      singles: int(values.singles ?? env.BENCH_SINGLES ?? (quick ? '4000' : '20000'), 'singles'),
      delays: [...new Set(list(values.delays ?? env.BENCH_DELAYS ?? '0,5,20', 0))],
      maxWaitSeconds: int(values['max-wait'] ?? env.BENCH_MAX_WAIT ?? (quick ? '60' : '120'), 'max-wait'),
      repeats: int(values.repeats ?? env.BENCH_REPEATS ?? (quick ? '1' : '3'), 'repeats'),
      backlogBy: backlogWay(values['backlog-by'] ?? env.BENCH_BACKLOG_BY ?? 'pause'),
      fanoutTargets: [...new Set(list(values['fanout-targets'] ?? env.BENCH_FANOUT_TARGETS ?? '1,8,20'))],
      fanoutRows: int(values['fanout-rows'] ?? env.BENCH_FANOUT_ROWS ?? '50000', 'fanout-rows'),
      nodeLoad: values['node-load'] === true || env.BENCH_NODE_LOAD === '1',
    },
  };
}

function backlogWay(text: string): BenchOptions['backlogBy'] {
  if (text === 'pause' || text === 'restart') return text;
  throw new Error(`--backlog-by takes pause or restart, not '${text}'\n${usage}`);
}

function int(text: string, what: string, min = 1): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) throw new Error(`${what}: an integer ≥ ${min}, not ${text}`);
  return value;
}

function list(text: string, min = 1): number[] {
  return text.trim() === '' ? [] : text.split(',').map((item) => int(item.trim(), 'list item', min));
}
