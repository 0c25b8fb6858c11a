/**
 * `trigsync sync TARGET [--table T ...]`: ask the running daemon to copy a target's tables online (the
 * request is kept on the source, so it also survives a restart), then follow the copy until it is
 * done (a progress bar on a terminal, a line every few seconds otherwise), or until the target parks
 * on it: then the cause, and exit 1 while the daemon tries again.
 */
import { SingleBar } from 'cli-progress';
import type pg from 'pg';

import { describeSyncProgress } from '../../apply/sync-progress.js';
import { formatQualifiedName, ident, parseQualifiedName } from '../../config/identifiers.js';
import { loadConfig } from '../../config/load.js';
import type { Config } from '../../config/types.js';
import { sourceDatabase, withClient } from '../../db/connect.js';
import { ConfigError, UsageError } from '../../failure/errors.js';
import { sendControl } from '../../log/control.js';
import { loadSyncRequest, requestSync } from '../../log/targets.js';
import { sleep } from '../../lib/runnable.js';
import type { CommandContext } from '../command-context.js';
import { ExitCode } from '../exit-codes.js';
import { processOutput } from '../output.js';
import { configOptions } from './common.js';
import { targetArgument } from './errors.js';

const pollMs = 500;
const lineEveryMs = 5_000;
/** After this long without a start, say that a daemon must be running. */
const daemonHintAfterMs = 10_000;

interface Progress {
  table: string | null;
  rows: number | null;
  estimate: number | null;
  startedAt: Date | null;
  /** The target's error, when it parked after the request (the copy failed, or could not begin). */
  parkedWith: string | null;
}

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

async function readProgress(client: pg.ClientBase, schema: string, target: string): Promise<Progress> {
  const result = await client.query<{
    sync_table: string | null;
    sync_rows: number | null;
    sync_rows_estimate: number | null;
    sync_started_at: Date | null;
    parked_with: string | null;
  }>(
    `select sync_table, sync_rows, sync_rows_estimate, sync_started_at,
            case when state = 'parked' and updated_at > sync_requested_at then last_error end as parked_with
       from ${ident(schema)}.target where name = $1`,
    [target],
  );
  const row = result.rows[0];
  return {
    table: row?.sync_table ?? null,
    rows: row?.sync_rows ?? null,
    estimate: row?.sync_rows_estimate ?? null,
    startedAt: row?.sync_started_at ?? null,
    parkedWith: row?.parked_with ?? null,
  };
}

export async function syncCommand(context: CommandContext): Promise<ExitCode> {
  const config = loadConfig(configOptions(context));
  const target = targetArgument(context, config, true)!;
  const tables = selectedTables(context, config, target);
  const what = tables.length === 0 ? 'every table' : tables.join(', ');
  const connectOptions = { applicationName: config.applicationName, database: sourceDatabase };
  return withClient(config.source.url, connectOptions, async (client) => {
    if (!(await requestSync(client, config.schema, target, tables)))
      throw new ConfigError(`target ${target} is not registered on the source; run install (or start) first`);
    const request = (await loadSyncRequest(client, config.schema, target))!;
    await sendControl(client, config.schema, { command: 'sync', target });
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
    let last: Progress | undefined;
    try {
      for (;;) {
        const current = await loadSyncRequest(client, config.schema, target);
        if (current?.requestedAt !== request.requestedAt) break;
        last = await readProgress(client, config.schema, target);
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
