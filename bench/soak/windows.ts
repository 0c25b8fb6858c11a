// What "flat" means for the soak: the run cut into tenths, each tenth's figures, and for each figure
// the tenth after the warm-up (10-20% of the run) compared with the last tenth. Issue #8 allows a drift
// of 10%. A size that starts near zero can double and still be nothing, so figures that only grow when
// something leaks also pass when they grew by less than a small absolute amount (their floor).
import { mean } from '../support/report.js';
import type { DaemonSecond } from './daemon-events.js';
import type { Sample } from './sampler.js';

export const tolerance = 0.1;
export const parts = 10;

export interface Span {
  /** Seconds since the writers started, from inclusive, to exclusive. */
  from: number;
  to: number;
}

/** The figures of one span of the run. */
export interface Figures {
  /** Writer transactions per second (pgbench's progress, or the Node generator's per-second count). */
  tps: number;
  /** Writer latency from each transaction's scheduled start: grows when the writers fall behind the rate. */
  writeMs: number;
  /** From the daemon's batch:applied events: capture on the source to commit on the target. */
  lagMeanMs: number;
  lagMaxMs: number;
  /** From the daemon's status:sampled, every second: the largest backlog, the mean of the log's rows. */
  backlogMax: number;
  logRows: number;
  /** The rest: means of the samples taken in the span. */
  logMB: number;
  sourceMB: number;
  targetMB: number;
  rssMB: number;
  heapMB: number;
}

export type FigureKey = keyof Figures;

export interface Metric {
  key: FigureKey;
  label: string;
  /** Which way a leak or a slowdown moves it. */
  worse: 'up' | 'down';
  /** Growth by less than this passes whatever its percentage; 0: none. */
  floor: number;
  /** Whether it gets a verdict: the source table's size is the workload's, not trigsync's. */
  judged: boolean;
}

export const metrics: Metric[] = [
  { key: 'tps', label: 'writer TPS', worse: 'down', floor: 0, judged: true },
  { key: 'writeMs', label: 'writer latency ms', worse: 'up', floor: 0, judged: false },
  { key: 'lagMeanMs', label: 'lag, mean ms', worse: 'up', floor: 50, judged: true },
  { key: 'lagMaxMs', label: 'lag, max ms', worse: 'up', floor: 250, judged: true },
  { key: 'logMB', label: 'change log MB', worse: 'up', floor: 4, judged: true },
  // Not judged: an update applied as delete + insert cannot be HOT, so the target's table settles at a
  // larger size than the source's in the first minutes (measured: 21 to 42 MB, then flat); the issue
  // asks for TPS, lag and the change log.
  { key: 'targetMB', label: 'target table MB', worse: 'up', floor: 0, judged: false },
  { key: 'rssMB', label: 'daemon process RSS MB', worse: 'up', floor: 0, judged: true },
  { key: 'logRows', label: 'change log rows', worse: 'up', floor: 0, judged: false },
  { key: 'sourceMB', label: 'source table MB', worse: 'up', floor: 0, judged: false },
];

export interface Drift {
  metric: Metric;
  first: number;
  last: number;
  /** The worst tenth after the warm-up. */
  worst: number;
  /** last ÷ first − 1. */
  change: number;
  /** last ÷ the sixth tenth (50-60%) − 1: growth that goes on, told from growth that stopped early. */
  secondHalf: number;
  /** Flat: within the tolerance, or grown by less than the floor; null when not judged. */
  flat: boolean | null;
}

/** The run in tenths. */
export function tenths(seconds: number): Span[] {
  return Array.from({ length: parts }, (_, i) => ({
    from: (seconds * i) / parts,
    to: (seconds * (i + 1)) / parts,
  }));
}

export interface Series {
  /** Writer TPS and latency (ms), second by second. */
  tps: number[];
  writeMs: number[];
  daemon: DaemonSecond[];
  samples: Sample[];
}

export function figuresOf(series: Series, span: Span): Figures {
  // The whole seconds that start inside the span (at least one), as far as the series goes.
  const from = Math.floor(span.from);
  const during = <T>(values: readonly T[]): T[] => values.slice(from, Math.max(from + 1, Math.ceil(span.to)));
  const daemon = during(series.daemon);
  const changes = daemon.reduce((sum, d) => sum + d.changes, 0);
  const reads = daemon.reduce((sum, d) => sum + d.statusReads, 0);
  const samples = samplesIn(series.samples, span);
  const mb = (bytes: number): number => bytes / 2 ** 20;
  return {
    tps: mean(during(series.tps)),
    writeMs: mean(during(series.writeMs)),
    lagMeanMs: changes === 0 ? NaN : (1000 * daemon.reduce((sum, d) => sum + d.lagSumSeconds, 0)) / changes,
    lagMaxMs: changes === 0 ? NaN : 1000 * Math.max(...daemon.map((d) => d.lagMaxSeconds)),
    backlogMax: reads === 0 ? NaN : Math.max(...daemon.map((d) => d.backlogMax)),
    logRows: reads === 0 ? NaN : daemon.reduce((sum, d) => sum + d.logRowsSum, 0) / reads,
    logMB: mean(samples.map((s) => mb(s.logBytes))),
    sourceMB: mean(samples.map((s) => mb(s.sourceTableBytes))),
    targetMB: mean(samples.map((s) => mb(s.targetTableBytes))),
    rssMB: mean(samples.map((s) => mb(s.rssBytes))),
    heapMB: mean(samples.map((s) => mb(s.heapUsedBytes))),
  };
}

/** The samples taken in the span; in a short run that has none there, the one nearest its middle. */
function samplesIn(samples: readonly Sample[], span: Span): Sample[] {
  const inside = samples.filter((s) => s.at >= span.from && s.at < span.to);
  if (inside.length > 0 || samples.length === 0) return inside;
  const middle = (span.from + span.to) / 2;
  return [samples.reduce((a, b) => (Math.abs(b.at - middle) < Math.abs(a.at - middle) ? b : a))];
}

/**
 * Each metric: the second tenth (after the warm-up) against the last, the worst tenth between, and the
 * sixth tenth against the last.
 */
export function drifts(byTenth: readonly Figures[]): Drift[] {
  const compared = byTenth.slice(1);
  return metrics.map((metric) => {
    const values = compared.map((f) => f[metric.key]);
    const first = values[0] ?? NaN;
    const last = values.at(-1) ?? NaN;
    const worst = metric.worse === 'up' ? Math.max(...values) : Math.min(...values);
    const change = last / first - 1;
    const secondHalf = last / (byTenth[parts / 2]?.[metric.key] ?? NaN) - 1;
    const within =
      metric.worse === 'down'
        ? change >= -tolerance
        : change <= tolerance || (metric.floor > 0 && last - first <= metric.floor);
    return { metric, first, last, worst, change, secondHalf, flat: metric.judged ? within : null };
  });
}
