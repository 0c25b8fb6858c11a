// The relational benchmark's tables: per workload and delay, trigsync's rows/s beside native's, how soon
// a backlog's first rows showed, whether each finished (backlog) or kept up (live), and the check; then
// what the live runs' writers managed.
import { fmt, formatTable, type Cell } from '../support/report.js';
import { modes, watchIntervalMs, type RunResult } from './measure.js';
import { linesPerOrder, writers } from './setup.js';

/** Live: the target held everything within this long after the writers' last commit. */
export const keptUpSeconds = 1;

export function relationalTable(
  results: readonly RunResult[],
  delays: readonly number[],
  options: { orders: number; maxWaitSeconds: number },
): string {
  const rows: Cell[][] = [];
  for (const mode of modes) {
    for (const delayMs of delays) {
      const trigsync = find(results, mode, delayMs, 'trigsync');
      const native = find(results, mode, delayMs, 'native');
      if (trigsync === undefined || native === undefined) continue;
      rows.push([
        mode,
        delayMs,
        trigsync.rowsPerSecond,
        native.rowsPerSecond,
        trigsync.rowsPerSecond / native.rowsPerSecond,
        mode === 'backlog' ? (trigsync.firstRowsSeconds ?? '-') : '-',
        mode === 'backlog' ? (native.firstRowsSeconds ?? '-') : '-',
        outcome(trigsync),
        outcome(native),
        `equal: ${fmt(trigsync.checked.orders, 0)} + ${fmt(trigsync.checked.lines, 0)} rows each`,
      ]);
    }
  }
  const headers = [
    'workload',
    'delay ms',
    'trigsync rows/s',
    'native rows/s',
    'trigsync ÷ native',
    'trigsync first rows s',
    'native first rows s',
    'trigsync',
    'native',
    'source = target (orders + lines)',
  ];
  const transactions = Math.ceil(options.orders / writers) * writers;
  return [
    `Orders: ${fmt(transactions, 0)} transactions of one order and ${linesPerOrder} lines ` +
      `(${fmt(transactions * (1 + linesPerOrder), 0)} rows) from ${writers} writers, foreign key on both sides`,
    formatTable(headers, rows),
  ].join('\n');
}

/** What the live runs' writers wrote, per delay: trigsync's pay for capture, native's do not. */
export function writersTable(results: readonly RunResult[], delays: readonly number[]): string {
  const rows = delays.flatMap((delayMs): Cell[][] => {
    const trigsync = find(results, 'live', delayMs, 'trigsync');
    const native = find(results, 'live', delayMs, 'native');
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
    'Live: what the writers wrote while replication ran',
    formatTable(['delay ms', 'trigsync writers rows/s', 'native writers rows/s', 'trigsync writers s'], rows),
  ].join('\n');
}

export function relationalNotes(maxWaitSeconds: number): string {
  return [
    'backlog: written while replication was stopped (trigsync: daemon stopped; native: subscription',
    "  disabled), timed from its start (the daemon's start, install included; ALTER SUBSCRIPTION ENABLE)",
    '  until the target held every row; rows/s = rows ÷ seconds. "first rows": until the first rows showed.',
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

function find(
  results: readonly RunResult[],
  mode: RunResult['mode'],
  delayMs: number,
  system: RunResult['system'],
): RunResult | undefined {
  return results.find((r) => r.mode === mode && r.delayMs === delayMs && r.system === system);
}

function outcome(result: RunResult): string {
  if (!result.finished) {
    return `did not finish: ${fmt(result.rowsArrived, 0)} of ${fmt(result.rows, 0)} rows in ${fmt(result.seconds, 0)} s`;
  }
  if (result.mode === 'backlog') return `done in ${fmt(result.seconds)} s`;
  const behind = result.behindSeconds ?? NaN;
  return `${behind <= keptUpSeconds ? 'kept up' : 'fell behind'} (+${fmt(behind)} s)`;
}
