// The SQL builders of apply (src/apply/statements.ts) bind what they use: every $N a statement names has
// its value, and every value its $N. A mismatch fails on the target only, with the batch. No database.
import { describe, expect, it } from 'vitest';

import type { RowImages } from '../../src/apply/batch.js';
import type { TablePlan } from '../../src/apply/plan.js';
import {
  deleteExpectedStatement,
  deleteStatement,
  insertStatement,
  jsonArray,
  updateStatement,
  type MismatchReport,
  type Statement,
} from '../../src/apply/statements.js';
import { savePositionStatement } from '../../src/apply/applied-position.js';
import { openWindow, positionAt } from '../../src/changelog/window.js';
import { tablePlan } from '../support/table-plan.js';

/** A table with `json` json columns besides id and v. */
function withJson(json: number): TablePlan {
  const names = Array.from({ length: json }, (_, i) => `doc${i}`);
  return {
    ...tablePlan(1, 'parent', 0),
    columns: ['id', 'v', ...names],
    imageJsonColumns: names,
    jsonColumns: names.map((name) => ({ name, type: 'jsonb' })),
  };
}

function images(table: TablePlan, ids: number[]): RowImages {
  return {
    rows: ids.map((id) => JSON.stringify({ id, v: 'x' })),
    json: table.jsonColumns.map(() => ids.map(() => '{"a": "\\u0000"}')),
  };
}

/** The $N a statement names, ascending, once each. */
function placeholders(statement: Statement): number[] {
  const used = new Set([...statement.text.matchAll(/\$(\d+)/g)].map((m) => Number(m[1])));
  return [...used].sort((a, b) => a - b);
}

/** 1..n */
const upTo = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);

describe('statements', () => {
  it('names each of its parameters, for any number of json columns, reported or guarded', () => {
    const reports: MismatchReport[] = [{ report: true }, { guarded: 'trigsync' }];
    for (const json of [0, 1, 3]) {
      const table = withJson(json);
      const two = images(table, [1, 2]);
      for (const how of reports) {
        const statements = {
          insert: insertStatement(table, two, how),
          update: updateStatement(table, two, images(table, [1, 3]), false, how),
          move: updateStatement(table, two, images(table, [5, 6]), true, how),
          delete: deleteStatement(table, two, images(table, [2]), [2], how),
          deleteExpected: deleteExpectedStatement(table, two, undefined, how),
          deleteExpectedLast: deleteExpectedStatement(table, two, images(table, [1, 2]), how),
        };
        for (const [kind, statement] of Object.entries(statements)) {
          const values = statement!.values!;
          expect(placeholders(statement!), `${kind}, ${json} json columns`).toEqual(upTo(values.length));
        }
      }
    }
  });

  it('passes the rows as one JSON array and each json column as its own text array', () => {
    const table = withJson(2);
    const statement = insertStatement(table, images(table, [1, 2]))!;
    expect(statement.values).toHaveLength(3);
    expect(JSON.parse(statement.values![0] as string)).toEqual([
      { id: 1, v: 'x' },
      { id: 2, v: 'x' },
    ]);
    expect(statement.values!.slice(1)).toEqual([
      ['{"a": "\\u0000"}', '{"a": "\\u0000"}'],
      ['{"a": "\\u0000"}', '{"a": "\\u0000"}'],
    ]);
  });

  it('has nothing to run for no rows', () => {
    const table = withJson(1);
    const none = images(table, []);
    expect(insertStatement(table, none)).toBeUndefined();
    expect(updateStatement(table, none, none, false)).toBeUndefined();
    expect(deleteStatement(table, none, none, [])).toBeUndefined();
  });

  it('saves a position with a parameter for each of its columns', () => {
    const open = { ...openWindow(positionAt(tick(1)), tick(2)), appliedId: 9 };
    for (const position of [positionAt(tick(1)), open]) {
      const statement = savePositionStatement('trigsync', 'main', 'replica', position);
      expect(placeholders(statement)).toEqual(upTo(statement.values!.length));
      expect(statement.values!.slice(0, 2)).toEqual(['main', 'replica']);
    }
  });

  it('writes JSON value texts into an array as they are', () => {
    expect(jsonArray([])).toBe('[]');
    expect(JSON.parse(jsonArray(['{"a": 1}', '"\\u0000"', 'null']))).toEqual([{ a: 1 }, '\u0000', null]);
  });
});

function tick(n: number) {
  return { snapshot: `${n}:${n}:`, idBound: n, nextXid: `${n}`, idCeiling: n };
}
