// A step of deletes (src/apply/conflicts.ts, statements.ts) deletes each key's row and reports the keys
// whose row was not the one the change expected. Where every key expects its old row, the statement reads
// those images alone (they hold the keys); otherwise the keys and the rows expected apart. Both shapes,
// run on a real table, must delete the same rows and report the same keys as the same conflicts.
import { describe, expect, it } from 'vitest';

import type { KeyChange, RowsStep } from '../../src/apply/batch.js';
import { rowsStepStatement, stepOutcome } from '../../src/apply/conflicts.js';
import { runMismatches } from '../../src/apply/statements.js';
import type { LogChange } from '../../src/changelog/window.js';
import { connect, freshDatabase, sharedClusters } from '../support/fixtures.js';
import { tablePlan } from '../support/table-plan.js';

const table = tablePlan(1, 'items', 0);

function change(id: number): LogChange {
  return { id, relid: table.relid, op: 'D' } as LogChange;
}

/** A delete of key `id`, expecting the row `(id, v)`, or no row where `v` is undefined. */
function deleting(id: number, v: string | undefined): KeyChange {
  const key = JSON.stringify({ id });
  return {
    key,
    first: change(id),
    ids: [id],
    before: v === undefined ? undefined : { row: JSON.stringify({ id, v }), nulls: null },
    after: undefined,
  };
}

/** Apply the step on a fresh copy of the rows; what it left and the conflicts it reported. */
async function applyStep(url: string, keys: KeyChange[]): Promise<{ left: string[]; conflicts: string[] }> {
  const client = await connect(url);
  try {
    await client.query(`drop table if exists items;
      create table items (id int primary key, v text);
      insert into items values (1, 'same'), (2, 'target changed it'), (4, 'there'), (5, 'same')`);
    const step: RowsStep = { kind: 'delete', table, keys };
    const outcome = stepOutcome(step, await runMismatches(client, rowsStepStatement(step)));
    const left = await client.query<{ row: string }>(`select items::text as row from items order by id`);
    return {
      left: left.rows.map((r) => r.row),
      conflicts: outcome.conflicts.map((c) => `${c.key} ${c.kind}`),
    };
  } finally {
    await client.end();
  }
}

describe('a step of deletes', () => {
  it('deletes and reports alike whether every key expects a row or not', async () => {
    const { url } = await freshDatabase(sharedClusters().target1);
    // Every key expects its old row: 1 as expected, 2 changed on the target, 3 missing there.
    const expecting = [deleting(1, 'same'), deleting(2, 'source row'), deleting(3, 'gone')];
    const all = await applyStep(url, expecting);
    expect(all.left).toEqual(['(4,there)', '(5,same)']);
    expect(all.conflicts).toEqual(['{"id":2} differs', '{"id":3} missing']);

    // The same keys with one that expects no row (an insert and a delete of it earlier in the batch,
    // say) and finds one: the statement with keys and rows apart.
    const mixed = await applyStep(url, [...expecting, deleting(4, undefined), deleting(5, 'same')]);
    expect(mixed.left).toEqual([]);
    expect(mixed.conflicts).toEqual(['{"id":2} differs', '{"id":3} missing', '{"id":4} exists']);
  });
});
