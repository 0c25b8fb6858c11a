// Replicated sequences without a database: the value a target sequence is set to (src/apply/sequences.ts),
// the lag status shows (src/changelog/sequence-state.ts), its line in `status`, and the `sequences` config.
import { describe, expect, it } from 'vitest';

import { keepResidue } from '../../src/apply/sequences.js';
import { checkProblems, statusTable } from '../../src/cli/commands/status.js';
import { configFromObject } from '../../src/config/load.js';
import { ConfigError } from '../../src/failure/errors.js';
import type { Status } from '../../src/lib/status-report.js';
import { sequenceLag } from '../../src/changelog/sequence-state.js';

describe('keepResidue', () => {
  it('takes the first value at or above the source that keeps the residue', () => {
    expect(keepResidue(1234n, 3n, 10n)).toBe(1243n);
    expect(keepResidue(1243n, 3n, 10n)).toBe(1243n);
    expect(keepResidue(1244n, 1253n, 10n)).toBe(1253n);
    expect(keepResidue(57n, 1n, 1n)).toBe(57n);
    // A base above the source, and negative values.
    expect(keepResidue(-15n, 7n, 4n)).toBe(-13n);
  });

  it('counts down for a descending sequence', () => {
    expect(keepResidue(-1234n, -3n, -10n)).toBe(-1243n);
    expect(keepResidue(100n, 95n, -10n)).toBe(95n);
    expect(keepResidue(-57n, -1n, -1n)).toBe(-57n);
  });

  it('is the nearest value on the far side with the residue, for many inputs', () => {
    // A fixed pseudo-random walk (xorshift): the same cases every run.
    let state = 0x2545f4914f6cdd1dn;
    const next = (): bigint => {
      state ^= (state << 13n) & 0xffffffffffffffffn;
      state ^= state >> 7n;
      state ^= (state << 17n) & 0xffffffffffffffffn;
      return state;
    };
    for (let i = 0; i < 2000; i++) {
      const source = (next() % 2n ** 62n) * (next() % 2n === 0n ? 1n : -1n);
      const base = (next() % 2n ** 62n) * (next() % 2n === 0n ? 1n : -1n);
      const size = 1n + (next() % 1000n);
      const increment = next() % 2n === 0n ? size : -size;
      const value = keepResidue(source, base, increment);
      expect((value - base) % size).toBe(0n);
      const distance = increment < 0n ? source - value : value - source;
      expect(distance >= 0n && distance < size, `${source} ${base} ${increment} -> ${value}`).toBe(true);
    }
  });
});

describe('sequenceLag', () => {
  it('is how far the target trails, in values', () => {
    expect(sequenceLag(100n, 90n, 1n)).toEqual({ lag: 10, behind: true });
    expect(sequenceLag(100n, 103n, 10n)).toEqual({ lag: 0, behind: false });
    expect(sequenceLag(100n, 100n, 1n)).toEqual({ lag: 0, behind: false });
    expect(sequenceLag(-100n, -90n, -1n)).toEqual({ lag: 10, behind: true });
    expect(sequenceLag(-100n, -110n, -1n)).toEqual({ lag: 0, behind: false });
  });

  it('counts a source that handed out nothing as kept, and an unused target as behind', () => {
    expect(sequenceLag(null, null, 1n)).toEqual({ lag: 0, behind: false });
    expect(sequenceLag(5n, null, 1n)).toEqual({ lag: 5, behind: true });
  });
});

describe('status', () => {
  const status = (sequences: Status['targets'][number]['sequences']): Status => ({
    targets: [
      {
        name: 'one',
        group: 'default',
        state: 'live',
        backlog: 0,
        lagSeconds: 0,
        errorQueue: 0,
        lastError: null,
        parkedSince: null,
        removedSince: null,
        pausedSince: null,
        recordedAt: 'T',
        current: false,
        lastAppliedAt: null,
        configured: true,
        toCopy: [],
        sequences,
        copying: null,
      },
    ],
    log: { rows: 0 },
    notInConfig: [],
    leader: null,
    daemon: { running: false, lastSeen: null, secondsSinceSeen: null },
    group: 'default',
    groups: [
      { name: 'default', leader: null, daemon: { running: false, lastSeen: null, secondsSinceSeen: null } },
    ],
  });
  const kept = { source: 'public.a_id_seq', target: 'public.a_id_seq', problem: null };

  it('prints the copy asked of a target, and no copy advice for a table it takes', () => {
    const base = status([]);
    const target = {
      ...base.targets[0]!,
      toCopy: [
        { table: 'public.a', since: '2026-01-01T00:00:00.000Z', why: null },
        { table: 'public.b', since: '2026-01-01T00:00:00.000Z', why: null },
      ],
      copying: { tables: ['public.a'], requestedAt: 'T', table: 'public.a', rows: 1200, estimate: 5000 },
    };
    const lines = statusTable({ ...base, targets: [target] });
    expect(lines).toContain('target one: copying public.a: public.a at 1,200 rows of ~5,000');
    expect(lines.filter((l) => l.includes('may lack'))).toEqual([
      expect.stringContaining('public.b from before'),
    ]);
    const waiting = { ...target, copying: { ...target.copying, tables: [], table: null, rows: null } };
    expect(statusTable({ ...base, targets: [waiting] })).toContain(
      'target one: copy of every table asked at T, not begun yet',
    );
    expect(checkProblems({ ...base, targets: [waiting], leader: { daemon: 'd', since: 'T' } }, 60)).toEqual(
      [],
    );
  });

  it('prints a line for a sequence that is behind or not carried, none for one that is kept', () => {
    const lines = statusTable(
      status([
        { ...kept, sourceValue: '10', targetValue: '10', lag: 0, behind: false },
        {
          ...kept,
          source: 'public.b',
          target: 'x.b',
          sourceValue: '10',
          targetValue: '4',
          lag: 6,
          behind: true,
        },
        {
          ...kept,
          source: 'public.c',
          target: 'public.c',
          sourceValue: '1',
          targetValue: null,
          lag: 1,
          behind: true,
          problem: 'target sequence public.c does not exist on the target',
        },
      ]),
    );
    const about = lines.filter((l) => l.includes('sequence'));
    expect(about).toEqual([
      'target one: sequence x.b (from public.b) is behind by 6 (source 10, target 4)',
      'target one: sequence public.c (from public.c): not carried: target sequence public.c does not exist on the target',
    ]);
  });
});

describe('config: sequences', () => {
  const base = {
    source: { url: 'postgres://u:p@db/app' },
    tables: ['public.orders'],
    targets: [{ name: 'one', url: 'postgres://u:p@one/app' }],
  };
  const problems = (raw: unknown): readonly string[] => {
    try {
      configFromObject(raw, { env: {} });
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      return (error as ConfigError).problems;
    }
    throw new Error('expected a ConfigError');
  };

  it('parses names and mappings; a target without its own list takes the top-level one', () => {
    const config = configFromObject(
      {
        ...base,
        sequences: ['invoice_no', { source: 'public."Ticket No"', target: 'billing.ticket_no' }],
        targets: [...base.targets, { name: 'two', url: 'postgres://u:p@two/app', sequences: [] }],
      },
      { env: {} },
    );
    const top = [
      { source: { schema: 'public', name: 'invoice_no' } },
      { source: { schema: 'public', name: 'Ticket No' }, target: { schema: 'billing', name: 'ticket_no' } },
    ];
    expect(config.sequences).toEqual(top);
    expect(config.targets[0]?.sequences).toEqual(top);
    expect(config.targets[1]?.sequences).toEqual([]);
    expect(configFromObject(base, { env: {} }).targets[0]?.sequences).toEqual([]);
  });

  it('names the entry of every problem', () => {
    expect(
      problems({
        ...base,
        sequences: [
          'public.a',
          'a',
          42,
          { source: 'b', target: 'public.a' },
          { target: 'c' },
          { source: 'd', extra: 1 },
          'trigsync.s',
          'x."y',
        ],
      }),
    ).toEqual([
      'sequences[1]: public.a is listed twice (also sequences[0])',
      'sequences[2]: must be a sequence name such as public.invoice_no, got 42',
      'sequences[3]: public.a is already the target sequence of sequences[0]',
      'sequences[4].source: missing: the source sequence, such as public.invoice_no',
      'sequences[5].extra: unknown key',
      `sequences[6]: trigsync.s is in trigsync's own schema "trigsync"`,
      expect.stringMatching(/^sequences\[7\]: "x\.\\"y": unbalanced double quote/),
    ]);
    expect(problems({ ...base, sequences: 'public.a' })).toEqual([expect.stringMatching(/^sequences: /)]);
    expect(problems({ ...base, targets: [{ ...base.targets[0], sequences: { source: 'a' } }] })).toEqual([
      'targets[0].sequences: must be a list of sequences, got a mapping',
    ]);
  });
});
