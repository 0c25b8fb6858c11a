/**
 * `trigsync <command> [options]`: parses the command line and dispatches to a command.
 * Returns the exit code instead of exiting, so tests can call it in-process.
 */
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';

import { ConfigError, UsageError, coerceError } from '../failure/errors.js';
import type { CommandContext } from './command-context.js';
import { commands, findCommand, type CommandSpec } from './commands.js';
import { ExitCode } from './exit-codes.js';
import { handlers } from './handlers.js';
import type { Output } from './output.js';
import { processOutput } from './output.js';

const commonOptions = {
  config: { type: 'string', short: 'c' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
} as const satisfies ParseArgsConfig['options'];

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

export function helpText(): string {
  const width = Math.max(...commands.map((c) => c.usage.length));
  const lines = commands.map((c) => `  ${c.usage.padEnd(width)}  ${c.summary}`);
  return [
    'trigsync: trigger-based replication for PostgreSQL',
    '',
    'Usage: trigsync <command> [options]',
    '',
    'Commands:',
    ...lines,
    '',
    'Options:',
    '  -c, --config PATH  the configuration file, YAML or JSON (default: $TRIGSYNC_CONFIG)',
    "  -h, --help         show this help, or a command's help after the command",
    '  -V, --version      print the version',
    '',
    'Exit codes: 0 success; 1 the command found a problem; 2 usage or configuration error; 3 failure.',
  ].join('\n');
}

function commandHelp(spec: CommandSpec): string {
  return `Usage: trigsync ${spec.usage}\n\n${spec.summary}`;
}

export async function main(argv: string[], out: Output = processOutput): Promise<ExitCode> {
  try {
    return await run(argv, out);
  } catch (thrown) {
    if (thrown instanceof UsageError) {
      out.error(`trigsync: ${thrown.message}\nRun 'trigsync --help' for the commands.`);
      return ExitCode.usage;
    }
    if (thrown instanceof ConfigError) {
      out.error(`trigsync: ${thrown.message}`);
      return ExitCode.usage;
    }
    out.error(`trigsync: ${coerceError(thrown).message}`);
    return ExitCode.failure;
  }
}

/** The command word, wherever it stands among the options. */
function firstPositional(argv: string[]): string | undefined {
  const allOptions = Object.assign({}, commonOptions, ...commands.map((c) => c.options ?? {})) as NonNullable<
    ParseArgsConfig['options']
  >;
  return parseArgs({ args: argv, options: allOptions, allowPositionals: true, strict: false }).positionals[0];
}

async function run(argv: string[], out: Output): Promise<ExitCode> {
  const first = firstPositional(argv);
  const spec = first === undefined ? undefined : findCommand(first);
  if (first !== undefined && spec === undefined) throw new UsageError(`unknown command '${first}'`);

  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: { ...commonOptions, ...spec?.options },
      allowPositionals: true,
      strict: true,
    });
  } catch (thrown) {
    throw new UsageError(coerceError(thrown).message);
  }
  const { values, positionals } = parsed;

  if (values.version === true) {
    out.print(packageVersion());
    return ExitCode.ok;
  }
  if (spec === undefined || values.help === true) {
    out.print(spec === undefined ? helpText() : commandHelp(spec));
    return spec === undefined && values.help !== true ? ExitCode.usage : ExitCode.ok;
  }
  const handler = handlers[spec.name];
  if (spec.pendingIssue !== undefined || handler === undefined) {
    out.error(`trigsync ${spec.name}: not built yet (issue #${spec.pendingIssue ?? '?'})`);
    return ExitCode.usage;
  }
  const context: CommandContext = {
    args: positionals.slice(1),
    options: values,
    configFile: typeof values.config === 'string' ? values.config : undefined,
    env: process.env,
    out,
  };
  return handler(context);
}
