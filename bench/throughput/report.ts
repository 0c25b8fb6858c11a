// The throughput benchmark's table: every figure beside the target of issue #8, then which apply.batchSize
// did best.
import { fmt, formatTable, mean, verdict, type Cell } from '../support/report.js';
import type { CaseKey, ThroughputCase, ThroughputResult } from './cases.js';

/** Issue #8: rows/s to one target, of every case. */
export const oneTargetRowsPerSecond = 30_000;
/** Issue #8: the fan-out's rows/s over all targets, at least this share of targets × one target's. */
export const fanOutShare = 0.7;
/** Issue #8: trigsync's rows/s at least this share of native logical replication's. */
export const nativeShare = 0.8;

const headers = [
  'captured while stopped',
  'replication',
  'targets',
  'batchSize',
  'changes',
  's',
  'start s',
  'rows/s',
  'target',
  '',
  'per target rows/s',
  'on target',
];

export function resultTable(
  results: readonly ThroughputResult[],
  cases: Record<CaseKey, ThroughputCase>,
  defaultSize: number,
): string {
  const rows: Cell[][] = [];
  for (const group of groups(results)) {
    // The case's name on its first row only, so that the groups stand out.
    const label = cases[group[0]!.case].label;
    rows.push(
      ...group.map((r, i) => resultRow(i === 0 ? label : '', r, goalRowsPerSecond(r, results, defaultSize))),
    );
    const trigsync = group.find((r) => r.replication === 'trigsync' && r.batchSize === defaultSize);
    const native = group.find((r) => r.replication === 'native');
    if (trigsync !== undefined && native !== undefined) {
      rows.push(ratioRow(trigsync.rowsPerSecond / native.rowsPerSecond));
    }
  }
  return [
    'Throughput: changes captured while replication was stopped, timed from its start (trigsync: the',
    "daemon's start; native: ALTER SUBSCRIPTION ENABLE) until every target has committed the last of them",
    formatTable(headers, rows),
    'rows/s: changes × targets ÷ seconds until the last target is done. Target with several targets:',
    `  ≥ ${fanOutShare} × targets × trigsync's rows/s to one target in the same case.`,
    `trigsync ÷ native: trigsync at the default apply.batchSize (${fmt(defaultSize, 0)}).`,
    '"start s": of "s", until the daemon had installed and started its workers.',
    '"on target": share of the time trigsync spent in target transactions (the rest: start, reading the',
    '  log, ticks).',
    'native: a subscription per target, each with its own slot and walsender; its apply worker commits',
    '  with synchronous_commit=off (the subscription default); trigsync waits for every commit to flush.',
  ].join('\n');
}

/** Results of the same case and number of targets, in the order they were measured. */
function groups(results: readonly ThroughputResult[]): ThroughputResult[][] {
  const byKey = new Map<string, ThroughputResult[]>();
  for (const result of results) {
    const key = `${result.case} ${result.targets}`;
    byKey.set(key, [...(byKey.get(key) ?? []), result]);
  }
  return [...byKey.values()];
}

/** The rows/s for trigsync's result; undefined for native, whose figures are the yardstick. */
function goalRowsPerSecond(
  result: ThroughputResult,
  results: readonly ThroughputResult[],
  defaultSize: number,
): number | undefined {
  if (result.replication === 'native') return undefined;
  if (result.targets === 1) return oneTargetRowsPerSecond;
  const alone = results.find(
    (r) =>
      r.replication === 'trigsync' &&
      r.case === result.case &&
      r.targets === 1 &&
      r.batchSize === defaultSize,
  );
  return alone === undefined ? undefined : fanOutShare * result.targets * alone.rowsPerSecond;
}

function resultRow(label: string, result: ThroughputResult, rowsPerSecond: number | undefined): Cell[] {
  const perTarget = result.perTarget.map((t) => t.rowsPerSecond);
  const shares = result.perTarget.flatMap((t) => (t.targetShare === undefined ? [] : [t.targetShare]));
  return [
    label,
    result.replication,
    result.targets,
    result.batchSize ?? '-',
    result.changes,
    result.seconds,
    result.startSeconds ?? '-',
    result.rowsPerSecond,
    rowsPerSecond === undefined ? '' : `≥ ${fmt(rowsPerSecond, 0)}`,
    rowsPerSecond === undefined ? '' : verdict(result.rowsPerSecond >= rowsPerSecond),
    perTarget.length < 2 ? '' : `${fmt(Math.min(...perTarget))} to ${fmt(Math.max(...perTarget))}`,
    shares.length === 0 ? '' : `${fmt(mean(shares) * 100, 0)}%`,
  ];
}

/** trigsync ÷ native in the rows/s column, beside its goal. */
function ratioRow(ratio: number): Cell[] {
  const row = headers.map((): Cell => '');
  row[headers.indexOf('replication')] = 'trigsync ÷ native';
  row[headers.indexOf('rows/s')] = ratio;
  row[headers.indexOf('target')] = `≥ ${fmt(nativeShare, 2)}`;
  row[headers.indexOf('target') + 1] = verdict(ratio >= nativeShare);
  return row;
}

/** Default versus best apply.batchSize of the one-target cases; empty when only the default ran. */
export function batchSizeSummary(
  results: readonly ThroughputResult[],
  cases: Record<CaseKey, ThroughputCase>,
  defaultSize: number,
): string {
  const alone = results.filter((r) => r.replication === 'trigsync' && r.targets === 1);
  if (new Set(alone.map((r) => r.batchSize)).size < 2) return '';
  const lines = ['Default versus best apply.batchSize, one target (issue #3 asks for the figures):'];
  for (const key of new Set(alone.map((r) => r.case))) {
    const own = alone.filter((r) => r.case === key);
    // The backlog runs at the default only.
    if (own.length < 2) continue;
    const atDefault = own.find((r) => r.batchSize === defaultSize);
    const best = own.reduce((a, b) => (b.rowsPerSecond > a.rowsPerSecond ? b : a));
    lines.push(
      `  ${cases[key].label}: default (${fmt(defaultSize, 0)}) ${fmt(atDefault?.rowsPerSecond ?? NaN)} rows/s; ` +
        `best ${fmt(best.rowsPerSecond)} rows/s at ${fmt(best.batchSize ?? NaN, 0)}`,
    );
  }
  return lines.join('\n');
}
