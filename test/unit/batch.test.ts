// The pure core of apply (src/apply/batch.ts): how changes become steps. No database.
import { describe, expect, it } from 'vitest';

import { buildSteps, type ApplyStep, type KeyChange } from '../../src/apply/batch.js';
import { wholeStatements } from '../../src/apply/whole-statements.js';
import { canonicalKey } from '../../src/apply/row-image.js';
import type { LogChange } from '../../src/changelog/window.js';
import { logChange } from '../support/log-change.js';
import { tablePlan } from '../support/table-plan.js';

const plan = tablePlan;

const parent = plan(1, 'parent', 0);
const child = plan(2, 'child', 1);
const plans = new Map([
  [1, parent],
  [2, child],
]);

let nextId = 1;
function change(partial: Partial<LogChange> & Pick<LogChange, 'op'>): LogChange {
  return logChange({ id: nextId++, row: null, ...partial });
}
const row = (id: number, v = 'x'): string => JSON.stringify({ id, v });
const insert = (id: number, more: Partial<LogChange> = {}) => change({ op: 'I', row: row(id), ...more });
const remove = (id: number, more: Partial<LogChange> = {}) => change({ op: 'D', row: row(id), ...more });
const update = (from: number, to: number, statement: number, more: Partial<LogChange> = {}) =>
  change({ op: 'U', oldRow: row(from, 'old'), row: row(to, 'new'), statement, ...more });

/** Each step as `kind table keys`, keys by id. */
function shape(steps: ApplyStep[]): string[] {
  return steps.map((s) =>
    s.kind === 'truncate'
      ? `truncate ${s.tables.map((t) => t.target.name).join(',')}`
      : `${s.kind} ${s.table.target.name} ${s.keys.map((k) => (JSON.parse(k.key) as { id: number }).id).join(',')}`,
  );
}

describe('buildSteps', () => {
  it('updates a key that survives in place, and treats the two images of an update as one change', () => {
    const u = update(1, 1, 7);
    const steps = buildSteps([u], plans);
    expect(shape(steps)).toEqual(['update parent 1']);
    const key = (steps[0] as { keys: { ids: number[] }[] }).keys[0]!;
    expect(key.ids).toEqual([u.id]);
  });

  it('takes every old key of a statement out before its new keys come in (set id = id + 1)', () => {
    const steps = buildSteps([update(1, 2, 9), update(2, 3, 9), update(3, 4, 9)], plans);
    expect(shape(steps)).toEqual(['insert parent 4', 'update parent 2,3', 'delete parent 1']);
  });

  it('keeps the statements of consecutive transactions in commit order', () => {
    // Key 21 updated in place by one transaction, then moved by the next: 21 is gone, 10021 arrives.
    const steps = buildSteps(
      [update(21, 21, 1, { txid: '100' }), update(21, 10021, 2, { txid: '101' })],
      plans,
    );
    expect(shape(steps)).toEqual(['insert parent 10021', 'delete parent 21']);
  });

  it("notes where a new key's row came from when the key change is not a move", () => {
    // Key 5 moved to 50, then 50 updated by the next statement: a delete of 5 and an insert of 50, and
    // a target whose own cascade moved the row may hold it under 50 already (conflicts.ts).
    const steps = buildSteps([update(5, 50, 3), update(50, 50, 4)], plans);
    expect(shape(steps)).toEqual(['insert parent 50', 'delete parent 5']);
    const [inserted, deleted] = steps.map((s) => (s as { keys: KeyChange[] }).keys[0]!);
    expect(inserted!.arrivedFrom).toEqual(deleted!.before);
    expect(deleted!.movedTo).toBe(inserted);
    // A key that moves alone is a move: nothing to note.
    const moved = (buildSteps([update(6, 60, 5)], plans)[0] as { keys: KeyChange[] }).keys[0]!;
    expect([moved.arrivedFrom, moved.movedTo]).toEqual([undefined, undefined]);
  });

  it('notes the row a delete removed where the batch changed it first', () => {
    const steps = buildSteps([update(7, 7, 3), remove(7)], plans);
    expect(shape(steps)).toEqual(['delete parent 7']);
    const deleted = (steps[0] as { keys: KeyChange[] }).keys[0]!;
    expect(deleted.before!.row).toBe(row(7, 'old'));
    expect(deleted.lastBefore!.row).toBe(row(7));
    const alone = (buildSteps([remove(8)], plans)[0] as { keys: KeyChange[] }).keys[0]!;
    expect(alone.lastBefore).toBeUndefined();
  });

  it('moves a row whose key changed and that nothing else touched', () => {
    expect(shape(buildSteps([update(5, 50, 3)], plans))).toEqual(['move parent 5']);
  });

  it('writes parents before children and deletes children before parents, whatever the log order', () => {
    const steps = buildSteps(
      [
        insert(10, { relid: 2 }),
        insert(1),
        remove(3),
        remove(30, { relid: 2 }),
        update(4, 4, 5, { relid: 2 }),
      ],
      plans,
    );
    expect(shape(steps)).toEqual([
      'insert parent 1',
      'insert child 10',
      'update child 4',
      'delete child 30',
      'delete parent 3',
    ]);
  });

  it("applies one transaction's TRUNCATEs as one, and a TRUNCATE as a barrier between row changes", () => {
    const steps = buildSteps(
      [
        insert(1),
        change({ op: 'T', relid: 2, txid: '200' }),
        change({ op: 'T', relid: 1, txid: '200' }),
        insert(1, { txid: '201' }),
      ],
      plans,
    );
    expect(shape(steps)).toEqual(['insert parent 1', 'truncate child,parent', 'insert parent 1']);
  });

  it('writes a key that an update wrote in other digits of the same value (1.0 as 1.00)', () => {
    const scaled = change({
      op: 'U',
      oldRow: '{"id":1.0,"v":"old"}',
      row: '{"id":1.00,"v":"new"}',
      statement: 3,
    });
    expect(shape(buildSteps([scaled], plans))).toEqual(['move parent 1']);
  });

  it('collapses a key that comes and goes, and one that goes and comes back', () => {
    const steps = buildSteps([insert(1), remove(1), remove(2), insert(2, { txid: '101' })], plans);
    expect(shape(steps)).toEqual(['update parent 2', 'delete parent 1']);
  });
});

// Keys 5 and 6 below stand for two texts of one key to the target ('TAG5' and 'tAg5' under a
// case-insensitive collation): the steps must never put 6 in before 5 goes.
describe('buildSteps for a table whose keys are loose', () => {
  const loose = plan(3, 'loose', 0, false, true);
  const loosePlans = new Map([[3, loose]]);
  const on = { relid: 3 };

  it('deletes a key before a later change brings another', () => {
    const changes = [remove(5, on), insert(6, on)];
    expect(shape(buildSteps(changes, loosePlans))).toEqual(['delete loose 5', 'insert loose 6']);
    // An exact key's steps insert first: the keys differ.
    expect(shape(buildSteps([remove(5), insert(6)], plans))).toEqual(['insert parent 6', 'delete parent 5']);
  });

  it('moves the key of each update statement apart from the one before', () => {
    const changes = [update(5, 6, 1, on), update(6, 7, 2, on)];
    expect(shape(buildSteps(changes, loosePlans))).toEqual(['move loose 5', 'move loose 6']);
  });

  it('keeps the rows of one statement together, and a run of inserts or deletes', () => {
    const statement = [update(1, 11, 4, on), update(2, 12, 4, on), update(3, 13, 4, on)];
    expect(shape(buildSteps(statement, loosePlans))).toEqual(['move loose 1,2,3']);
    const inserts = [insert(1, on), insert(2, on), remove(3, on), remove(4, on)];
    expect(shape(buildSteps(inserts, loosePlans))).toEqual(['insert loose 1,2', 'delete loose 3,4']);
  });

  it('keeps an update logged as a V and a U (before sql/source/007) one update', () => {
    const changes = [change({ op: 'V', row: row(5, 'old'), ...on }), change({ op: 'U', row: row(5), ...on })];
    expect(shape(buildSteps(changes, loosePlans))).toEqual(['update loose 5']);
  });

  it('leaves out a key that came and went, whose delete could take a new key in other letters', () => {
    // 5 inserted, then moved to 6 by one statement: 5 is nothing to the target, 6 a new row.
    const changes = [insert(5, on), update(5, 6, 8, on)];
    expect(shape(buildSteps(changes, loosePlans))).toEqual(['insert loose 6']);
    expect(shape(buildSteps([insert(5), update(5, 6, 8)], plans))).toEqual([
      'insert parent 6',
      'delete parent 5',
    ]);
  });
});

describe('wholeStatements', () => {
  it('leaves an UPDATE statement that may go on past a full chunk for the next chunk', () => {
    const chunk = [insert(1), update(2, 2, 11), insert(3, { txid: '300' }), update(4, 4, 11)];
    expect(wholeStatements(chunk)).toEqual(chunk.slice(0, 1));
  });

  it('does not cut another statement in two where it cuts', () => {
    // Statement 21 (transaction 400) is interleaved with statement 22 (transaction 401), which may go on.
    const chunk = [insert(1), update(2, 2, 21, { txid: '400' }), update(3, 3, 22, { txid: '401' })];
    chunk.push(
      update(4, 4, 21, { txid: '400' }),
      insert(5, { txid: '400' }),
      update(6, 6, 22, { txid: '401' }),
    );
    expect(wholeStatements(chunk)).toEqual(chunk.slice(0, 1));
    // Statement 21 ended (its transaction went on), 22 may go on: cut before 22's first row.
    const ended = [insert(1), update(2, 2, 23, { txid: '402' }), insert(3, { txid: '402' })];
    ended.push(update(4, 4, 24, { txid: '403' }));
    expect(wholeStatements(ended)).toEqual(ended.slice(0, 3));
  });

  it('keeps a chunk that one statement fills, and one that does not end in a statement', () => {
    const one = [update(1, 1, 12), update(2, 2, 12)];
    expect(wholeStatements(one)).toEqual(one);
    const other = [update(1, 1, 13), insert(5)];
    expect(wholeStatements(other)).toEqual(other);
  });
});

describe('canonicalKey', () => {
  it('reads numbers of one value alike and leaves strings alone', () => {
    expect(canonicalKey('{"id":1.00}')).toBe(canonicalKey('{"id":1}'));
    expect(canonicalKey('{"id":[1.50,-0.0]}')).toBe('{"id":[1.5,0]}');
    expect(canonicalKey('{"id":"1.50"}')).toBe('{"id":"1.50"}');
    expect(canonicalKey('{"a":"x\\"1.0","b":10}')).toBe('{"a":"x\\"1.0","b":10}');
  });
});
