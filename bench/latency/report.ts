// The latency benchmark's table: each run's figures beside issue #8's targets, and after each case the
// ratio of trigsync's latency to native logical replication's.
import { fmt, formatTable, verdict, type Cell } from '../support/report.js';
import { targetsOf, type LatencyCase, type RunResult } from './setup.js';

/** Figure, target and verdict: three cells; a figure without a target gets "-" and no verdict. */
function judged(value: number, target: number | undefined): Cell[] {
  if (target === undefined) return [value, '-', ''];
  return [value, `< ${fmt(target, 0)}`, verdict(value < target)];
}

const ratio = (a: number, b: number): string => `${fmt(a / b, 1)}×`;

export function latencyTable(cases: readonly LatencyCase[], results: readonly RunResult[]): string {
  const rows: Cell[][] = [];
  for (const latencyCase of cases) {
    const runs = results.filter((r) => r.case === latencyCase.key);
    for (const run of runs) {
      // The targets are trigsync's; native replication is shown beside it, unjudged.
      const targets = run.system === 'trigsync' ? targetsOf(latencyCase) : {};
      rows.push([
        latencyCase.label,
        run.system,
        run.clients,
        run.tps,
        run.latency.rows,
        ...judged(run.latency.p50Ms, targets.p50Ms),
        ...judged(run.latency.p99Ms, targets.p99Ms),
        ...judged(run.latency.maxMs, targets.maxMs),
      ]);
    }
    const trigsync = runs.find((r) => r.system === 'trigsync')?.latency;
    const native = runs.find((r) => r.system === 'native')?.latency;
    if (trigsync !== undefined && native !== undefined) {
      rows.push([
        '',
        'trigsync ÷ native',
        '',
        '',
        '',
        ratio(trigsync.p50Ms, native.p50Ms),
        '',
        '',
        ratio(trigsync.p99Ms, native.p99Ms),
        '',
        '',
        ratio(trigsync.maxMs, native.maxMs),
        '',
        '',
      ]);
    }
  }
  const headers = ['case', 'system', 'clients', 'tx/s', 'rows', 'p50 ms', 'target', '', 'p99 ms'];
  return formatTable([...headers, 'target', '', 'max ms', 'target', ''], rows);
}

/**
 * How the figures were taken, the check of the method, any rate the writers fell short of, and a hint
 * when trigsync's latency looks like its poll interval rather than its doorbell.
 */
export function latencyNotes(
  cases: readonly LatencyCase[],
  results: readonly RunResult[],
  pollIntervalMs: number,
): string {
  const lines = [
    "Latency: from the source commit to the target commit of each row (trigsync), or to the row's insert on",
    "the target (native: its subscriber commits carry the source's commit timestamp), matched by primary key;",
    'one clock, as both servers run here. The systems ran one after the other, each on a table of its own.',
  ];
  const p50s = (system: string): string =>
    results
      .filter((r) => r.system === system)
      .map((r) => fmt(r.otherClock.p50Ms))
      .join(', ');
  lines.push(
    `Other clock, p50 ms per case: trigsync by the insert on the target ${p50s('trigsync')}; ` +
      `native by the target commit timestamp ${p50s('native')}.`,
  );
  for (const run of results) {
    const label = cases.find((c) => c.key === run.case)?.label ?? run.case;
    if (run.rate !== null && run.tps < 0.95 * run.rate) {
      lines.push(`${label}, ${run.system}: the writers reached ${fmt(run.tps)} tx/s only.`);
    }
    // Woken by NOTIFY, a worker starts within milliseconds; otherwise it reads the log every pollIntervalMs.
    if (run.system === 'trigsync' && run.latency.p99Ms > pollIntervalMs / 2) {
      lines.push(
        `${label}, trigsync: p99 near apply.pollIntervalMs (${fmt(pollIntervalMs, 0)} ms): ` +
          'the worker waited for its poll, not for the doorbell.',
      );
    }
  }
  return lines.join('\n');
}
