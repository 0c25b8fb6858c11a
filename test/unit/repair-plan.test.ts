// repair's pure core: which keys a batch writes now, in which order, and the key-only row images.
import { describe, expect, it } from 'vitest';

import { actionOf, chunks, keyImage, splitInFlight, writesOf } from '../../src/verify/repair-plan.js';

describe('repair plan', () => {
  it('maps each kind of difference to the write that repairs it', () => {
    expect(actionOf).toEqual({ missing: 'insert', different: 'update', extra: 'delete' });
  });

  it('leaves the keys a change in flight touches for later, and every key when that is unknown', () => {
    const keys = [['1'], ['2'], ['3', 'a']];
    expect(splitInFlight(keys, [])).toEqual({ now: keys, later: [] });
    expect(splitInFlight(keys, [['2'], ['9'], ['3', 'a']])).toEqual({
      now: [['1']],
      later: [['2'], ['3', 'a']],
    });
    // A composite key matches as a whole, not column by column.
    expect(splitInFlight([['3', 'b']], [['3', 'a']])).toEqual({ now: [['3', 'b']], later: [] });
    expect(splitInFlight(keys, undefined)).toEqual({ now: [], later: keys });
  });

  it('groups differences by action, deletes first', () => {
    const writes = writesOf([
      { key: ['1'], kind: 'missing' },
      { key: ['2'], kind: 'extra' },
      { key: ['3'], kind: 'different' },
      { key: ['4'], kind: 'missing' },
    ]);
    expect(Object.keys(writes)).toEqual(['delete', 'update', 'insert']);
    expect(writes).toEqual({ delete: [['2']], update: [['3']], insert: [['1'], ['4']] });
  });

  it('cuts keys into batches', () => {
    expect(chunks([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
    expect(chunks([], 3)).toEqual([]);
    expect(() => chunks([1], 0)).toThrow(RangeError);
  });

  it('makes a row image of a key: each column its text, quoted as JSON', () => {
    expect(keyImage(['order_id', 'line'], ['100', '1'])).toBe('{"order_id":"100","line":"1"}');
    expect(keyImage(['name'], ['a "quoted"\\ name'])).toBe('{"name":"a \\"quoted\\"\\\\ name"}');
  });
});
