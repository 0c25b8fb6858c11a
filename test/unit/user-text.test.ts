// What users read names no issue of ours: they cannot open our tracker. The README, the docs, the
// benchmarks' README, the CHANGELOG and every command's help are read for "#12" and "issue 12".
import { readFileSync, readdirSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { commands } from '../../src/cli/commands.js';
import { commandHelp, overviewHelp } from '../../src/cli/help.js';

const issueNumber = /#\d+\b|\bissues? \d+\b/i;

const documents = [
  'README.md',
  'CHANGELOG.md',
  'bench/README.md',
  ...readdirSync('docs')
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

/** The lines of `text` that name an issue, with their numbers. */
function issueLines(text: string): string[] {
  return text
    .split('\n')
    .map((line, i) => `${i + 1}: ${line}`)
    .filter((line) => issueNumber.test(line.slice(line.indexOf(':') + 1)));
}

describe('text users read', () => {
  it.each(documents)('%s names no issue by number', (file) => {
    expect(issueLines(readFileSync(file, 'utf8'))).toEqual([]);
  });

  it("every command's help and the overview name no issue by number", () => {
    for (const help of [overviewHelp(), ...commands.map((spec) => commandHelp(spec))]) {
      expect(issueLines(help)).toEqual([]);
    }
  });

  it('finds an issue number where there is one', () => {
    expect(issueLines('fixed in #8\nsee issue 20\nno number here\nissues 3')).toEqual([
      '1: fixed in #8',
      '2: see issue 20',
      '4: issues 3',
    ]);
  });
});
