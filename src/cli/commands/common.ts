/** What several commands share. */
import { UsageError } from '../../failure/errors.js';
import type { CommandContext, OptionValue } from '../command-context.js';

/** loadConfig's options from the command line and the environment. */
export function configOptions(context: CommandContext): { file?: string; env: NodeJS.ProcessEnv } {
  return context.configFile === undefined
    ? { env: context.env }
    : { file: context.configFile, env: context.env };
}

/** `--wait SECONDS` (verify, repair): how long to wait for a target to catch up, in milliseconds. */
export function waitMs(value: OptionValue, defaultSeconds = 30): number {
  if (value === undefined) return defaultSeconds * 1000;
  const seconds = Number(value);
  if (typeof value !== 'string' || value.trim() === '' || !Number.isFinite(seconds) || seconds < 0) {
    throw new UsageError(`--wait takes a number of seconds, not ${String(value)}`);
  }
  return seconds * 1000;
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
