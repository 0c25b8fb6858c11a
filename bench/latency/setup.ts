// What the latency benchmark measures with: its tables, its cases (steady rates, then flat out), issue
// #8's targets and the shape of one run's result.
import { fmt } from '../support/report.js';
import type { BenchOptions } from '../support/options.js';
import { insertWorkload, type Workload } from '../support/load.js';

/** trigsync captures this one; native replication publishes the other. Same columns, same load. */
export const trigsyncTable = 'lat_trigsync';
export const nativeTable = 'lat_native';

const payload = 'trigsync latency benchmark: a short text column';

export function sourceDdl(table: string): string {
  return `create table ${table} (id bigint primary key, a int, b text, c timestamptz)`;
}

/**
 * The target's table has one column more, filled by the target as each row is inserted. Native logical
 * replication commits on the subscriber with the source's commit timestamp (it is replayed through a
 * replication origin), so there the arrival column is the only clock of the target. Both systems write
 * the source's columns only, so the default applies.
 */
export function targetDdl(table: string): string {
  return `create table ${table} (id bigint primary key, a int, b text, c timestamptz,
                                 arrived_at timestamptz not null default clock_timestamp())`;
}

export function latencyWorkload(table: string): Workload {
  return insertWorkload(table, payload);
}

/** Writers of the steady-rate runs: a few, so that one slow commit does not hold the schedule back. */
const rateClients = 4;
/** Writers of the flat-out run: the source's highest TPS with capture on (see the capture benchmark). */
const flatOutClients = 8;

export interface LatencyCase {
  key: string;
  label: string;
  /** Transactions per second of all writers together; undefined: as fast as they can. */
  rate: number | undefined;
  clients: number;
}

export function latencyCases(options: BenchOptions): LatencyCase[] {
  return [
    ...options.latencyRates.map((rate) => ({
      key: `rate-${rate}`,
      label: `${fmt(rate, 0)} tx/s`,
      rate,
      clients: rateClients,
    })),
    { key: 'flat-out', label: 'flat out', rate: undefined, clients: flatOutClients },
  ];
}

/** Issue #8's targets for trigsync, in ms; a case without one shows "-". */
export interface Targets {
  p50Ms?: number;
  p99Ms?: number;
  maxMs?: number;
}

export function targetsOf(latencyCase: LatencyCase): Targets {
  if (latencyCase.rate === 200) return { p50Ms: 20, p99Ms: 100 };
  // "Keeping up" at the source's highest TPS: no change waits a second.
  if (latencyCase.rate === undefined) return { maxMs: 1000 };
  return {};
}

export type SystemName = 'trigsync' | 'native';

export interface Latency {
  rows: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
}

export interface RunResult {
  case: string;
  system: SystemName;
  clients: number;
  rate: number | null;
  seconds: number;
  transactions: number;
  /** What the writers achieved; at a fixed rate it falls short when the source cannot keep up. */
  tps: number;
  /** Source commit to the row's commit on the target (trigsync), or to its arrival there (native). */
  latency: Latency;
  /**
   * The other target clock, as a check of the method: trigsync by the arrival column (a batch's rows
   * arrive a little before it commits); native by its target commit timestamp (the source's, so ~0).
   */
  otherClock: Latency;
}
