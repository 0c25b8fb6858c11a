/** What several commands share. */
import type pg from 'pg';

import type { Config } from '../../config/types.js';
import { sourceDatabase, withClient } from '../../db/connect.js';
import { ConfigError, UsageError } from '../../failure/errors.js';
import type { CommandContext } from '../command-context.js';
import type { Output } from '../output.js';

/** loadConfig's options from the command line and the environment. */
export function configOptions(context: CommandContext): { file?: string; env: NodeJS.ProcessEnv } {
  return context.configFile === undefined
    ? { env: context.env }
    : { file: context.configFile, env: context.env };
}

/**
 * `work` on a session of the source, for a command that reads or writes what trigsync installed there
 * (status, errors and the operator's commands): a source where trigsync is not installed is said as
 * such, not as the relation PostgreSQL did not find.
 */
export async function onInstalledSource<T>(
  config: Config,
  work: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const options = { applicationName: config.applicationName, database: sourceDatabase };
  return withClient(config.source.url, options, work).catch((thrown: unknown) => {
    const { code, message } = thrown as { code?: string; message?: string };
    const missing = code === '42P01' ? message?.match(/^relation "([^"]+)" does not exist/)?.[1] : undefined;
    if (missing?.startsWith(`${config.schema}.`) === true) {
      throw new ConfigError(
        `not installed on the source: ${missing} does not exist; run install (or start) first`,
      );
    }
    throw thrown;
  });
}

/** A target of the config that no install has registered on the source yet. */
export function notRegistered(target: string): ConfigError {
  return new ConfigError(`target ${target} is not registered on the source; run install (or start) first`);
}

/**
 * A `--NAME SECONDS` option of the command being run, or its default: both, and what it accepts, come
 * from the command's description (commands.ts), which the help shows.
 */
export function secondsOption(context: CommandContext, name: string): number {
  const seconds = context.command.options[name]?.seconds;
  if (seconds === undefined) throw new Error(`${context.command.name} has no option --${name} in seconds`);
  const value = context.options[name];
  if (value === undefined) return seconds.default;
  const given = typeof value === 'string' && /^\s*(\d+\.?\d*|\.\d+)\s*$/.test(value) ? Number(value) : NaN;
  if (!(given >= seconds.minimum) || (seconds.whole === true && !Number.isInteger(given))) {
    const what = seconds.whole === true ? 'a whole number of seconds' : 'a number of seconds';
    const least = seconds.minimum > 0 ? `, at least ${seconds.minimum}` : '';
    throw new UsageError(`--${name} takes ${what}${least}, not '${String(value)}'`);
  }
  return given;
}

/** A compared table as verify and repair name it: with its target's name where that differs. */
export function tablePair(t: { table: string; targetTable: string }): string {
  return t.table === t.targetTable ? t.table : `${t.table} -> ${t.targetTable}`;
}

/**
 * A target's tables as verify and repair print them: a line of aligned cells each, and under a table its
 * keys (`key lines`), then how many more there were than those shown.
 */
export function printTablesWithKeys<T>(
  out: Output,
  header: string[],
  tables: readonly T[],
  of: (table: T) => { cells: string[]; keyLines: string[]; more: number },
): void {
  const described = tables.map(of);
  const lines = columns([header, ...described.map((d) => d.cells)]);
  out.print(`  ${lines[0]}`);
  described.forEach((d, i) => {
    out.print(`  ${lines[i + 1]}`);
    for (const line of d.keyLines) out.print(`      ${line}`);
    if (d.more > 0) out.print(`      ... and ${d.more} more`);
  });
}

/** Rows of cells as lines of aligned columns (the first row is usually the header). */
export function columns(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((row) =>
    row
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join('  ')
      .trimEnd(),
  );
}
