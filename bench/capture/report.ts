// The capture benchmark's tables: figures beside the targets, and what they say about
// row-level versus statement-level capture.
import { fmt, formatTable, median, verdict, type Cell } from '../support/report.js';
import { formatWaits } from '../support/waits.js';
import {
  bulkRepetitions,
  bulkRows,
  bulkTarget,
  floor,
  native,
  none,
  packed,
  ratioTarget,
  row,
  singleRowModes,
  statement,
  statementIdle,
  type BulkResult,
  type CostResult,
  type Mode,
  type SingleRowResult,
} from './setup.js';

export const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/** A mode's median TPS over the rounds, for one workload and client count. */
function medianTps(results: SingleRowResult[], workload: string, clients: number, mode: string): number {
  const runs = results.filter((r) => r.workload === workload && r.clients === clients && r.mode === mode);
  return runs.length === 0 ? NaN : median(runs.map((r) => r.tps));
}

/** Each round's statement TPS ÷ its no-capture TPS, in order. */
function roundRatios(results: SingleRowResult[], workload: string, clients: number): string {
  const of = (mode: string, round: number): number | undefined =>
    results.find(
      (r) => r.workload === workload && r.clients === clients && r.mode === mode && r.round === round,
    )?.tps;
  const rounds = [...new Set(results.map((r) => r.round))].sort((a, b) => a - b);
  return rounds
    .map((round) => fmt((of(statement.key, round) ?? NaN) / (of(none.key, round) ?? NaN), 2))
    .join(' ');
}

export function singleRowTable(results: SingleRowResult[], seconds: number): string {
  const keys = [...new Set(results.map((r) => `${r.workload} ${r.clients}`))];
  const rounds = Math.max(...results.map((r) => r.round));
  const rows = keys.map((key): Cell[] => {
    const [workload = '', count = ''] = key.split(' ');
    const clients = Number(count);
    const tps = (mode: Mode): number => medianTps(results, workload, clients, mode.key);
    const base = tps(none);
    const ratio = (mode: Mode): string => fmt(tps(mode) / base, 2);
    const target = ratioTarget(workload, clients);
    const left = results.filter(
      (r) => r.workload === workload && r.clients === clients && r.mode === 'statement',
    );
    return [
      workload,
      clients,
      base,
      tps(statement),
      ratio(statement),
      ...(rounds > 1 ? [roundRatios(results, workload, clients)] : []),
      target === undefined ? '-' : `≥ ${fmt(target, 2)}`,
      target === undefined ? '' : verdict(tps(statement) / base >= target),
      tps(row),
      ratio(row),
      tps(statementIdle),
      ratio(statementIdle),
      tps(floor),
      ratio(floor),
      left.length === 0 ? '-' : left.map((r) => r.backlogAtEnd ?? '-').join(' '),
      tps(native),
      ratio(native),
    ];
  });
  const each = rounds > 1 ? ['each round'] : [];
  return [
    rounds > 1
      ? `Single-row transactions, TPS over ${seconds} s each, median of ${rounds} rounds through the modes (ratio = with capture ÷ without)`
      : `Single-row transactions, TPS over ${seconds} s each (ratio = with capture ÷ without)`,
    formatTable(
      [
        'workload',
        'clients',
        'no capture',
        'statement',
        'ratio',
        ...each,
        'target',
        '',
        'row-level',
        'ratio',
        'stmt, daemon off',
        'ratio',
        'floor',
        'ratio',
        'backlog at end',
        'native LR',
        'ratio',
      ],
      rows,
    ),
    '"statement" is trigsync\'s capture, with the daemon applying to the target and pruning; "row-level" the',
    "variant in bench/sql/capture-row.sql, with the daemon stopped (its capture watcher would make trigsync's",
    'triggers again beside it). "backlog at end": changes of the statement run not yet applied. "native LR":',
    'no capture, native logical replication applying to the same target (every run at wal_level=logical).',
    '"floor": a trigger that only inserts its rows\' to_json() into a copy of the change log, daemon stopped',
    '(bench/sql/capture-floor.sql): what any capture that writes a log row per change costs at least.',
    ...(rounds > 1
      ? ['"each round": statement ÷ no capture in each round, in order; the other columns are medians.']
      : []),
  ].join('\n');
}

/** Where the writers spend their time, at the highest client count. */
export function waitTable(results: SingleRowResult[]): string {
  const most = Math.max(...results.map((r) => r.clients));
  const rows = results
    .filter((r) => r.clients === most && r.round === 1)
    .map((r): Cell[] => [
      r.workload,
      singleRowModes.find((m) => m.key === r.mode)?.label ?? r.mode,
      r.tps,
      formatWaits(r.waits),
    ]);
  return [
    `Writer sessions by wait event at ${plural(most, 'client')}, first round (average sessions; "running": on CPU or runnable)`,
    formatTable(['workload', 'mode', 'tps', 'top wait events'], rows),
  ].join('\n');
}

export function costTable(results: CostResult[], statements: number): string {
  const find = (kind: string, mode: Mode): CostResult | undefined =>
    results.find((r) => r.statement === kind && r.mode === mode.key);
  const rows = ['INSERT', 'UPDATE'].map((kind): Cell[] => [
    kind,
    find(kind, none)?.executionUs ?? NaN,
    find(kind, statement)?.executionUs ?? NaN,
    find(kind, statement)?.triggerUs ?? NaN,
    find(kind, row)?.executionUs ?? NaN,
    find(kind, row)?.triggerUs ?? NaN,
  ]);
  return [
    `Server time of one single-row statement, µs (EXPLAIN ANALYZE, median of ${fmt(statements, 0)} in one`,
    'session, daemon stopped; without the commit)',
    formatTable(['statement', 'no capture', 'statement', 'trigger', 'row-level', 'trigger'], rows),
  ].join('\n');
}

export function bulkTable(results: BulkResult[]): string {
  const ms = (statementKind: string, mode: Mode): number =>
    median(results.find((r) => r.statement === statementKind && r.mode === mode.key)?.ms ?? []);
  const rows = ['INSERT', 'UPDATE'].map((kind): Cell[] => {
    const base = ms(kind, none);
    const factor = ms(kind, statement) / base;
    return [
      `${kind} of ${fmt(bulkRows, 0)} rows`,
      base,
      ms(kind, statement),
      `${fmt(factor, 2)}×`,
      `≤ ${fmt(bulkTarget, 1)}×`,
      verdict(factor <= bulkTarget),
      ms(kind, row),
      `${fmt(ms(kind, row) / base, 2)}×`,
      ms(kind, packed),
      `${fmt(ms(kind, packed) / base, 2)}×`,
    ];
  });
  return [
    `One statement, ms (median of ${bulkRepetitions}; factor = with capture ÷ without)`,
    formatTable(
      [
        'statement',
        'no capture',
        'statement',
        'factor',
        'target',
        '',
        'row-level',
        'factor',
        'packed (trial)',
        'factor',
      ],
      rows,
    ),
    '"packed (trial)": bench/sql/capture-packed.sql, a log of binary row arrays that the daemon cannot',
    'read yet (bench/README.md, "What limits").',
  ].join('\n');
}

export function rowVersusStatement(
  singleRow: SingleRowResult[],
  cost: CostResult[],
  bulk: BulkResult[],
): string {
  const lines = [
    'Row-level versus statement-level capture (positive: row-level faster; TPS both with the daemon off):',
  ];
  for (const r of singleRow.filter((s) => s.mode === 'row' && s.round === 1)) {
    const rowTps = medianTps(singleRow, r.workload, r.clients, 'row');
    const statementTps = medianTps(singleRow, r.workload, r.clients, 'statementIdle');
    if (Number.isNaN(statementTps)) continue;
    lines.push(
      `  ${r.workload}, ${plural(r.clients, 'client')}: ${fmt((rowTps / statementTps - 1) * 100, 1)}% TPS`,
    );
  }
  for (const kind of ['INSERT', 'UPDATE']) {
    const us = (mode: string): number =>
      cost.find((c) => c.statement === kind && c.mode === mode)?.executionUs ?? NaN;
    lines.push(
      `  single-row ${kind}, server time: ${fmt((us('statement') / us('row') - 1) * 100, 1)}% speed`,
    );
  }
  for (const kind of ['INSERT', 'UPDATE']) {
    const time = (mode: string): number =>
      median(bulk.find((b) => b.statement === kind && b.mode === mode)?.ms ?? []);
    lines.push(
      `  ${kind} of ${fmt(bulkRows, 0)} rows: ${fmt((time('statement') / time('row') - 1) * 100, 1)}% speed`,
    );
  }
  return lines.join('\n');
}
