/** `trigsync repair TARGET [--table T] [--dry-run] [--wait SECONDS]`: write the keys verify finds different. */
import { loadConfig } from '../../config/load.js';
import { repair, type RepairReport } from '../../verify/repair.js';
import { selectTables } from '../../verify/selection.js';
import type { CommandContext } from '../command-context.js';
import { ExitCode } from '../exit-codes.js';
import type { Output } from '../output.js';
import { configOptions, printTablesWithKeys, secondsOption, tablePair } from './common.js';

export async function repairCommand(context: CommandContext): Promise<ExitCode> {
  const { args, options, out } = context;
  // main checked the arguments against the command's description: exactly one target.
  const selection = {
    target: args[0]!,
    table: typeof options.table === 'string' ? options.table : undefined,
  };
  const waitMs = secondsOption(context, 'wait') * 1000;
  const config = loadConfig(configOptions(context));
  selectTables(config, selection); // usage errors before any connection
  const dryRun = options['dry-run'] === true;
  // A dry run lists what it would do, key by key (up to a screenful of screenfuls); a repair, what it left.
  const report = await repair(config, { ...selection, waitMs, dryRun, limit: dryRun ? 10_000 : 100 });
  printReport(out, report);
  return report.equal ? ExitCode.ok : ExitCode.problemFound;
}

function printReport(out: Output, report: RepairReport): void {
  const verb = report.dryRun ? ['INSERT', 'UPDATE', 'DELETE'] : ['INSERTED', 'UPDATED', 'DELETED'];
  for (const target of report.targets) {
    out.print(
      report.dryRun
        ? `${target.name} (dry run: nothing is written):`
        : `${target.name}: ${target.passes} comparison(s), ${target.rounds} round(s) of writes` +
            (target.replicating
              ? ''
              : '; trigsync does not replicate to this target, so it was repaired as it is'),
    );
    const header = ['TABLE', 'FOUND', ...verb, report.dryRun ? 'DIFFERING' : 'LEFT'];
    printTablesWithKeys(out, header, target.tables, (t) => ({
      cells: [
        tablePair(t),
        String(t.found),
        String(t.inserted),
        String(t.updated),
        String(t.deleted),
        String(t.left),
      ],
      keyLines: t.keys.map((k) => `${k.action.padEnd(6)}  ${JSON.stringify(k.key)}`),
      more: t.left - t.keys.length,
    }));
  }
  const tables = report.targets.flatMap((t) => t.tables);
  const sum = (pick: (t: (typeof tables)[number]) => number): number =>
    tables.reduce((n, t) => n + pick(t), 0);
  const written = sum((t) => t.inserted + t.updated + t.deleted);
  const left = sum((t) => t.left);
  for (const target of report.targets.filter((t) => t.paused && !t.equal)) {
    out.print(
      `${target.name} is paused (trigsync pause): the changes waiting for it show as differences, and ` +
        `repair writes nothing to a paused target; trigsync resume ${target.name}, then repair once it ` +
        'has caught up',
    );
  }
  if (report.dryRun) {
    out.print(
      left === 0
        ? 'repair --dry-run: nothing differs'
        : `repair --dry-run: would repair ${left} key(s) in ${tables.filter((t) => t.left > 0).length} table(s); nothing was changed`,
    );
  } else if (left === 0) {
    out.print(`repair: ${written} key(s) repaired; the target equals the source`);
  } else {
    out.print(
      `repair: ${written} key(s) repaired, ${left} key(s) still differ (changes kept them in flight, or the ` +
        'write did not hold): run repair again, or trigsync verify',
    );
  }
}
