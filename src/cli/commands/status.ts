/** `trigsync status [--json] [--check]`: state, backlog, lag and errors of every target. */
import { loadConfig } from '../../config/load.js';
import { withClient } from '../../db/connect.js';
import { readStatus } from '../../log/status.js';
import { ExitCode } from '../exit-codes.js';
import type { CommandContext } from '../handlers.js';
import { configOptions } from './common.js';

export async function statusCommand(context: CommandContext): Promise<ExitCode> {
  const config = loadConfig(configOptions(context));
  const status = await withClient(config.source.url, { applicationName: config.applicationName }, (client) =>
    readStatus(client, config),
  );
  const { out, options } = context;
  if (options.json === true) {
    out.print(JSON.stringify(status));
  } else {
    const rows = [
      ['TARGET', 'STATE', 'BACKLOG', 'LAG', 'ERRORS', 'LAST ERROR'],
      ...status.targets.map((t) => [
        t.name,
        t.parkedSince === null ? t.state : `${t.state} since ${t.parkedSince}`,
        String(t.backlog),
        `${t.lagSeconds.toFixed(1)}s`,
        String(t.errorQueue),
        t.lastError ?? '',
      ]),
    ];
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
    for (const row of rows)
      out.print(
        row
          .map((cell, i) => cell.padEnd(widths[i]!))
          .join('  ')
          .trimEnd(),
      );
    out.print(`change log: ${status.log.rows} row(s)`);
  }
  const parked = status.targets.some((t) => t.state === 'parked');
  return options.check === true && parked ? ExitCode.problemFound : ExitCode.ok;
}
