/** `trigsync verify [TARGET] [--table T] [--json] [--wait SECONDS]`: compare source and target tables. */
import { loadConfig } from '../../config/load.js';
import { UsageError } from '../../failure/errors.js';
import { selectTables } from '../../verify/selection.js';
import { verify, type TargetReport, type VerifyReport } from '../../verify/verify.js';
import type { CommandContext } from '../command-context.js';
import { ExitCode } from '../exit-codes.js';
import type { Output } from '../output.js';
import { configOptions, printTablesWithKeys, secondsOption, tablePair } from './common.js';

export async function verifyCommand(context: CommandContext): Promise<ExitCode> {
  const { args, options, out } = context;
  if (args.length > 1) throw new UsageError(`verify takes at most one target, not ${args.join(' ')}`);
  const selection = {
    target: args[0],
    table: typeof options.table === 'string' ? options.table : undefined,
  };
  const waitMs = secondsOption(context, 'wait') * 1000;
  const config = loadConfig(configOptions(context));
  selectTables(config, selection); // usage errors before any connection
  const report = await verify(config, { ...selection, waitMs });
  if (options.json === true) out.print(JSON.stringify(report));
  else printReport(out, report, waitMs / 1000);
  return report.equal ? ExitCode.ok : ExitCode.problemFound;
}

/** What was compared with what, and when: each side is read in one snapshot of its own. */
function catchUpLine(target: TargetReport, waitSeconds: number): string {
  const at = `source read in snapshot ${target.comparedAt.snapshot} (${target.comparedAt.at})`;
  if (!target.replicating) {
    return (
      `${at}, the target in a snapshot of its own; trigsync does not replicate to this target (not ` +
      'installed or not registered), so the tables were compared as they are'
    );
  }
  if (target.paused) {
    return (
      `${at}; the target is paused (trigsync pause) and applies nothing until resumed, so it was read ` +
      `as it is, at a lag of ${target.lagSeconds.toFixed(1)} s: differences may be changes waiting for it ` +
      `(trigsync resume ${target.name}, then verify again)`
    );
  }
  if (target.caughtUp) {
    return (
      `${at}; the target read in a snapshot of its own once it had applied all of that, ` +
      `${target.lagSeconds.toFixed(1)} s later`
    );
  }
  return (
    `${at}; the target had NOT applied all of it after waiting ${waitSeconds} s, and was read at a lag ` +
    `of ${target.lagSeconds.toFixed(1)} s: differences may be changes it has not applied yet`
  );
}

/** Under a table whose counts differ, or that had rows in flight: what the counts are. */
const countsLegend =
  "(SOURCE ROWS are counted in the source snapshot, TARGET ROWS in the target's; IN FLIGHT rows were " +
  'changed between the two, compared by key, and again once the target had applied them)';

function printTarget(out: Output, target: TargetReport, waitSeconds: number): void {
  out.print(`${target.name}: ${catchUpLine(target, waitSeconds)}`);
  const header = [
    'TABLE',
    'EQUAL',
    'SOURCE ROWS',
    'TARGET ROWS',
    'IN FLIGHT',
    'DIFFERENCES',
    'HASHED S/T',
    'FETCHED S/T',
  ];
  printTablesWithKeys(out, header, target.tables, (t) => ({
    cells: [
      tablePair(t),
      t.equal ? 'yes' : 'NO',
      String(t.sourceRows),
      String(t.targetRows),
      String(t.inFlight),
      String(t.differencesTotal),
      `${t.rowsHashed.source}/${t.rowsHashed.target}`,
      `${t.rowsFetched.source}/${t.rowsFetched.target}`,
    ],
    keyLines: t.differences.map((d) => `${d.kind.padEnd(9)}  ${JSON.stringify(d.key)}`),
    more: t.differencesTotal - t.differences.length,
  }));
  if (target.tables.some((t) => t.inFlight > 0 || t.sourceRows !== t.targetRows))
    out.print(`  ${countsLegend}`);
}

function printReport(out: Output, report: VerifyReport, waitSeconds: number): void {
  for (const target of report.targets) {
    if (target.state === 'compared') printTarget(out, target, waitSeconds);
    else out.print(`${target.name}: UNREACHABLE, not compared: ${target.reason}`);
  }
  const compared = report.targets.filter((t) => t.state === 'compared');
  const unreachable = report.targets.filter((t) => t.state === 'unreachable').map((t) => t.name);
  const differing = compared.flatMap((t) => t.tables.filter((table) => !table.equal));
  const verdict: string[] = [];
  if (differing.length > 0) {
    const total = differing.reduce((n, t) => n + t.differencesTotal, 0);
    verdict.push(`${total} difference(s) in ${differing.length} table(s)`);
  }
  if (unreachable.length > 0) {
    verdict.push(`target(s) ${unreachable.join(', ')} unreachable, not compared`);
    if (differing.length === 0 && compared.length > 0) verdict.push('the other target(s) equal');
  }
  out.print(verdict.length === 0 ? 'verify: equal' : `verify: ${verdict.join('; ')}`);
}
