/**
 * `trigsync <command> [options]`: reads the command line against the command's description
 * (commands.ts), in trigsync's own words when it does not fit, and dispatches to the command.
 * Returns the exit code instead of exiting, so tests can call it in-process.
 */
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';

import { ConfigError, UsageError, coerceError } from '../failure/errors.js';
import type { CommandContext, OptionValue } from './command-context.js';
import {
  commands,
  findCommand,
  helpCommand,
  optionsOf,
  type CommandSpec,
  type OptionSpec,
} from './commands.js';
import { ExitCode } from './exit-codes.js';
import { handlers } from './handlers.js';
import {
  argumentsUsage,
  commandHelp,
  didYouMean,
  helpHint,
  overviewHelp,
  suggest,
  usageLine,
} from './help.js';
import type { Output } from './output.js';
import { processOutput } from './output.js';

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

/** What a command line asks for, once read and found to fit. */
export type CommandLine =
  | { kind: 'version' }
  /** `asked`: by --help or `help`; without a command at all, the overview is a usage error. */
  | { kind: 'overview'; asked: boolean }
  | { kind: 'help'; command: CommandSpec }
  | { kind: 'run'; command: CommandSpec; args: string[]; options: Record<string, OptionValue> };

/** The line before any command word: only the common options. */
const noCommand: CommandSpec = {
  name: 'trigsync',
  summary: '',
  arguments: [],
  options: {},
  examples: [],
  docs: '',
};

type Token = NonNullable<ReturnType<typeof parseArgs>['tokens']>[number];

function parse(args: string[], options: Record<string, OptionSpec>): { values: object; tokens: Token[] } {
  const form: NonNullable<ParseArgsConfig['options']> = {};
  for (const [name, o] of Object.entries(options)) {
    form[name] = {
      type: o.type,
      ...(o.short === undefined ? {} : { short: o.short }),
      multiple: o.multiple === true,
    };
  }
  // Not strict: every token comes back, and the checks below say what is wrong in trigsync's words.
  const { values, tokens } = parseArgs({
    args,
    options: form,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  return { values, tokens };
}

function unknownCommand(word: string): UsageError {
  const names = [...commands, helpCommand].map((c) => c.name);
  return new UsageError(`unknown command '${word}'${didYouMean(suggest(word, names), (n) => `'${n}'`)}`);
}

/** The command a line names, wherever its word stands among the options, and the rest of the line. */
export function commandOf(argv: string[]): { command: CommandSpec | undefined; rest: string[] } {
  // Every option any command takes, so that an option's value is not taken for the command word.
  const every = Object.assign({}, ...[noCommand, ...commands].map(optionsOf)) as Record<string, OptionSpec>;
  const word = parse(argv, every).tokens.find((t) => t.kind === 'positional');
  if (word === undefined) return { command: undefined, rest: argv };
  const rest = argv.filter((_, i) => i !== word.index);
  const command = word.value === helpCommand.name ? helpCommand : findCommand(word.value);
  if (command === undefined) throw unknownCommand(word.value);
  return { command, rest };
}

function unknownOption(spec: CommandSpec, token: Token & { kind: 'option' }, typed: string): UsageError {
  // `-wait` is read as -w -a -i -t: name what was typed, and find the long option it was meant to be.
  const shown = token.rawName.startsWith('--') ? token.rawName : typed.split('=')[0]!;
  const word = shown.replace(/^-+/, '');
  const subject = spec === noCommand ? `unknown option ${shown}` : `${spec.name} has no option ${shown}`;
  const owners = commands.filter((c) => c !== spec && Object.hasOwn(c.options, word)).map((c) => c.name);
  if (owners.length > 0 && !Object.hasOwn(optionsOf(spec), word))
    return new UsageError(`${subject}: --${word} is an option of ${owners.join(', ')}`);
  const known = Object.keys(optionsOf(spec));
  return new UsageError(`${subject}${didYouMean(suggest(word, known), (n) => `--${n}`)}`);
}

function tooMany(spec: CommandSpec, extra: string[], after: Token | undefined): UsageError {
  const count = spec.arguments.length;
  const takes =
    count === 0
      ? 'takes no arguments'
      : `takes ${spec.arguments.every((a) => a.required) ? '' : 'at most '}${count} argument${count === 1 ? '' : 's'} (${argumentsUsage(spec)})`;
  const flag =
    after?.kind === 'option' && after.value === undefined && optionsOf(spec)[after.name]?.type === 'boolean'
      ? ` (${after.rawName} is a flag and takes no value)`
      : '';
  return new UsageError(`${spec.name} ${takes}, not ${extra.map((a) => `'${a}'`).join(' ')}${flag}`);
}

/** The rest of a command's line, checked against its description. */
export function readArguments(spec: CommandSpec, rest: string[]): CommandLine {
  const options = optionsOf(spec);
  const { values, tokens } = parse(rest, options);
  const asked = (name: string): boolean => tokens.some((t) => t.kind === 'option' && t.name === name);
  if (asked('version')) return { kind: 'version' };
  if (asked('help'))
    return spec === noCommand ? { kind: 'overview', asked: true } : { kind: 'help', command: spec };

  const seen = new Set<string>();
  for (const token of tokens) {
    if (token.kind !== 'option') continue;
    const option = options[token.name];
    if (option === undefined) throw unknownOption(spec, token, rest[token.index]!);
    if (option.type === 'boolean' && token.value !== undefined)
      throw new UsageError(`${token.rawName} is a flag and takes no value, not '${token.value}'`);
    // `--wait --json`: the parser takes --json for the value; a value that starts with '-' goes as --wait=-1.
    if (
      option.type === 'string' &&
      (token.value === undefined || (!token.inlineValue && /^-./.test(token.value)))
    )
      throw new UsageError(`${token.rawName} needs a value: ${token.rawName} ${option.value ?? 'VALUE'}`);
    if (seen.has(token.name) && option.multiple !== true)
      throw new UsageError(`--${token.name} is given twice; ${spec.name} takes one`);
    seen.add(token.name);
  }

  const positionals = tokens.filter((t) => t.kind === 'positional');
  const args = positionals.map((t) => t.value);
  const missing = spec.arguments.slice(args.length).filter((a) => a.required);
  if (missing.length > 0) {
    const what = missing.map((a) => `${a.name} (${a.description})`).join(' and ');
    throw new UsageError(`${spec.name} needs ${what}\nUsage: trigsync ${usageLine(spec)}`);
  }
  if (args.length > spec.arguments.length) {
    const first = positionals[spec.arguments.length]!;
    throw tooMany(spec, args.slice(spec.arguments.length), tokens[tokens.indexOf(first) - 1]);
  }
  if (spec === noCommand) return { kind: 'overview', asked: false };
  return { kind: 'run', command: spec, args, options: values as Record<string, OptionValue> };
}

export async function main(argv: string[], out: Output = processOutput): Promise<ExitCode> {
  let command: CommandSpec | undefined;
  try {
    const found = commandOf(argv);
    command = found.command;
    return await perform(readArguments(command ?? noCommand, found.rest), out);
  } catch (thrown) {
    if (thrown instanceof UsageError) {
      out.error(`trigsync: ${thrown.message}\n${helpHint(command)}`);
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

async function perform(line: CommandLine, out: Output): Promise<ExitCode> {
  switch (line.kind) {
    case 'version':
      out.print(packageVersion());
      return ExitCode.ok;
    case 'overview':
      out.print(overviewHelp());
      return line.asked ? ExitCode.ok : ExitCode.usage;
    case 'help':
      out.print(commandHelp(line.command));
      return ExitCode.ok;
    case 'run':
      break;
  }
  if (line.command === helpCommand) {
    const topic = line.args[0];
    if (topic === undefined) return perform({ kind: 'overview', asked: true }, out);
    const explained = topic === helpCommand.name ? helpCommand : findCommand(topic);
    if (explained === undefined) throw unknownCommand(topic);
    return perform({ kind: 'help', command: explained }, out);
  }
  const handler = handlers[line.command.name];
  if (handler === undefined) {
    out.error(`trigsync ${line.command.name}: not built yet`);
    return ExitCode.usage;
  }
  const { config } = line.options;
  const context: CommandContext = {
    command: line.command,
    args: line.args,
    options: line.options,
    configFile: typeof config === 'string' ? config : undefined,
    env: process.env,
    out,
  };
  return handler(context);
}
