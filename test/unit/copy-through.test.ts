// Which chunks lead to a run copied through (src/apply/copy-through.ts), and the COPY TO statement of a
// run (src/changelog/bulk-window.ts): its window as literals, its columns as text. No database.
import { describe, expect, it } from 'vitest';

import { bulkTableOf } from '../../src/apply/copy-through.js';
import { runCopyOutSql } from '../../src/changelog/bulk-window.js';
import type { LogChange, Position } from '../../src/changelog/window.js';
import { logChange } from '../support/log-change.js';
import { tablePlan } from '../support/table-plan.js';

const items = tablePlan(1, 'items', 0);
const arrays = { ...tablePlan(2, 'arrays', 1), copyThrough: false };
const tables = new Map([
  [1, items],
  [2, arrays],
]);

const inserts = (relid: number, n: number, first = 1): LogChange[] =>
  Array.from({ length: n }, (_, i) => logChange({ id: first + i, relid, op: 'I', row: '{"id":1}' }));

describe('bulkTableOf', () => {
  it("takes a chunk of one table's inserts, as many as the COPY threshold", () => {
    expect(bulkTableOf(inserts(1, 1000), tables, 1000)).toBe(items);
    expect(bulkTableOf(inserts(1, 999), tables, 1000)).toBeUndefined();
  });

  it('leaves a chunk with another operation or table, or a table whose images are not all scalars', () => {
    const chunk = inserts(1, 1000);
    chunk[500] = logChange({ id: 501, relid: 1, op: 'D', row: '{"id":1}' });
    expect(bulkTableOf(chunk, tables, 10)).toBeUndefined();
    expect(bulkTableOf([...inserts(1, 600), ...inserts(3, 600, 601)], tables, 10)).toBeUndefined();
    expect(bulkTableOf(inserts(2, 1000), tables, 10)).toBeUndefined();
    expect(bulkTableOf(inserts(7, 1000), tables, 10)).toBeUndefined();
  });
});

describe('runCopyOutSql', () => {
  const position: Position = {
    from: { snapshot: '100:104:101,103', idBound: 50, nextXid: '106' },
    to: { snapshot: '110:110:', idBound: 90, nextXid: '111', idCeiling: 95 },
    appliedId: 60,
  };
  const run = { changes: 20, lastId: 80, relid: 1, captured: [] };

  it("reads the window of the position, up to the run's last id, each column as text", () => {
    const sql = runCopyOutSql('trigsync', position, run, ['id', 'Odd "name"']);
    expect(sql).toMatch(/^copy \(/);
    expect(sql).toMatch(/\) to stdout$/);
    // Part A's txids: the xip list, then from xmax up to the next xid.
    expect(sql).toContain(`'{101,103,104,105}'::xid8[]`);
    expect(sql).toContain(`'100:104:101,103'::pg_snapshot`);
    expect(sql).toContain('c.id > 60 and c.id <= 50');
    expect(sql).toContain('c.id <= 95');
    expect(sql).toContain('where c.id <= 80');
    expect(sql).toContain('json_to_record(c.row) as r ("id" text, "Odd ""name""" text)');
    expect(sql).toContain('c.relid in (1)');
  });

  it('refuses a run of several tables, and ids that are not integers', () => {
    expect(() => runCopyOutSql('trigsync', position, { ...run, relid: undefined }, ['id'])).toThrow();
    expect(() => runCopyOutSql('trigsync', position, { ...run, lastId: 1.5 }, ['id'])).toThrow();
  });
});
