// The soak's tables: the run tenth by tenth, then each figure's drift from the tenth after the warm-up
// to the last, beside issue #8's target.
import { fmt, formatTable, verdict, type Cell } from '../support/report.js';
import { churnShare, tableRows, writerClients } from './table.js';
import { metrics, parts, tolerance, type Drift, type Figures, type Span } from './windows.js';
import type { Sample } from './sampler.js';

export interface SoakSetup {
  seconds: number;
  rate: number;
  sampleSeconds: number;
}

export interface CatchUp {
  /** Changes not yet applied when the writers stopped. */
  backlogAtStop: number;
  /** From the writers' stop until the target had applied everything. */
  seconds: number;
}

export function describeRun(setup: SoakSetup): string {
  const updates = Math.round(setup.rate * (1 - churnShare));
  const churn = setup.rate - updates;
  return [
    `${fmt(setup.seconds, 0)} s of writes at ${fmt(setup.rate, 0)} tx/s on a table of ${fmt(tableRows, 0)} rows, ` +
      `${writerClients} connections: ${fmt(updates, 0)}/s UPDATE of a random row, ` +
      `${fmt(churn, 0)}/s INSERT of a new row + DELETE of the oldest in one statement.`,
    'The daemon (default config, its pruner included) applies to one target throughout; sizes and memory ' +
      `sampled every ${fmt(setup.sampleSeconds)} s.`,
  ].join('\n');
}

export function seriesTable(spans: readonly Span[], byTenth: readonly Figures[]): string {
  const rows = byTenth.map((f, i): Cell[] => [
    `${fmt(spans[i]!.from, 0)}-${fmt(spans[i]!.to, 0)}`,
    f.tps,
    f.writeMs,
    f.lagMeanMs,
    f.lagMaxMs,
    f.backlogMax,
    f.logRows,
    f.logMB,
    f.targetMB,
    f.sourceMB,
    f.rssMB,
    f.heapMB,
  ]);
  return [
    'Over time, by tenth of the run (write: writer latency from the scheduled start; lag: capture on the',
    'source to commit on the target, per applied change; backlog, log rows: the largest and the mean of the',
    "daemon's status, read every second; sizes and memory: means of the samples)",
    formatTable(
      [
        's',
        'tps',
        'write ms',
        'lag ms',
        'lag max ms',
        'backlog max',
        'log rows',
        'log MB',
        'target MB',
        'source MB',
        'RSS MB',
        'heap MB',
      ],
      rows,
    ),
  ].join('\n');
}

export function driftTable(drifts: readonly Drift[], spans: readonly Span[]): string {
  const second = spans[1]!;
  const last = spans.at(-1)!;
  const pct = (change: number): string => `${change >= 0 ? '+' : ''}${fmt(change * 100, 1)}%`;
  const rows = drifts.map((d): Cell[] => {
    const { metric } = d;
    const limit = metric.worse === 'down' ? `≥ -${tolerance * 100}%` : `≤ +${tolerance * 100}%`;
    const floor = metric.floor > 0 ? ` or +${fmt(metric.floor, 0)}` : '';
    return [
      metric.label,
      d.first,
      d.last,
      d.worst,
      pct(d.change),
      d.flat === null ? '-' : `${limit}${floor}`,
      d.flat === null ? '' : verdict(d.flat),
      pct(d.secondHalf),
    ];
  });
  const span = (s: Span): string => `${fmt(s.from, 0)}-${fmt(s.to, 0)} s`;
  return [
    `Drift: ${span(second)} (after a warm-up of the first tenth) against the last tenth, ${span(last)}`,
    formatTable(['figure', 'first', 'last', 'worst', 'drift', 'target', '', '2nd half'], rows),
  ].join('\n');
}

export function driftNote(): string {
  const floors = metrics
    .filter((m) => m.floor > 0)
    .map((m) => `${m.label} +${fmt(m.floor, 0)}`)
    .join('; ');
  return [
    '"first": the mean over the second tenth of the run (the first tenth is warm-up: caches, the first',
    `prunes, autovacuum's first rounds); "last": over the last tenth; "worst": the worst of the ${parts - 1} tenths`,
    `after the warm-up (lowest TPS, highest otherwise). Flat: TPS fell by at most ${tolerance * 100}%, the others grew`,
    `by at most ${tolerance * 100}%, or, for figures that sit near zero where a doubling is noise and not drift,`,
    `by less than a floor (${floors}).`,
    '"2nd half": the last tenth against the sixth (50-60%), not judged: it tells a figure that still grows',
    'from one that grew early and settled (a table reaching the size at which autovacuum keeps up).',
    'Sizes include indexes and TOAST. RSS is the whole bench process, in which the daemon runs (pgbench',
    'runs apart; the Node load generator, if used, runs inside and counts too). Writer latency, log rows',
    'and both tables are there to read the others by and are not judged here; the last sample of their sizes',
    'is compared below (issue #17: target ≤ 1.2 × source).',
  ].join('\n');
}

/** What the writers achieved against the rate asked for: a machine that cannot keep up shows here. */
export function writersLine(setup: SoakSetup, transactions: number): string {
  const achieved = transactions / setup.seconds;
  return (
    `Writers: ${fmt(transactions, 0)} transactions, ${fmt(achieved, 0)} tx/s on average ` +
    `(${fmt((achieved / setup.rate) * 100, 0)}% of the ${fmt(setup.rate, 0)} asked for).`
  );
}

/** The target table's size against the source's at the last sample (updates applied in place stay HOT). */
export function tableSizeLine(last: Sample | undefined): string {
  if (last === undefined) return 'Table sizes: no sample.';
  const ratio = last.targetTableBytes / last.sourceTableBytes;
  return (
    `Table sizes at the end: source ${fmt(last.sourceTableBytes / 2 ** 20)} MB, target ` +
    `${fmt(last.targetTableBytes / 2 ** 20)} MB: ${fmt(ratio)}× (target ≤ 1.2×: ${verdict(ratio <= 1.2)}).`
  );
}

export function catchUpLine(catchUp: CatchUp): string {
  return (
    `When the writers stopped: ${fmt(catchUp.backlogAtStop, 0)} changes not yet applied, ` +
    `all applied ${fmt(catchUp.seconds)} s later.`
  );
}

export function verdictLine(drifts: readonly Drift[]): string {
  const judged = drifts.filter((d) => d.flat !== null);
  const missed = judged.filter((d) => d.flat === false).map((d) => d.metric.label);
  return missed.length === 0
    ? `Soak: ${verdict(true)}, all ${judged.length} judged figures flat; the target matches the source.`
    : `Soak: ${verdict(false)} for ${missed.join(', ')}; the target matches the source.`;
}
