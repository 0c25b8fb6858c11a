// The help and the argument checks of the trigsync command, as pure functions: the edit distance and the
// suggestions it ranks, the help rendered from each command's description, and the reading of a command
// line against it. No database; test/cli/help.test.ts runs the same through the real binary.
import { readFileSync } from 'node:fs';

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { commands, helpCommand, type CommandSpec } from '../../src/cli/commands.js';
import {
  commandHelp,
  didYouMean,
  editDistance,
  overviewHelp,
  suggest,
  usageLine,
} from '../../src/cli/help.js';
import { commandOf, readArguments, type CommandLine } from '../../src/cli/main.js';
import { UsageError } from '../../src/failure/errors.js';

/** A command line as main reads it, or the UsageError it raises. */
function read(...argv: string[]): CommandLine | UsageError {
  try {
    const { command, rest } = commandOf(argv);
    if (command === undefined) throw new Error('no command word');
    return readArguments(command, rest);
  } catch (thrown) {
    if (thrown instanceof UsageError) return thrown;
    throw thrown;
  }
}

function usageError(...argv: string[]): string {
  const result = read(...argv);
  if (!(result instanceof UsageError)) throw new Error(`${argv.join(' ')} was read as ${result.kind}`);
  return result.message;
}

/** The anchors GitHub gives a Markdown file's headings. */
function anchorsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8').replace(/^```[\s\S]*?^```/gm, '');
  return [...text.matchAll(/^#{1,6} (.+)$/gm)].map(([, heading]) =>
    heading!
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N} _-]/gu, '')
      .replace(/ /g, '-'),
  );
}

describe('editDistance', () => {
  it('counts inserts, deletes, substitutions and swapped neighbours as one edit each', () => {
    expect(editDistance('stats', 'status')).toBe(1);
    expect(editDistance('jsn', 'json')).toBe(1);
    expect(editDistance('stauts', 'status')).toBe(1);
    expect(editDistance('verfiy', 'verify')).toBe(1);
    expect(editDistance('chekc', 'check')).toBe(1);
    expect(editDistance('', 'sync')).toBe(4);
    expect(editDistance('kitten', 'sitting')).toBe(3);
  });

  it('is zero exactly for equal words, symmetric, and at most the longer length', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 12 }), fc.string({ maxLength: 12 }), (a, b) => {
        const d = editDistance(a, b);
        expect(d === 0).toBe(a === b);
        expect(editDistance(b, a)).toBe(d);
        expect(d).toBeLessThanOrEqual(Math.max(a.length, b.length));
        expect(d).toBeGreaterThanOrEqual(Math.abs(a.length - b.length));
      }),
    );
  });
});

describe('suggest', () => {
  const names = [...commands, helpCommand].map((c) => c.name);

  it('finds the command a typo or a beginning meant, and nothing for a word far from all', () => {
    expect(suggest('stats', names)).toEqual(['status']);
    expect(suggest('STATUS', names)).toEqual(['status']);
    expect(suggest('ver', names)).toEqual(['verify']);
    expect(suggest('hlep', names)).toEqual(['help']);
    expect(suggest('re', names)).toEqual(['retry', 'repair', 'resume']);
    expect(suggest('stauts', names)).toEqual(['status']);
    expect(suggest('frobnicate', names)).toEqual([]);
    expect(suggest('', names)).toEqual([]);
  });

  it('offers the closest only, shortest first, at most three', () => {
    expect(suggest('jsn', ['yes', 'json', 'js'])).toEqual(['js', 'json']);
    expect(suggest('ab', ['a', 'b', 'abc', 'abd', 'ab'])).toEqual(['ab']);
    expect(suggest('abcd', ['abce', 'abcf', 'abcg', 'abch', 'abxy'])).toEqual(['abce', 'abcf', 'abcg']);
  });

  it('is phrased as a question, or not at all', () => {
    const quoted = (w: string): string => `'${w}'`;
    expect(didYouMean(['status'], quoted)).toBe("; did you mean 'status'?");
    expect(didYouMean(['repair', 'retry'], quoted)).toBe("; did you mean 'repair' or 'retry'?");
    expect(didYouMean([], quoted)).toBe('');
  });
});

describe('help', () => {
  it('of every command: usage, each option with its default, an example, and a docs section that exists', () => {
    for (const spec of commands) {
      const help = commandHelp(spec);
      expect(help).toContain(`Usage: trigsync ${usageLine(spec)}`);
      for (const [name, option] of Object.entries(spec.options)) {
        expect(help, `${spec.name} --${name}`).toMatch(
          new RegExp(`^ .*--${name}\\b.*${option.description.slice(0, 20)}`, 'm'),
        );
        if (option.seconds) expect(help).toContain(`default: ${option.seconds.default} s`);
      }
      for (const a of spec.arguments) expect(help).toMatch(new RegExp(`^  ${a.name} `, 'm'));
      expect(help).toMatch(spec.withoutConfig ? /^(?![\s\S]*--config)/ : /-c, --config PATH/);
      expect(spec.examples.length, spec.name).toBeGreaterThan(0);
      for (const e of spec.examples) expect(help).toContain(`trigsync ${e.run}`);
      const [file, anchor] = spec.docs.split('#');
      expect(anchorsOf(file!), spec.docs).toContain(anchor);
      expect(help).toContain(`Docs: ${spec.docs}`);
      // Each option, default included, on a line of its own, whole in a terminal of 100 columns.
      expect(help.split('\n').filter((line) => line.length > 100 || /^ {8}/.test(line))).toEqual([]);
    }
  });

  it('of verify, as a new user reads it', () => {
    const help = commandHelp(commands.find((c) => c.name === 'verify')!);
    expect(help.split('\n').slice(0, 3)).toEqual([
      'Usage: trigsync verify [TARGET] [--table T] [--json] [--wait SECONDS] [--config PATH]',
      '',
      'Compare source and target tables; list differing keys.',
    ]);
    expect(help).toMatch(/^ {2}TARGET +the target to compare \(default: every target\)$/m);
    expect(help).toMatch(/^ {6}--wait SECONDS +.*\(default: 30 s\)$/m);
    expect(help).toMatch(/^ {2}-h, --help +/m);
    expect(help.split('\n').every((line) => line.length <= 100)).toBe(true);
  });

  it('usage marks optional arguments and options, repeatable ones, and a confirmation the command insists on', () => {
    const usage = (name: string): string => usageLine(commands.find((c) => c.name === name)!);
    expect(usage('skip')).toBe('skip TARGET CHANGE_ID --yes [--config PATH]');
    expect(usage('sync')).toBe('sync TARGET [--table T ...] [--config PATH]');
    expect(usage('demo')).toBe('demo [--duration SECONDS]');
  });

  it('the overview lists every command with its arguments, and help itself', () => {
    const overview = overviewHelp();
    for (const spec of [...commands, helpCommand])
      expect(overview).toMatch(new RegExp(`^  ${spec.name}\\b`, 'm'));
    expect(overview).toMatch(/^ {2}skip TARGET CHANGE_ID +drop one failed change/m);
    expect(overview).toContain("Run 'trigsync help COMMAND'");
  });
});

describe('reading a command line', () => {
  it('reads every example of the help as the command it shows', () => {
    for (const spec of [...commands, helpCommand]) {
      for (const e of spec.examples) {
        const line = read(...e.run.split(' '));
        expect(line, e.run).toMatchObject({ kind: 'run', command: { name: spec.name } });
      }
    }
  });

  it('takes options before or after the command word, and --help or -h anywhere', () => {
    expect(read('--config', 'x.yaml', 'verify', 'reporting', '--wait=5')).toMatchObject({
      kind: 'run',
      args: ['reporting'],
      options: { config: 'x.yaml', wait: '5' },
    });
    const verify: Partial<CommandSpec> = { name: 'verify' };
    expect(read('verify', '--jsn', '-h')).toMatchObject({ kind: 'help', command: verify });
    expect(read('help', 'verify')).toMatchObject({
      kind: 'run',
      command: { name: 'help' },
      args: ['verify'],
    });
  });

  it('says what is wrong in its own words, never in the parser’s', () => {
    expect(usageError('stats')).toBe("unknown command 'stats'; did you mean 'status'?");
    expect(usageError('status', '--jsn')).toBe('status has no option --jsn; did you mean --json?');
    expect(usageError('status', '--table', 'x')).toBe(
      'status has no option --table: --table is an option of uninstall, sync, verify, repair',
    );
    expect(usageError('verify', '-wait', '5')).toBe('verify has no option -wait; did you mean --wait?');
    expect(usageError('verify', '--wait')).toBe('--wait needs a value: --wait SECONDS');
    expect(usageError('verify', '--wait', '--json')).toBe('--wait needs a value: --wait SECONDS');
    expect(usageError('status', '--json=yes')).toBe("--json is a flag and takes no value, not 'yes'");
    expect(usageError('status', '--json', 'yes')).toBe(
      "status takes no arguments, not 'yes' (--json is a flag and takes no value)",
    );
    expect(usageError('verify', 'a', 'b')).toBe("verify takes at most 1 argument ([TARGET]), not 'b'");
    expect(usageError('retry', 'a', 'b')).toBe("retry takes 1 argument (TARGET), not 'b'");
    expect(usageError('verify', '--table', 'a', '--table', 'b')).toBe(
      '--table is given twice; verify takes one',
    );
    expect(usageError('retry')).toBe(
      'retry needs TARGET (the parked target)\nUsage: trigsync retry TARGET [--config PATH]',
    );
    expect(usageError('skip', 'reporting')).toMatch(/^skip needs CHANGE_ID \(the change to drop/);
    expect(usageError('skip')).toMatch(/^skip needs TARGET \(the parked target\) and CHANGE_ID/);
    expect(usageError('demo', '--config', 'x')).toBe('demo has no option --config');
  });

  it('takes a value that begins with a dash when it is written with =', () => {
    expect(read('verify', '--table=-odd')).toMatchObject({ kind: 'run', options: { table: '-odd' } });
  });
});
