// pg_snapshot values in JavaScript (src/changelog/snapshot.ts): which transactions a snapshot sees, with xid8s
// past 2^53 compared exactly. No database.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { parseSnapshot, seesAllOf, visibleIn, type Snapshot } from '../../src/changelog/snapshot.js';

/** pg_snapshot's text: xip ascending, every one in [xmin, xmax). */
function snapshotText(s: Snapshot): string {
  return `${s.xmin}:${s.xmax}:${[...s.xip].sort((a, b) => (a < b ? -1 : 1)).join(',')}`;
}

/** A snapshot whose xmin is at least `least`: a few xids wide, anywhere in xid8's range. */
function snapshots(least: fc.Arbitrary<bigint>): fc.Arbitrary<Snapshot> {
  return fc.tuple(least, fc.nat(12), fc.uniqueArray(fc.nat(11))).map(([xmin, width, running]) => ({
    xmin,
    xmax: xmin + BigInt(width),
    xip: new Set(running.filter((r) => r < width).map((r) => xmin + BigInt(r))),
  }));
}
const xids = fc.bigInt({ min: 3n, max: 2n ** 64n - 100n });

// 2^53 + 1: the first integer a Number cannot hold, which it would read as 2^53.
const past53 = 2n ** 53n + 1n;

describe('parseSnapshot', () => {
  it('reads xmin, xmax and the transactions in progress', () => {
    expect(parseSnapshot('100:105:100,102')).toEqual({ xmin: 100n, xmax: 105n, xip: new Set([100n, 102n]) });
    expect(parseSnapshot('100:100:')).toEqual({ xmin: 100n, xmax: 100n, xip: new Set() });
    expect(parseSnapshot('18446744073709551610:18446744073709551615:18446744073709551612')).toEqual({
      xmin: 18446744073709551610n,
      xmax: 18446744073709551615n,
      xip: new Set([18446744073709551612n]),
    });
  });

  it('reads back any snapshot as PostgreSQL writes it', () => {
    fc.assert(
      fc.property(snapshots(xids), (s) => {
        expect(parseSnapshot(snapshotText(s))).toEqual(s);
      }),
    );
  });

  it('refuses text that is not a snapshot', () => {
    expect(() => parseSnapshot('')).toThrow(/not a pg_snapshot/);
    expect(() => parseSnapshot('100')).toThrow(/not a pg_snapshot/);
    expect(() => parseSnapshot('100:105')).toThrow(/not a pg_snapshot/);
    for (const text of [
      'a:105:',
      '100:105:101,x',
      '100:1.5:',
      // What BigInt() alone took: an empty number as 0, hex, spaces, a fourth part, an xip out of range.
      ':105:',
      '100::',
      '0x64:105:',
      ' 100:105:',
      '100:105:101:',
      '100:105:101,',
      '105:100:',
      '100:105:99',
      '100:105:105',
    ])
      expect(() => parseSnapshot(text), text).toThrow(/not a pg_snapshot/);
  });
});

describe('visibleIn', () => {
  const s = parseSnapshot('100:105:100,102');

  it('sees what committed before the snapshot, and nothing in progress or after it', () => {
    expect(visibleIn('99', s)).toBe(true);
    expect(visibleIn('100', s)).toBe(false);
    expect(visibleIn('101', s)).toBe(true);
    expect(visibleIn('102', s)).toBe(false);
    expect(visibleIn('104', s)).toBe(true);
    expect(visibleIn('105', s)).toBe(false);
    expect(visibleIn('106', s)).toBe(false);
  });

  it('tells apart xids that a Number would take as one', () => {
    const high = parseSnapshot(`${past53 - 5n}:${past53}:`);
    expect(visibleIn(`${past53 - 1n}`, high)).toBe(true);
    expect(visibleIn(`${past53}`, high)).toBe(false);
    const running = parseSnapshot(`${past53 - 5n}:${past53 + 5n}:${past53}`);
    expect(visibleIn(`${past53 - 1n}`, running)).toBe(true);
    expect(visibleIn(`${past53}`, running)).toBe(false);
  });

  it('is pg_visible_in_snapshot for any snapshot and xid', () => {
    fc.assert(
      fc.property(
        snapshots(xids).chain((s) => fc.tuple(fc.constant(s), fc.bigInt(s.xmin - 3n, s.xmax + 3n))),
        ([s, xid]) => {
          // PostgreSQL: below xmin, seen; at or past xmax, not; in between, seen unless in progress.
          const seen = xid < s.xmin ? true : xid >= s.xmax ? false : !s.xip.has(xid);
          expect(visibleIn(xid.toString(), parseSnapshot(snapshotText(s)))).toBe(seen);
        },
      ),
    );
  });
});

describe('seesAllOf', () => {
  it('holds when the later snapshot lists none of what the earlier sees as running, nor is taken before it', () => {
    expect(seesAllOf(parseSnapshot('10:20:'), parseSnapshot('5:10:7'))).toBe(true);
    expect(seesAllOf(parseSnapshot('5:10:7'), parseSnapshot('5:10:7'))).toBe(true);
    // A long transaction (5) holds the later snapshot's xmin back: it still sees all the earlier sees.
    expect(seesAllOf(parseSnapshot('5:30:5,7,25'), parseSnapshot('5:10:5,7'))).toBe(true);
    // 9 is seen by the earlier snapshot and still running in the later one.
    expect(seesAllOf(parseSnapshot('9:20:9'), parseSnapshot('5:10:7'))).toBe(false);
    expect(seesAllOf(parseSnapshot('5:20:5,9'), parseSnapshot('5:10:5'))).toBe(false);
    // The later one was taken before 8 and 9 began, which the earlier sees.
    expect(seesAllOf(parseSnapshot('5:8:5'), parseSnapshot('5:10:5'))).toBe(false);
    // ...and before 8 and 9 only, which the earlier lists as running.
    expect(seesAllOf(parseSnapshot('5:8:5'), parseSnapshot('5:10:5,8,9'))).toBe(true);
    expect(seesAllOf(parseSnapshot(`${past53}:${past53}:`), parseSnapshot(`10:${past53 - 1n}:`))).toBe(true);
    expect(seesAllOf(parseSnapshot(`${past53 - 1n}:${past53}:`), parseSnapshot(`10:${past53}:`))).toBe(true);
    expect(seesAllOf(parseSnapshot(`10:${past53}:${past53 - 1n}`), parseSnapshot(`10:${past53}:`))).toBe(
      false,
    );
  });

  it('means that the later snapshot sees every xid the earlier one sees', () => {
    const pairs = snapshots(xids).chain((earlier) =>
      fc.tuple(
        fc.constant(earlier),
        snapshots(fc.bigInt(earlier.xmin, earlier.xmax + 4n)),
        fc.bigInt(earlier.xmin - 3n, earlier.xmax + 3n),
      ),
    );
    fc.assert(
      fc.property(pairs, ([earlier, later, xid]) => {
        fc.pre(seesAllOf(later, earlier));
        if (visibleIn(xid.toString(), earlier)) expect(visibleIn(xid.toString(), later)).toBe(true);
      }),
    );
  });

  it('holds whenever the later snapshot sees every xid the earlier one sees', () => {
    const pairs = snapshots(xids).chain((earlier) =>
      fc.tuple(fc.constant(earlier), snapshots(fc.bigInt(earlier.xmin - 3n, earlier.xmax + 4n))),
    );
    fc.assert(
      fc.property(pairs, ([earlier, later]) => {
        let all = true;
        for (let xid = earlier.xmin - 3n; xid <= earlier.xmax + 3n; xid++) {
          if (visibleIn(xid.toString(), earlier) && !visibleIn(xid.toString(), later)) all = false;
        }
        expect(seesAllOf(later, earlier)).toBe(all);
      }),
    );
  });
});
