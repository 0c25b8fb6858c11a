// One run: a system, a workload (a backlog written while replication is stopped, or writes while it
// runs) and a delay. From the run's start the target is watched: when its first rows show, when it holds
// every row the writers wrote, or how far it got when the wait ran out. Then it must equal the source.
import type pg from 'pg';

import { delay } from '../../test/support/wait.js';
import type { Route, Side } from './sides.js';
import {
  checkSides,
  linesOf,
  orderWorkload,
  tablesOf,
  transactionsOf,
  writers,
  type Rig,
  type Shape,
  type SidesCheck,
  type SystemName,
} from './setup.js';

export const modes = ['backlog', 'live'] as const;
export type Mode = (typeof modes)[number];

export interface RunResult {
  shape: Shape;
  mode: Mode;
  delayMs: number;
  system: SystemName;
  /** Which of the case's runs (0 first): a run of trigsync and native's of the same repeat were neighbours. */
  repeat: number;
  /** Rows the writers wrote, orders and lines together. */
  rows: number;
  /** Whether the target held every row before the wait ran out. */
  finished: boolean;
  /** From the start until the target held every row; when not finished, until the wait ran out. */
  seconds: number;
  /** rows ÷ seconds; when not finished, the rows on the target when the wait ran out ÷ seconds. */
  rowsPerSecond: number;
  /** Rows on the target when the wait ended: `rows` when finished. */
  rowsArrived: number;
  /** From the start until the first rows showed on the target. */
  firstRowsSeconds: number | null;
  /** live only: how long the writers took, their rate, and how long after their last commit the target held every row. */
  writerSeconds: number | null;
  writerRowsPerSecond: number | null;
  behindSeconds: number | null;
  /** What the check after the run found equal on both sides. */
  checked: SidesCheck;
}

/** What the watch of the target has seen, times from performance.now(). */
interface Progress {
  arrived: number;
  /** When `arrived` was counted. */
  countedAt: number;
  firstAt?: number;
  doneAt?: number;
}

/** How often the target's rows are counted: small beside a run, precise enough for its seconds. */
export const watchIntervalMs = 10;
/** After the wait ran out: how long the run may take to finish all the same before it fails. */
const finishTimeoutMs = 900_000;

export async function measureRun(
  rig: Rig,
  side: Side,
  run: { shape: Shape; mode: Mode; route: Route; repeat: number },
): Promise<RunResult> {
  const { shape, mode, route, repeat } = run;
  const name = `${shape}, ${mode}, ${route.delayMs} ms, ${side.system}, run ${repeat + 1}`;
  await side.begin(route, `${shape}_${mode}_${route.delayMs}_${repeat}`);
  const perWriter = Math.ceil(transactionsOf(shape, rig.options) / writers);
  const rows = perWriter * writers * (1 + linesOf(shape));
  const write = async (): Promise<number> => {
    const written = await rig.load.run(orderWorkload(side.schema, shape), {
      url: rig.sourceUrl,
      clients: writers,
      transactions: perWriter,
    });
    if (written.transactions !== perWriter * writers) {
      throw new Error(`${name}: ${written.transactions} of ${perWriter * writers} transactions committed`);
    }
    return performance.now();
  };
  const maxWaitMs = rig.options.maxWaitSeconds * 1000;

  let started: number;
  let progress: Progress;
  let writersDoneAt: number | undefined;
  if (mode === 'backlog') {
    await side.pause();
    await write();
    started = performance.now();
    // The watch starts with replication: trigsync's first rows may land before its start() returns.
    [progress] = await Promise.all([
      watchTarget(rig.watch, side.schema, rows, started + maxWaitMs),
      side.resume(),
    ]);
  } else {
    started = performance.now();
    [progress, writersDoneAt] = await Promise.all([
      watchTarget(rig.watch, side.schema, rows, started + maxWaitMs),
      write(),
    ]);
  }

  const finished = progress.doneAt !== undefined;
  if (!finished) {
    await side.unthrottle();
    const after = await watchTarget(rig.watch, side.schema, rows, performance.now() + finishTimeoutMs);
    if (after.doneAt === undefined) {
      throw new Error(`${name}: the target holds ${after.arrived} of ${rows} rows after the wait and more`);
    }
  }
  const checked = await checkSides(rig, side.schema, name);
  await side.end();

  const endedAt = progress.doneAt ?? progress.countedAt;
  const seconds = (endedAt - started) / 1000;
  const writerSeconds = writersDoneAt === undefined ? null : (writersDoneAt - started) / 1000;
  return {
    shape,
    mode,
    delayMs: route.delayMs,
    system: side.system,
    repeat,
    rows,
    finished,
    seconds,
    rowsPerSecond: progress.arrived / seconds,
    rowsArrived: progress.arrived,
    firstRowsSeconds: progress.firstAt === undefined ? null : (progress.firstAt - started) / 1000,
    writerSeconds,
    writerRowsPerSecond: writerSeconds === null ? null : rows / writerSeconds,
    // The writers are done once the generator returns, which is a little after their last commit (it
    // closes its connections): a target that kept up may show every row before that.
    behindSeconds:
      writersDoneAt === undefined || progress.doneAt === undefined
        ? null
        : Math.max(0, progress.doneAt - writersDoneAt) / 1000,
    checked,
  };
}

/** Counts the target's rows of both tables until they reach `rows` or `deadline` (performance.now()). */
async function watchTarget(
  client: pg.Client,
  schema: string,
  rows: number,
  deadline: number,
): Promise<Progress> {
  const [orders, lines] = tablesOf(schema);
  const progress: Progress = { arrived: 0, countedAt: performance.now() };
  for (;;) {
    const result = await client.query<{ n: string }>(
      `select (select count(*) from ${orders}) + (select count(*) from ${lines}) as n`,
    );
    progress.arrived = Number(result.rows[0]!.n);
    progress.countedAt = performance.now();
    if (progress.arrived > 0) progress.firstAt ??= progress.countedAt;
    if (progress.arrived >= rows) {
      progress.doneAt = progress.countedAt;
      return progress;
    }
    if (progress.countedAt >= deadline) return progress;
    await delay(watchIntervalMs);
  }
}
