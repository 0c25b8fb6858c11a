// A window's row as the daemon reads it (src/changelog/window.ts changeOf): the change's scalars come as
// one text, `id relid bytes capturedMs op txid`, parsed by character codes.
import { describe, expect, it } from 'vitest';

import { changeOf, type WindowRow } from '../../src/changelog/window.js';
import { logChange } from '../support/log-change.js';

describe('a window row', () => {
  it('gives the change its scalars from one text, and adds its bytes', () => {
    const read = { bytes: 10 };
    const row: WindowRow = [
      '9007199254740 16384 57 1764874800123.456 I 123456789012',
      '{"id":1}',
      null,
      null,
      null,
      null,
      null,
      null,
    ];
    expect(changeOf(row, read)).toEqual(
      logChange({
        id: 9007199254740,
        relid: 16384,
        txid: '123456789012',
        capturedMs: 1764874800123.456,
        row: '{"id":1}',
      }),
    );
    expect(read.bytes).toBe(67);
  });

  it('keeps what a row filter refused, an update statement and its old image', () => {
    const read = { bytes: 0 };
    const row: WindowRow = ['7 42 0 1000 U 9', '{"id":2}', ['j'], false, '{"id":1}', null, true, '31'];
    expect(changeOf(row, read)).toMatchObject({
      id: 7,
      relid: 42,
      op: 'U',
      txid: '9',
      capturedMs: 1000,
      nulls: ['j'],
      keep: false,
      oldRow: '{"id":1}',
      keepOld: true,
      statement: 31,
    });
  });
});
