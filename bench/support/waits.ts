// What the load's sessions wait on: pg_stat_activity sampled every 100 ms while a run lasts. The
// average number of sessions per wait event says where the time goes (CPU shows as "running").
import type pg from 'pg';

import { loadApplicationName } from './load.js';

/** Average sessions in each state over the run, largest first. */
export type WaitProfile = [event: string, sessions: number][];

export async function sampleWaits<T>(client: pg.Client, work: () => Promise<T>): Promise<[T, WaitProfile]> {
  const totals = new Map<string, number>();
  let samples = 0;
  let done = false;
  // A diagnostic: a failed sample ends the sampling, never the measurement.
  const sampling = (async () => {
    while (!done) {
      const result = await client.query<{ event: string; n: number }>(
        `select coalesce(wait_event_type || ':' || wait_event, case state when 'active' then 'running' else state end) as event,
                count(*) as n
           from pg_stat_activity where application_name = $1 group by 1`,
        [loadApplicationName],
      );
      for (const row of result.rows) totals.set(row.event, (totals.get(row.event) ?? 0) + row.n);
      samples++;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })().catch(() => undefined);
  try {
    return [await work(), profile(totals, samples)];
  } finally {
    done = true;
    await sampling;
  }
}

function profile(totals: Map<string, number>, samples: number): WaitProfile {
  return [...totals]
    .map(([event, n]): [string, number] => [event, n / Math.max(1, samples)])
    .sort((a, b) => b[1] - a[1]);
}

/** The top few, e.g. "LWLock:WALWrite 3.1, running 2.0, Client:ClientRead 1.8". */
export function formatWaits(waits: WaitProfile, top = 4): string {
  return waits
    .slice(0, top)
    .map(([event, n]) => `${event} ${n.toFixed(1)}`)
    .join(', ');
}
