/** The help of trigsync and of each command, and the did-you-mean of its argument errors. */
import {
  commands,
  commonOptions,
  helpCommand,
  optionsOf,
  type CommandSpec,
  type OptionSpec,
} from './commands.js';

/** Help lines wrap here, so that a terminal of 100 columns shows them whole. */
const width = 100;

export const exitCodesLine =
  'Exit codes: 0 success; 1 the command found a problem; 2 usage or configuration error; 3 failure.';

/** Where an argument error sends the user. */
export function helpHint(spec: CommandSpec | undefined): string {
  return spec === undefined || spec === helpCommand
    ? "Run 'trigsync help' for the commands."
    : `Run 'trigsync help ${spec.name}' for its options.`;
}

/**
 * Edits (insert, delete, substitute, swap two neighbours) that turn one word into the other: the
 * optimal-string-alignment distance, so that `stauts` is one edit from `status`, as a typo is.
 */
export function editDistance(from: string, to: string): number {
  // rows[i][j]: the distance between the first i characters of `from` and the first j of `to`.
  const rows = Array.from({ length: from.length + 1 }, (_, i) =>
    Array.from({ length: to.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= from.length; i++) {
    for (let j = 1; j <= to.length; j++) {
      const cost = from[i - 1] === to[j - 1] ? 0 : 1;
      let best = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && from[i - 1] === to[j - 2] && from[i - 2] === to[j - 1])
        best = Math.min(best, rows[i - 2]![j - 2]! + 1);
      rows[i]![j] = best;
    }
  }
  return rows[from.length]![to.length]!;
}

/**
 * The known words the user probably meant: the closest within a few edits (about one in three
 * characters, at least one), all those as close; failing that, those the typed word begins (`ver` for
 * `verify`). At most three.
 */
export function suggest(typed: string, known: readonly string[]): string[] {
  const word = typed.toLowerCase();
  if (word === '') return [];
  const allowed = Math.max(1, Math.floor(word.length / 3));
  const close = known
    .map((name) => ({ name, distance: editDistance(word, name.toLowerCase()) }))
    .filter((c) => c.distance <= allowed);
  const best = Math.min(...close.map((c) => c.distance));
  const found =
    close.length > 0
      ? close.filter((c) => c.distance === best).map((c) => c.name)
      : known.filter((name) => word.length >= 2 && name.toLowerCase().startsWith(word));
  return found.sort((a, b) => a.length - b.length || a.localeCompare(b)).slice(0, 3);
}

/** `; did you mean 'status'?`, or nothing when no word is close. */
export function didYouMean(suggestions: readonly string[], quote: (word: string) => string): string {
  if (suggestions.length === 0) return '';
  const quoted = suggestions.map(quote);
  const list = quoted.length === 1 ? quoted[0]! : `${quoted.slice(0, -1).join(', ')} or ${quoted.at(-1)!}`;
  return `; did you mean ${list}?`;
}

/** `TARGET CHANGE_ID`, `[TARGET]`: a command's arguments as usage shows them. */
export function argumentsUsage(spec: CommandSpec): string {
  return spec.arguments.map((a) => (a.required ? a.name : `[${a.name}]`)).join(' ');
}

function optionUsage(name: string, option: OptionSpec): string {
  const value = option.type === 'string' ? ` ${option.value ?? 'VALUE'}${option.multiple ? ' ...' : ''}` : '';
  return option.confirms === true ? `--${name}${value}` : `[--${name}${value}]`;
}

/** `verify [TARGET] [--table T] [--json] [--wait SECONDS] [--config PATH]` */
export function usageLine(spec: CommandSpec): string {
  const { help: _help, version: _version, ...shown } = optionsOf(spec);
  return [spec.name, argumentsUsage(spec), ...Object.entries(shown).map(([n, o]) => optionUsage(n, o))]
    .filter((part) => part !== '')
    .join(' ');
}

/** What an option does, with its default where it has one. */
export function optionDescription(option: OptionSpec): string {
  const absent = option.seconds !== undefined ? `${option.seconds.default} s` : option.absent;
  const { whole, minimum } = option.seconds ?? {};
  const accepts = [whole === true ? 'whole seconds' : '', minimum ? `at least ${minimum}` : '']
    .filter((a) => a !== '')
    .join(', ');
  const notes = [accepts, absent === undefined ? '' : `default: ${absent}`].filter((n) => n !== '');
  const description = option.multiple === true ? `${option.description}; again for more` : option.description;
  return notes.length === 0 ? description : `${description} (${notes.join('; ')})`;
}

/** `name  description` rows, the descriptions aligned and wrapped under themselves. */
function table(rows: readonly (readonly [string, string])[]): string[] {
  const left = Math.max(...rows.map(([name]) => name.length));
  const room = Math.max(30, width - left - 4);
  return rows.flatMap(([name, text]) => {
    const lines = wrap(text, room);
    return lines.map((line, i) => `  ${(i === 0 ? name : '').padEnd(left)}  ${line}`.trimEnd());
  });
}

function wrap(text: string, room: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > room) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  return [...lines, line];
}

function optionRows(options: Readonly<Record<string, OptionSpec>>): [string, string][] {
  return Object.entries(options).map(([name, option]) => {
    const value = option.type === 'string' ? ` ${option.value ?? 'VALUE'}` : '';
    const flag = `${option.short === undefined ? '    ' : `-${option.short}, `}--${name}${value}`;
    return [flag, optionDescription(option)];
  });
}

/** The full help of one command: usage, arguments, options with defaults, examples, docs. */
export function commandHelp(spec: CommandSpec): string {
  const { version: _version, ...options } = optionsOf(spec);
  const sentence = `${spec.summary.charAt(0).toUpperCase()}${spec.summary.slice(1)}.`;
  const lines = [`Usage: trigsync ${usageLine(spec)}`, '', sentence];
  if (spec.arguments.length > 0) {
    lines.push('', 'Arguments:');
    lines.push(
      ...table(
        spec.arguments.map((a) => [
          a.name,
          a.absent === undefined ? a.description : `${a.description} (default: ${a.absent})`,
        ]),
      ),
    );
  }
  lines.push('', 'Options:', ...table(optionRows(options)));
  const runs = spec.examples.map((e) => `trigsync ${e.run}`);
  const runWidth = Math.max(...runs.map((r) => r.length));
  lines.push('', 'Examples:', ...spec.examples.map((e, i) => `  ${runs[i]!.padEnd(runWidth)}  # ${e.does}`));
  lines.push('', `Docs: ${spec.docs}`);
  return lines.join('\n');
}

/** `trigsync help`: every command in a line, the common options, and where to read on. */
export function overviewHelp(): string {
  const listed = [...commands, helpCommand];
  return [
    'trigsync: trigger-based replication for PostgreSQL',
    '',
    'Usage: trigsync COMMAND [ARGUMENTS] [OPTIONS]',
    '',
    'Commands:',
    ...table(listed.map((c) => [`${c.name} ${argumentsUsage(c)}`.trimEnd(), c.summary])),
    '',
    'Options:',
    ...table(optionRows(commonOptions)),
    '',
    "Run 'trigsync help COMMAND' or 'trigsync COMMAND --help' for its options, defaults and examples.",
    'Docs: README.md, docs/configuration.md, docs/operations.md',
    exitCodesLine,
  ].join('\n');
}
