// The relational benchmark's tables: per workload and delay, trigsync's rows/s beside native's, how soon
// a backlog's first rows showed, whether each finished (backlog) or kept up (live), and the check; then
// what the live runs' writers managed. Where a case ran several times, each system's median run, and the
// ratio of every pair of runs beside it.
import { fmt, formatTable, type Cell } from '../support/report.js';
import { modes, watchIntervalMs, type RunResult } from './measure.js';
import { linesOf, transactionsOf, writers, type Shape } from './setup.js';

/** Live: the target held everything within this long after the writers' last commit. */
export const keptUpSeconds = 1;

export function relationalTable(
  results: readonly RunResult[],
  shape: Shape,
  options: { orders: number; singles: number; delays: readonly number[] },
): string {
  const rows: Cell[][] = [];
  for (const mode of modes) {
    for (const delayMs of options.delays) {
      const trigsync = medianRun(results, { shape, mode, delayMs, system: 'trigsync' });
      const native = medianRun(results, { shape, mode, delayMs, system: 'native' });
      if (trigsync === undefined || native === undefined) continue;
      rows.push([
        mode,
        delayMs,
        trigsync.rowsPerSecond,
        native.rowsPerSecond,
        trigsync.rowsPerSecond / native.rowsPerSecond,
        pairRatios(results, { shape, mode, delayMs }),
        mode === 'backlog' ? afterFirstRows(trigsync) / afterFirstRows(native) : '-',
        mode === 'backlog' ? (trigsync.firstRowsSeconds ?? '-') : '-',
        mode === 'backlog' ? (native.firstRowsSeconds ?? '-') : '-',
        outcome(trigsync),
        outcome(native),
        shape === 'orders'
          ? `equal: ${fmt(trigsync.checked.orders, 0)} + ${fmt(trigsync.checked.lines, 0)} rows each`
          : `equal: ${fmt(trigsync.checked.orders, 0)} rows each`,
      ]);
    }
  }
  const headers = [
    'workload',
    'delay ms',
    'trigsync rows/s',
    'native rows/s',
    'trigsync ÷ native',
    'each run',
    'after first rows',
    'trigsync first rows s',
    'native first rows s',
    'trigsync',
    'native',
    shape === 'orders' ? 'source = target (orders + lines)' : 'source = target',
  ];
  const transactions = Math.ceil(transactionsOf(shape, options) / writers) * writers;
  const lines = linesOf(shape);
  const title =
    shape === 'orders'
      ? `Orders: ${fmt(transactions, 0)} transactions of one order and ${lines} lines ` +
        `(${fmt(transactions * (1 + lines), 0)} rows) from ${writers} writers, foreign key on both sides`
      : `Single rows: ${fmt(transactions, 0)} transactions of one order each (an INSERT in autocommit) ` +
        `from ${writers} writers`;
  return [title, formatTable(headers, rows)].join('\n');
}

/** What the live runs' writers wrote, per delay: trigsync's pay for capture, native's do not. */
export function writersTable(results: readonly RunResult[], shape: Shape, delays: readonly number[]): string {
  const rows = delays.flatMap((delayMs): Cell[][] => {
    const trigsync = medianRun(results, { shape, mode: 'live', delayMs, system: 'trigsync' });
    const native = medianRun(results, { shape, mode: 'live', delayMs, system: 'native' });
    if (trigsync === undefined || native === undefined) return [];
    return [
      [
        delayMs,
        trigsync.writerRowsPerSecond ?? '-',
        native.writerRowsPerSecond ?? '-',
        trigsync.writerSeconds ?? '-',
      ],
    ];
  });
  return [
    `Live, ${shape}: what the writers wrote while replication ran`,
    formatTable(['delay ms', 'trigsync writers rows/s', 'native writers rows/s', 'trigsync writers s'], rows),
  ].join('\n');
}

export function relationalNotes(
  maxWaitSeconds: number,
  repeats: number,
  backlogBy: 'pause' | 'restart',
): string {
  const stopped =
    backlogBy === 'pause'
      ? [
          'backlog: written while replication was stopped (trigsync: the target paused, its daemon running;',
          '  native: subscription disabled), timed from `trigsync resume` (ALTER SUBSCRIPTION ENABLE) until',
        ]
      : [
          'backlog: written while replication was stopped (trigsync: daemon stopped; native: subscription',
          "  disabled), timed from the daemon's start (install included; ALTER SUBSCRIPTION ENABLE) until",
        ];
  return [
    `Each case ran ${repeats} time${repeats === 1 ? '' : 's'} (--repeats), trigsync then native each time: the figures are`,
    '  each system\'s median run; "each run": trigsync ÷ native of each pair of runs, in order.',
    ...stopped,
    '  the target held every row; rows/s = rows ÷ seconds. "first rows": until the first rows showed.',
    '  "after first rows": the ratio of rows ÷ (seconds − first rows s), the rate of applying without',
    "  either system's start. Each system's first run (orders, backlog, no delay) is not shown: it warms",
    "  the bench's process, trigsync's daemon included, as a daemon that has run a while is warm.",
    `Times come from counting the target's rows every ${watchIntervalMs} ms: a run of a tenth of a second is`,
    '  a few counts, good to ±15%.',
    "live: replication running, timed from the writers' start until the target held every row;",
    `  "kept up": every row there within ${keptUpSeconds} s of the writers' last commit ("+": how long after).`,
    `"did not finish": the target did not hold every row within ${maxWaitSeconds} s (--max-wait); rows/s is`,
    '  what had arrived by then. The run then finished without the proxy (trigsync) before the check.',
    'delay: a TCP proxy in a child process holds every chunk this long each way; trigsync reaches the',
    "  target through it, native's subscriber reaches the source through it.",
    'trigsync applies as session_replication_role=replica (the target role is a superuser), as native does:',
    "  the target's foreign-key checks do not fire for either. Native's apply worker commits with",
    '  synchronous_commit=off (the subscription default); trigsync waits for every commit to flush.',
  ].join('\n');
}

type Case = Pick<RunResult, 'shape' | 'mode' | 'delayMs'>;

function runsOf(results: readonly RunResult[], run: Case & Pick<RunResult, 'system'>): RunResult[] {
  return results
    .filter(
      (r) =>
        r.shape === run.shape && r.mode === run.mode && r.delayMs === run.delayMs && r.system === run.system,
    )
    .sort((a, b) => a.repeat - b.repeat);
}

/**
 * A system's median run of a case by rows/s (of an even number, the slower of the middle two): a run,
 * not support/report.ts's median of numbers, since the table shows that run's first rows and outcome.
 */
function medianRun(
  results: readonly RunResult[],
  run: Case & Pick<RunResult, 'system'>,
): RunResult | undefined {
  const runs = runsOf(results, run).sort((a, b) => a.rowsPerSecond - b.rowsPerSecond);
  return runs[Math.floor((runs.length - 1) / 2)];
}

/** trigsync ÷ native of each repeat of a case, in the order they ran. */
function pairRatios(results: readonly RunResult[], run: Case): string {
  const trigsync = runsOf(results, { ...run, system: 'trigsync' });
  const native = runsOf(results, { ...run, system: 'native' });
  return trigsync
    .map((t, i) => (native[i] === undefined ? '-' : fmt(t.rowsPerSecond / native[i].rowsPerSecond, 2)))
    .join(' ');
}

/**
 * A finished backlog's rows/s from its first rows on: the rate of applying, without what each system
 * pays once before (trigsync's daemon start, native's apply worker start).
 */
function afterFirstRows(result: RunResult): number {
  if (!result.finished || result.firstRowsSeconds === null) return NaN;
  return result.rows / Math.max(result.seconds - result.firstRowsSeconds, watchIntervalMs / 1000);
}

function outcome(result: RunResult): string {
  if (!result.finished) {
    return `did not finish: ${fmt(result.rowsArrived, 0)} of ${fmt(result.rows, 0)} rows in ${fmt(result.seconds, 0)} s`;
  }
  if (result.mode === 'backlog') return `done in ${fmt(result.seconds)} s`;
  const behind = result.behindSeconds ?? NaN;
  return `${behind <= keptUpSeconds ? 'kept up' : 'fell behind'} (+${fmt(behind)} s)`;
}
