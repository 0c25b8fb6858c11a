// Each row's latency: its commit time on the source against its time on the target, matched by primary
// key. Both servers run on this machine, so both timestamps come from one clock.
import type pg from 'pg';

import { mean, percentile } from '../support/report.js';
import type { Latency } from './setup.js';

/** The target's two clocks of one row, in ms since the epoch. */
interface TargetTimes {
  committed: number;
  arrived: number;
}

/** Latencies in ms of every row, by each of the target's clocks. */
export interface RowLatencies {
  byCommit: number[];
  byArrival: number[];
}

const epochMs = (expression: string): string => `(extract(epoch from ${expression}) * 1000)::float8`;

/** Commit time of each row's inserting transaction (needs track_commit_timestamp=on). */
async function sourceTimes(client: pg.Client, table: string): Promise<Map<number, number>> {
  const result = await client.query<[unknown, number]>({
    text: `select id, ${epochMs('pg_xact_commit_timestamp(xmin)')} from ${table}`,
    rowMode: 'array',
  });
  return new Map(result.rows.map(([id, committed]) => [Number(id), committed]));
}

async function targetTimes(client: pg.Client, table: string): Promise<Map<number, TargetTimes>> {
  const result = await client.query<[unknown, number, number]>({
    text: `select id, ${epochMs('pg_xact_commit_timestamp(xmin)')}, ${epochMs('arrived_at')} from ${table}`,
    rowMode: 'array',
  });
  return new Map(result.rows.map(([id, committed, arrived]) => [Number(id), { committed, arrived }]));
}

/**
 * Every source row's latency. Throws when a row is missing on either side, or a commit timestamp is
 * unknown: a run that lost rows must not print a figure.
 */
export async function rowLatencies(
  source: pg.Client,
  target: pg.Client,
  table: string,
): Promise<RowLatencies> {
  const [sent, received] = await Promise.all([sourceTimes(source, table), targetTimes(target, table)]);
  if (sent.size === 0) throw new Error(`${table}: the source has no rows; the load wrote nothing`);
  if (sent.size !== received.size) {
    throw new Error(`${table}: ${sent.size} rows on the source, ${received.size} on the target`);
  }
  const byCommit: number[] = [];
  const byArrival: number[] = [];
  for (const [id, committed] of sent) {
    const times = received.get(id);
    if (times === undefined) throw new Error(`${table}: row ${id} is missing on the target`);
    if (committed === null || times.committed === null) {
      throw new Error(`${table}: row ${id} has no commit timestamp (track_commit_timestamp off?)`);
    }
    byCommit.push(times.committed - committed);
    byArrival.push(times.arrived - committed);
  }
  return { byCommit, byArrival };
}

export function summarize(latencies: readonly number[]): Latency {
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    rows: sorted.length,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted.at(-1) ?? NaN,
    meanMs: mean(sorted),
  };
}
