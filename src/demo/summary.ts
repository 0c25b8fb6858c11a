/** The demo's printed text beyond the live view: what runs where, what to try, verify's verdict. */
import type { VerifyReport } from '../verify/verify.js';

export interface DemoPaths {
  dir: string;
  configFile: string;
  daemonLog: string;
  metricsUrl: string | undefined;
}

/** While the demo runs, these work from the checkout, in another terminal. */
export function tryWhileRunning(paths: DemoPaths): string[] {
  const config = `--config ${paths.configFile}`;
  return [
    `  npx trigsync status ${config}     state, backlog and lag of each replica`,
    `  npx trigsync verify ${config}     compare every table, source against replicas`,
    `  npx trigsync errors ${config}     the error queue (empty, unless a change was refused)`,
    ...(paths.metricsUrl === undefined ? [] : [`  curl -s ${paths.metricsUrl} | grep '^trigsync_'`]),
    `  tail -f ${paths.daemonLog}     the daemon's JSON log`,
  ];
}

export function introLines(paths: DemoPaths, durationSeconds: number): string[] {
  return [
    '',
    `Demo files:   ${paths.dir}   (removed at the end)`,
    `Config:       ${paths.configFile}`,
    `Daemon log:   ${paths.daemonLog}`,
    `Metrics:      ${paths.metricsUrl ?? '(not served)'}`,
    '',
    `For the next ${durationSeconds} s, in another terminal from this directory:`,
    ...tryWhileRunning(paths),
    '',
  ];
}

export function verifyLines(report: VerifyReport): string[] {
  // The counts are each side's own snapshot: an equal table's differ by at most the rows in flight.
  const header = ['REPLICA', 'TABLE', 'EQUAL', 'SOURCE ROWS', 'REPLICA ROWS', 'IN FLIGHT', 'DIFFERENCES'];
  const rows = report.targets.flatMap((target) =>
    target.tables.map((t) => [
      target.name,
      t.table === t.targetTable ? t.table : `${t.table} -> ${t.targetTable}`,
      t.equal ? 'yes' : 'NO',
      String(t.sourceRows),
      String(t.targetRows),
      String(t.inFlight),
      String(t.differencesTotal),
    ]),
  );
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (row: string[]): string =>
    `  ${row
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join('  ')
      .trimEnd()}`;
  const differing = report.targets.flatMap((t) => t.tables.filter((table) => !table.equal));
  return [
    '',
    line(header),
    ...rows.map(line),
    '',
    report.equal
      ? 'verify: equal: every table of every replica holds exactly the source rows'
      : `verify: NOT equal: ${differing.reduce((n, t) => n + t.differencesTotal, 0)} difference(s) in ` +
        `${differing.length} table(s); the daemon's log is kept (see below)`,
  ];
}

export function closingLines(paths: DemoPaths): string[] {
  return [
    '',
    `Metrics: ${paths.metricsUrl ?? '(not served)'} (Prometheus format; /healthz and /readyz beside it)`,
    'What to try next:',
    '  npm run demo -- --duration 300    a longer demo, with time to try the commands printed at its',
    '                                    start (status, verify, errors, curl of the metrics)',
    '  docs/configuration.md, docs/operations.md    to replicate your own databases',
    '',
  ];
}
