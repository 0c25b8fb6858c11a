/**
 * A histogram by target that counts many observations of one value at once. prom-client's Histogram
 * checks and hashes its labels at every observation, about 0.85 µs: one per change applied, so a
 * 20,000-change run of inserts cost the daemon's one thread 17 ms of it (a 1M-change backlog most of a
 * second), beside the pumping of the runs' rows, and the arrays of latencies it observed were most of the
 * garbage collected. Here a batch's changes captured at one time are one observation counted that
 * many times, and a bucket is found in a few comparisons.
 *
 * The registry reads it as it reads prom-client's own metrics (name, help, type, aggregator, get(),
 * reset()), and a scrape shows the series prom-client's histogram shows
 * (test/unit/counted-histogram.test.ts compares the two).
 */
import type { Metric, Registry } from 'prom-client';

/** A series as the registry formats it: `{le="0.005",target="dst"} 3`. */
interface SeriesValue {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
}

/** One target's counts: per bucket (not cumulative), then every observation's. */
interface Counts {
  buckets: number[];
  sum: number;
  count: number;
}

export class CountedHistogram {
  readonly type = 'histogram' as const;
  readonly aggregator = 'sum' as const;
  /** As prom-client's metrics keep them: the labels besides `le`. */
  readonly labelNames = ['target'] as const;
  private readonly counts = new Map<string, Counts>();

  constructor(
    readonly name: string,
    readonly help: string,
    /** Upper bounds, ascending. */
    private readonly bounds: readonly number[],
    registry: Registry,
  ) {
    registry.registerMetric(this as unknown as Metric);
  }

  /** The target's series, at 0 until its first observation. */
  zero(target: string): void {
    this.countsOf(target);
  }

  /** `times` observations of `value` for the target. */
  observe(target: string, value: number, times = 1): void {
    if (!Number.isFinite(value) || !(times > 0)) return;
    const counts = this.countsOf(target);
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]!) i++;
    // Past the last bound: counted in +Inf only, which is `count`.
    if (i < this.bounds.length) counts.buckets[i]! += times;
    counts.sum += value * times;
    counts.count += times;
  }

  reset(): void {
    this.counts.clear();
  }

  // The shape prom-client's Histogram.get() gives, which the registry formats.
  get(): Promise<{
    name: string;
    help: string;
    type: 'histogram';
    aggregator: 'sum';
    values: SeriesValue[];
  }> {
    const values: SeriesValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const [target, counts] of this.counts) {
      let cumulative = 0;
      this.bounds.forEach((le, i) => {
        cumulative += counts.buckets[i]!;
        values.push({ metricName: bucket, labels: { le, target }, value: cumulative });
      });
      values.push(
        { metricName: bucket, labels: { le: '+Inf', target }, value: counts.count },
        { metricName: `${this.name}_sum`, labels: { target }, value: counts.sum },
        { metricName: `${this.name}_count`, labels: { target }, value: counts.count },
      );
    }
    return Promise.resolve({
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values,
    });
  }

  private countsOf(target: string): Counts {
    let counts = this.counts.get(target);
    if (counts === undefined) {
      counts = { buckets: this.bounds.map(() => 0), sum: 0, count: 0 };
      this.counts.set(target, counts);
    }
    return counts;
  }
}
