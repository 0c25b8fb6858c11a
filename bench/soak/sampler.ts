// What the soak measures itself while the writers run, every few seconds from connections of its own:
// the change log's size, both tables' sizes and the memory of this process, in which the daemon runs.
// (Backlog, lag and the log's rows come from the daemon's own reports: daemon-events.ts.)
import type pg from 'pg';

import { schema } from '../support/trigsync.js';
import { tableName } from './table.js';

export interface Sample {
  /** Seconds since the writers started. */
  at: number;
  /** Heap, indexes and TOAST of the change log. */
  logBytes: number;
  /** Dead rows in the log as the statistics count them (pruned, not yet vacuumed). */
  logDeadRows: number;
  sourceTableBytes: number;
  targetTableBytes: number;
  rssBytes: number;
  heapUsedBytes: number;
}

export interface SamplerClients {
  source: pg.Client;
  target: pg.Client;
}

/** One sample now; `origin` is the writers' start (performance.now()). */
export async function takeSample(clients: SamplerClients, origin: number): Promise<Sample> {
  const at = (performance.now() - origin) / 1000;
  // Memory first: the queries below allocate.
  const memory = process.memoryUsage();
  const [source, target] = await Promise.all([
    clients.source.query<{ log: number; dead: number; table: number }>(
      `select pg_total_relation_size('${schema}.change_log') as log,
              (select n_dead_tup from pg_stat_user_tables where relid = '${schema}.change_log'::regclass) as dead,
              pg_total_relation_size('${tableName}') as table`,
    ),
    clients.target.query<{ table: number }>(`select pg_total_relation_size('${tableName}') as table`),
  ]);
  return {
    at,
    logBytes: source.rows[0]?.log ?? NaN,
    logDeadRows: source.rows[0]?.dead ?? NaN,
    sourceTableBytes: source.rows[0]?.table ?? NaN,
    targetTableBytes: target.rows[0]?.table ?? NaN,
    rssBytes: memory.rss,
    heapUsedBytes: memory.heapUsed,
  };
}

/**
 * Samples at origin, origin + interval, ... until `signal` aborts, then once more. A failed sample fails
 * the run: a soak with holes in its series cannot say that nothing drifted.
 */
export async function sampleUntil(
  clients: SamplerClients,
  origin: number,
  intervalSeconds: number,
  signal: AbortSignal,
): Promise<Sample[]> {
  const samples: Sample[] = [];
  for (let tick = 0; !signal.aborted; tick++) {
    const wait = origin + tick * intervalSeconds * 1000 - performance.now();
    if (wait > 0) await abortableDelay(wait, signal);
    if (signal.aborted) break;
    samples.push(await takeSample(clients, origin));
  }
  samples.push(await takeSample(clients, origin));
  return samples;
}

function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
