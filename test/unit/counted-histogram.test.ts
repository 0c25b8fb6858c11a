// The latency histogram counts a value many times at once (src/metrics/counted-histogram.ts); a scrape must
// show exactly what prom-client's own histogram shows for the same observations made one at a time.
import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';

import { CountedHistogram } from '../../src/metrics/counted-histogram.js';

const bounds = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
const name = 'trigsync_replication_latency_seconds';
const help = "From a change's capture on the source to its commit on the target";

/** [target, seconds, times]: on a bound, between bounds, past the last, many at once, negative. */
const observations: [string, number, number][] = [
  ['dst', 0.005, 3],
  ['dst', 0.0051, 1],
  ['dst', 0.2, 5000],
  ['far', 700, 2],
  ['dst', 59.999, 1],
  ['far', 0, 1],
  ['far', -0.002, 4],
];

/** The exposition with each sum rounded: a sum of `times` additions and one multiplication differ in the last digits. */
async function scraped(registry: Registry): Promise<string> {
  return (await registry.metrics()).replaceAll(
    /(_sum\{[^}]*\}) (\S+)/g,
    (_, series: string, value: string) => `${series} ${Number(value).toFixed(6)}`,
  );
}

describe('CountedHistogram', () => {
  it("scrapes as prom-client's histogram does, observations counted many at once", async () => {
    const theirs = new Registry();
    const histogram = new Histogram({
      name,
      help,
      labelNames: ['target'],
      buckets: bounds,
      registers: [theirs],
    });
    const ours = new Registry();
    const counted = new CountedHistogram(name, help, bounds, ours);
    for (const target of ['dst', 'far', 'idle']) {
      histogram.zero({ target });
      counted.zero(target);
    }
    for (const [target, seconds, times] of observations) {
      for (let i = 0; i < times; i++) histogram.observe({ target }, seconds);
      counted.observe(target, seconds, times);
    }
    expect(await scraped(ours)).toBe(await scraped(theirs));
    expect(await ours.metrics()).toContain(`${name}_bucket{le="0.25",target="dst"} 5004`);

    theirs.resetMetrics();
    ours.resetMetrics();
    expect(await scraped(ours)).toBe(await scraped(theirs));
  });

  it('ignores what is not a count of finite values', async () => {
    const registry = new Registry();
    const counted = new CountedHistogram(name, help, bounds, registry);
    counted.observe('dst', Number.NaN, 1);
    counted.observe('dst', Infinity, 1);
    counted.observe('dst', 1, 0);
    expect(await registry.metrics()).not.toContain('target="dst"');
  });
});
