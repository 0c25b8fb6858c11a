/** `trigsync verify [TARGET] [--table T] [--json] [--wait SECONDS]`: compare source and target tables. */
import { loadConfig } from '../../config/load.js';
import { UsageError } from '../../failure/errors.js';
import { selectTables } from '../../verify/selection.js';
import { verify, type TargetReport, type VerifyReport } from '../../verify/verify.js';
import type { CommandContext } from '../command-context.js';
import { ExitCode } from '../exit-codes.js';
import type { Output } from '../output.js';
import { columns, configOptions, waitMs as waitOption } from './common.js';

export async function verifyCommand(context: CommandContext): Promise<ExitCode> {
  const { args, options, out } = context;
  if (args.length > 1) throw new UsageError(`verify takes at most one target, not ${args.join(' ')}`);
  const selection = {
    target: args[0],
    table: typeof options.table === 'string' ? options.table : undefined,
  };
  const waitMs = waitOption(options.wait);
  const config = loadConfig(configOptions(context));
  selectTables(config, selection); // usage errors before any connection
  const report = await verify(config, { ...selection, waitMs });
  if (options.json === true) out.print(JSON.stringify(report));
  else printReport(out, report, waitMs / 1000);
  return report.equal ? ExitCode.ok : ExitCode.problemFound;
}

function catchUpLine(target: TargetReport, waitSeconds: number): string {
  const at = `compared at source snapshot ${target.comparedAt.snapshot} (${target.comparedAt.at})`;
  if (!target.replicating) {
    return `${at}; trigsync does not replicate to this target (not installed or not registered), so the tables were compared as they are`;
  }
  if (target.caughtUp) {
    return `${at}; the target held all of it ${target.lagSeconds.toFixed(1)} s later`;
  }
  return (
    `${at}; the target had NOT applied all of it after waiting ${waitSeconds} s, and was compared at a lag ` +
    `of ${target.lagSeconds.toFixed(1)} s: differences may be changes it has not applied yet`
  );
}

function printReport(out: Output, report: VerifyReport, waitSeconds: number): void {
  for (const target of report.targets) {
    out.print(`${target.name}: ${catchUpLine(target, waitSeconds)}`);
    const header = [
      'TABLE',
      'EQUAL',
      'SOURCE ROWS',
      'TARGET ROWS',
      'DIFFERENCES',
      'HASHED S/T',
      'FETCHED S/T',
    ];
    const rows = target.tables.map((t) => [
      t.table === t.targetTable ? t.table : `${t.table} -> ${t.targetTable}`,
      t.equal ? 'yes' : 'NO',
      String(t.sourceRows),
      String(t.targetRows),
      String(t.differencesTotal),
      `${t.rowsHashed.source}/${t.rowsHashed.target}`,
      `${t.rowsFetched.source}/${t.rowsFetched.target}`,
    ]);
    const lines = columns([header, ...rows]);
    out.print(`  ${lines[0]}`);
    target.tables.forEach((t, i) => {
      out.print(`  ${lines[i + 1]}`);
      for (const d of t.differences) out.print(`      ${d.kind.padEnd(9)}  ${JSON.stringify(d.key)}`);
      const more = t.differencesTotal - t.differences.length;
      if (more > 0) out.print(`      ... and ${more} more`);
    });
  }
  const differing = report.targets.flatMap((t) => t.tables.filter((table) => !table.equal));
  out.print(
    report.equal
      ? 'verify: equal'
      : `verify: ${differing.reduce((n, t) => n + t.differencesTotal, 0)} difference(s) in ${differing.length} table(s)`,
  );
}
