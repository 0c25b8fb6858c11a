// The applied-by-position rule in TypeScript (src/changelog/applied-by.ts), the invariant behind "no change is
// lost": which changes a position has applied. No database; test/replication/applied-by.test.ts holds
// the SQL to it.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { appliedBy, type AppliedPosition } from '../../src/changelog/applied-by.js';
import { parseSnapshot, seesAllOf, visibleIn } from '../../src/changelog/snapshot.js';
import { closeWindow, openWindow, positionAt, type Position, type Tick } from '../../src/changelog/window.js';
import { predicateCase } from './position-predicate-arbitraries.js';

/** A tick of which the rule reads the snapshot alone. */
function tick(snapshot: string): Tick {
  return { snapshot, idBound: 0, nextXid: '0', idCeiling: 0 };
}

/** The position of a generated case as the daemon holds it. */
function asPosition(p: AppliedPosition): Position {
  const start = positionAt(tick(p.from.snapshot));
  return p.to === undefined ? start : { ...openWindow(start, tick(p.to.snapshot)), appliedId: p.appliedId };
}

describe('appliedBy, the rule in TypeScript', () => {
  // `from` sees 10 and below but 12 and 14; `to` sees up to 19 but 16; the window is applied up to id 5.
  const from = '12:15:12,14';
  const to = '16:20:16';
  const open = { from: { snapshot: from }, to: { snapshot: to }, appliedId: 5 };
  const closed = { from: { snapshot: from }, to: undefined, appliedId: 0 };

  it.each([
    ['visible in from', '10', 99, true, true],
    ['visible in from, between xmin and xmax', '13', 99, true, true],
    ['in from’s xip list, in the window, applied', '12', 5, true, false],
    ['in from’s xip list, in the window, not yet applied', '12', 6, false, false],
    ['at from’s xmax, in the window, applied', '15', 1, true, false],
    ['above from’s xmax, in the window, not yet applied', '19', 6, false, false],
    ['in to’s xip list: after the window', '16', 1, false, false],
    ['at to’s xmax: after the window', '20', 1, false, false],
  ] as const)('%s', (_, txid, id, inOpen, inClosed) => {
    expect(appliedBy(open)({ id, txid })).toBe(inOpen);
    expect(appliedBy(closed)({ id, txid })).toBe(inClosed);
  });

  it('compares xid8 past 2^32 as numbers', () => {
    const epoch = 1n << 32n;
    const position = { from: { snapshot: `${epoch + 5n}:${epoch + 5n}:` }, to: undefined, appliedId: 0 };
    expect(appliedBy(position)({ id: 1, txid: String(epoch + 4n) })).toBe(true);
    expect(appliedBy(position)({ id: 1, txid: String(epoch + 5n) })).toBe(false);
    expect(appliedBy(position)({ id: 1, txid: '9' })).toBe(true);
  });

  it('applies what `from` sees whatever the window, and nothing that neither end sees', () => {
    fc.assert(
      fc.property(predicateCase, ({ position, change }) => {
        const inFrom = visibleIn(change.txid, parseSnapshot(position.from.snapshot));
        const inTo = position.to !== undefined && visibleIn(change.txid, parseSnapshot(position.to.snapshot));
        const applied = appliedBy(position)(change);
        if (inFrom) expect(applied).toBe(true);
        if (!inFrom && !inTo) expect(applied).toBe(false);
      }),
      { numRuns: 1000 },
    );
  });

  it('never takes a change back as the window goes on', () => {
    fc.assert(
      fc.property(predicateCase, fc.integer({ min: 1, max: 3 }), ({ position, change }, more) => {
        const further = { ...position, appliedId: position.appliedId + more };
        if (appliedBy(position)(change)) expect(appliedBy(further)(change)).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });

  it('closing a window applied through a change leaves it as applied as it was, when `to` sees all `from` saw (G1)', () => {
    fc.assert(
      fc.property(predicateCase, ({ position, change }) => {
        fc.pre(position.to !== undefined && position.appliedId >= change.id);
        fc.pre(seesAllOf(parseSnapshot(position.to.snapshot), parseSnapshot(position.from.snapshot)));
        const open = asPosition(position);
        expect(appliedBy(closeWindow(open))(change)).toBe(appliedBy(open)(change));
      }),
      { numRuns: 500 },
    );
  });
});
