/**
 * `trigsync sync TARGET [--table T ...]`: ask the running daemon to copy a target's tables online (the
 * request is kept on the source, so it also survives a restart), then follow the copy until it is
 * done (a progress bar on a terminal, a line every few seconds otherwise), or until the target parks
 * on it: then the cause, and exit 1 while the daemon tries again.
 */
import { SingleBar } from 'cli-progress';

import { describeSyncProgress } from '../../sync/progress.js';
import { formatQualifiedName, parseQualifiedName } from '../../config/identifiers.js';
import { loadConfig } from '../../config/load.js';
import type { Config } from '../../config/types.js';
import { UsageError } from '../../failure/errors.js';
import { askSync } from '../../operator/commands.js';
import { loadTargetPaused } from '../../changelog/targets.js';
import { loadSyncRequest, readSyncProgress, type SyncRequestProgress } from '../../sync/requests.js';
import { sleep } from '../../lib/runnable.js';
import type { CommandContext } from '../command-context.js';
import { ExitCode } from '../exit-codes.js';
import { processOutput } from '../output.js';
import { configOptions, notRegistered, onInstalledSource } from './common.js';
import { targetArgument } from './errors.js';

const pollMs = 500;
const lineEveryMs = 5_000;
/** After this long without a start, say that a daemon must be running. */
const daemonHintAfterMs = 10_000;

function selectedTables(context: CommandContext, config: Config, target: string): string[] {
  const option = context.options.table;
  const options = typeof option === 'string' ? [option] : Array.isArray(option) ? option : [];
  const mappings = config.targets.find((t) => t.name === target)!.tables;
  const known = mappings.map((m) => formatQualifiedName(m.source));
  return [
    ...new Set(
      options.map((table) => {
        let name: string;
        try {
          name = formatQualifiedName(parseQualifiedName(table));
        } catch (thrown) {
          throw new UsageError(`--table ${table}: ${(thrown as Error).message}`);
        }
        if (!known.includes(name))
          throw new UsageError(
            `--table ${table}: target ${target} takes no such table (it takes ${known.join(', ')})`,
          );
        return name;
      }),
    ),
  ];
}

export async function syncCommand(context: CommandContext): Promise<ExitCode> {
  const config = loadConfig(configOptions(context));
  const target = targetArgument(context, config, true)!;
  const tables = selectedTables(context, config, target);
  const what = tables.length === 0 ? 'every table' : tables.join(', ');
  return onInstalledSource(config, async (client) => {
    const request = await askSync(client, config.schema, target, tables);
    if (request === undefined) throw notRegistered(target);
    if (await loadTargetPaused(client, config.schema, target)) {
      // Nothing to follow until then: the request waits on the source.
      context.out.print(
        `sync of ${what} to ${target} requested; ${target} is paused (trigsync pause), so its copy ` +
          `begins when it is resumed (trigsync resume ${target})`,
      );
      return ExitCode.ok;
    }
    context.out.print(
      `sync of ${what} to ${target} requested; following the daemon's copy (Ctrl-C stops following, not the copy)`,
    );

    const bar =
      context.out === processOutput && process.stdout.isTTY
        ? new SingleBar({
            format: ' {bar} {percentage}% | {value}/{total} rows | {rate} rows/s | ETA {eta}s | {table}',
          })
        : undefined;
    const asked = Date.now();
    let hinted = false;
    let lineAt = 0;
    let last: SyncRequestProgress | undefined;
    try {
      for (;;) {
        const current = await loadSyncRequest(client, config.schema, target);
        if (current?.requestedAt !== request.requestedAt) break;
        last = await readSyncProgress(client, config.schema, target);
        if (last.parkedWith !== null) {
          bar?.stop();
          context.out.print(
            `sync of ${what} to ${target} failed: ${last.parkedWith}\n` +
              `the request stays: the daemon tries again every ${config.retry.dataErrorDelayMs / 1000} s, ` +
              `or at once on \`trigsync retry ${target}\`; \`trigsync status\` shows how it goes`,
          );
          return ExitCode.problemFound;
        }
        const seconds = last.startedAt === null ? 0 : (Date.now() - last.startedAt.getTime()) / 1000;
        if (last.startedAt === null && !hinted && Date.now() - asked > daemonHintAfterMs) {
          hinted = true;
          context.out.print('waiting for the daemon to start the copy: is `trigsync start` running?');
        }
        if (last.table !== null && last.rows !== null) {
          const progress = {
            table: last.table,
            rows: last.rows,
            estimate: last.estimate ?? undefined,
            seconds,
          };
          if (bar !== undefined) {
            const total = Math.max(last.estimate ?? 0, last.rows);
            if (bar.getTotal() !== total) bar.start(total, last.rows, { table: last.table, rate: 0 });
            bar.update(last.rows, {
              table: last.table,
              rate: Math.round(seconds > 0 ? last.rows / seconds : 0),
            });
          } else if (Date.now() - lineAt >= lineEveryMs) {
            lineAt = Date.now();
            context.out.print(`sync ${target}: ${describeSyncProgress(progress)}`);
          }
        }
        await sleep(pollMs);
      }
    } finally {
      bar?.stop();
    }
    const seconds = last?.startedAt == null ? undefined : (Date.now() - last.startedAt.getTime()) / 1000;
    context.out.print(
      `sync of ${what} to ${target} done${seconds === undefined ? '' : ` in ${seconds.toFixed(1)} s`}; ` +
        'the target follows the log from the copy on',
    );
    return ExitCode.ok;
  });
}
