// Which chunks lead to a run copied through (src/apply/copy-through.ts), and the COPY TO statement of a
// run (src/changelog/bulk-window.ts): its window as literals, its columns as text. No database.
import { describe, expect, it } from 'vitest';

import { runOfInserts, tablesOfRun } from '../../src/apply/copy-through.js';
import { runCopyOutSql } from '../../src/changelog/bulk-window.js';
import type { LogChange, Position } from '../../src/changelog/window.js';
import { logChange } from '../support/log-change.js';
import { tablePlan } from '../support/table-plan.js';

const items = tablePlan(1, 'items', 0);
const arrays = { ...tablePlan(2, 'arrays', 1), copyThrough: false };
const lines = tablePlan(3, 'lines', 2);
const tables = new Map([
  [3, lines],
  [1, items],
  [2, arrays],
]);

const inserts = (relid: number, n: number, first = 1): LogChange[] =>
  Array.from({ length: n }, (_, i) => logChange({ id: first + i, relid, op: 'I', row: '{"id":1}' }));

describe('runOfInserts', () => {
  it('takes a chunk of inserts into tables that may be copied through, as many as the COPY threshold', () => {
    expect(runOfInserts(inserts(1, 1000), tables, 1000)).toBe(true);
    expect(runOfInserts([...inserts(1, 600), ...inserts(3, 600, 601)], tables, 1000)).toBe(true);
    expect(runOfInserts(inserts(1, 999), tables, 1000)).toBe(false);
  });

  it('leaves a chunk with another operation, or a table whose images are not all scalars', () => {
    const chunk = inserts(1, 1000);
    chunk[500] = logChange({ id: 501, relid: 1, op: 'D', row: '{"id":1}' });
    expect(runOfInserts(chunk, tables, 10)).toBe(false);
    expect(runOfInserts([...inserts(1, 600), ...inserts(2, 600, 601)], tables, 10)).toBe(false);
    expect(runOfInserts(inserts(7, 1000), tables, 10)).toBe(false);
  });
});

describe('tablesOfRun', () => {
  const run = (inserts: boolean, ...relids: number[]) => ({
    changes: 10,
    lastId: 10,
    inserts,
    tables: relids.map((relid) => ({ relid, changes: 5 })),
    captured: [],
  });

  it("orders a run's tables parents first, by their rank in the plan", () => {
    expect(tablesOfRun(run(true, 3, 1), tables)?.map((t) => t.relid)).toEqual([1, 3]);
  });

  it('refuses a run that is not all inserts, or has a table that may not be copied through', () => {
    expect(tablesOfRun(run(false, 1), tables)).toBeUndefined();
    expect(tablesOfRun(run(true, 1, 2), tables)).toBeUndefined();
    expect(tablesOfRun(run(true, 1, 9), tables)).toBeUndefined();
    expect(tablesOfRun(run(true), tables)).toBeUndefined();
  });
});

describe('runCopyOutSql', () => {
  const position: Position = {
    from: { snapshot: '100:104:101,103', idBound: 50, nextXid: '106' },
    to: { snapshot: '110:110:', idBound: 90, nextXid: '111', idCeiling: 95 },
    appliedId: 60,
  };
  const run = { changes: 20, lastId: 80, inserts: true, tables: [{ relid: 1, changes: 20 }], captured: [] };

  it("reads the window of the position, up to the run's last id, each column as text", () => {
    const sql = runCopyOutSql('trigsync', position, run, 1, ['id', 'Odd "name"'], new Map());
    expect(sql).toMatch(/^copy \(/);
    expect(sql).toMatch(/\) to stdout$/);
    // Part A's txids: the xip list, then from xmax up to the next xid.
    expect(sql).toContain(`'{101,103,104,105}'::xid8[]`);
    expect(sql).toContain(`'100:104:101,103'::pg_snapshot`);
    expect(sql).toContain('c.id > 60 and c.id <= 50');
    // Part B ends at the run's last id, not the window's ceiling (95): the scan stops with the run.
    expect(sql).toContain('c.id > greatest(50, 60) and c.id <= 80');
    expect(sql).not.toContain('c.id <= 95');
    expect(sql).toContain('where c.id <= 80');
    expect(sql).toContain('json_to_record(c.row) as r ("id" text, "Odd ""name""" text)');
    expect(sql).toContain('c.relid in (1)');
    expect(sql).toContain('select r."id", r."Odd ""name"""');
  });

  it('gives a field an image lacks the value of a column added since, a JSON null staying NULL', () => {
    const sql = runCopyOutSql('trigsync', position, run, 1, ['id', 'c'], new Map([['c', "it's"]]));
    expect(sql).toContain(`select r."id", case when c.row -> 'c' is null then 'it''s' else r."c" end`);
  });

  it('refuses ids that are not integers', () => {
    expect(() =>
      runCopyOutSql('trigsync', position, { ...run, lastId: 1.5 }, 1, ['id'], new Map()),
    ).toThrow();
    expect(() => runCopyOutSql('trigsync', position, { ...run, lastId: -1 }, 1, ['id'], new Map())).toThrow();
  });
});
