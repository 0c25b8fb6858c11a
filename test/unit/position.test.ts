// A target's position between ticks (src/changelog/window.ts): opening and closing windows, and the stored
// form that the source's `target` and the target's `applied_position` rows hold. No database.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import {
  closeWindow,
  fromStored,
  openWindow,
  positionAt,
  positionColumns,
  positionValues,
  toStored,
  type Position,
  type StoredPosition,
  type Tick,
} from '../../src/changelog/window.js';

const ids = fc.maxSafeNat();
const xid8s = fc.bigInt({ min: 3n, max: 2n ** 64n - 1n }).map(String);
const ticks: fc.Arbitrary<Tick> = fc.record(
  {
    snapshot: fc.tuple(xid8s, xid8s).map(([a, b]) => `${a}:${b}:`),
    idBound: ids,
    nextXid: xid8s,
    idCeiling: ids,
  },
  { noNullPrototype: true },
);
/** Positions as the daemon makes them: between windows, nothing of a window is applied. */
const positions: fc.Arbitrary<Position> = fc.oneof(
  ticks.map(positionAt),
  fc
    .tuple(ticks, ticks, ids)
    .map(([from, to, appliedId]) => ({ ...openWindow(positionAt(from), to), appliedId })),
);

const t1: Tick = { snapshot: '100:105:102', idBound: 40, nextXid: '106', idCeiling: 44 };
const t2: Tick = { snapshot: '110:112:', idBound: 70, nextXid: '112', idCeiling: 71 };

describe('windows', () => {
  it('starts a target at a tick with no window open', () => {
    expect(positionAt(t1)).toStrictEqual({
      from: { snapshot: '100:105:102', idBound: 40, nextXid: '106' },
      to: undefined,
      appliedId: 0,
    });
  });

  it('opens a window up to a tick, and keeps a window that is open', () => {
    const open = openWindow(positionAt(t1), t2);
    expect(open).toStrictEqual({ from: positionAt(t1).from, to: t2, appliedId: 0 });
    const applying = { ...open, appliedId: 50 };
    expect(openWindow(applying, t1)).toBe(applying);
  });

  it('closes a window: its end becomes the start and nothing of the next is applied', () => {
    expect(closeWindow({ ...openWindow(positionAt(t1), t2), appliedId: 71 })).toStrictEqual(positionAt(t2));
    const closed = positionAt(t1);
    expect(closeWindow(closed)).toBe(closed);
  });

  it('goes from tick to tick, whatever the ticks', () => {
    fc.assert(
      fc.property(ticks, ticks, ids, (a, b, appliedId) => {
        const open = { ...openWindow(positionAt(a), b), appliedId };
        expect(closeWindow(open)).toStrictEqual(positionAt(b));
      }),
    );
  });
});

describe('stored positions', () => {
  it('reads back any position it stores', () => {
    fc.assert(
      fc.property(positions, (p) => {
        expect(fromStored(toStored(p))).toStrictEqual(p);
      }),
    );
  });

  it('stores a closed window as nulls', () => {
    expect(toStored(positionAt(t1))).toEqual({
      from_snapshot: '100:105:102',
      from_id_bound: 40,
      from_next_xid: '106',
      to_snapshot: null,
      to_id_bound: null,
      to_next_xid: null,
      to_id_ceiling: null,
      applied_id: 0,
    });
  });

  it('takes a window whose end is not stored whole as closed, with nothing applied', () => {
    const stored = { ...toStored({ ...openWindow(positionAt(t1), t2), appliedId: 50 }), to_id_ceiling: null };
    expect(fromStored(stored)).toStrictEqual(positionAt(t1));
  });

  it('reads ids that come as text, as pg gives bigint without a type parser', () => {
    const stored = toStored({ ...openWindow(positionAt(t1), t2), appliedId: 50 });
    const asText = Object.fromEntries(
      Object.entries(stored).map(([column, value]) => [
        column,
        typeof value === 'number' ? String(value) : value,
      ]),
    ) as unknown as StoredPosition;
    expect(fromStored(asText)).toStrictEqual({ ...openWindow(positionAt(t1), t2), appliedId: 50 });
  });

  it('lists every stored column once, and gives values in that order', () => {
    const p = { ...openWindow(positionAt(t1), t2), appliedId: 50 };
    expect([...positionColumns].sort()).toEqual(Object.keys(toStored(p)).sort());
    expect(new Set(positionColumns).size).toBe(positionColumns.length);
    expect(positionValues(p)).toEqual(['100:105:102', 40, '106', '110:112:', 70, '112', 71, 50]);
    expect(positionValues(positionAt(t2))).toEqual(['110:112:', 70, '112', null, null, null, null, 0]);
  });
});
