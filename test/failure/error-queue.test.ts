// G5 with a refused change: exactly that change lands in the error queue with everything before it
// applied; the other target is unaffected; `trigsync retry` or `trigsync skip` lets the target drain.
import { describe, expect, it } from 'vitest';

import { freshDatabase, sharedClusters, waitFor, type FreshDatabase } from '../support/fixtures.js';
import {
  configFile,
  expectSameRows,
  makeConfig,
  runCli,
  startDaemon,
  waitCaughtUp,
} from '../support/replication.js';

const table = 'create table items (id int primary key, v text not null)';

async function refusingTopology() {
  const { source, target1, target2 } = sharedClusters();
  const [src, b, c] = await Promise.all([
    freshDatabase(source),
    freshDatabase(target1),
    freshDatabase(target2),
  ]);
  for (const db of [src, b, c]) await db.cluster.query(table, [], db.name);
  // B refuses one particular row.
  await b.cluster.query(`alter table items add constraint no_poison check (v <> 'poison')`, [], b.name);
  const raw = {
    source: { url: src.url },
    tables: ['items'],
    targets: [
      { name: 'b', url: b.url, initialSync: 'none' },
      { name: 'c', url: c.url, initialSync: 'none' },
    ],
    apply: { pollIntervalMs: 100 },
    // A long data-error delay: converging within the test proves that retry and skip act at once.
    retry: { initialDelayMs: 100, maxDelayMs: 1_000, dataErrorDelayMs: 600_000 },
    metrics: { enabled: false },
  };
  const file = await configFile(raw);
  return { src, b, c, config: makeConfig(raw), file };
}

/** 40 single-row transactions and a few multi-row ones, with the poison row in the middle. */
async function writeWithPoison(src: FreshDatabase): Promise<void> {
  for (let i = 1; i <= 40; i++) {
    await src.cluster.query(
      `insert into items values ($1, $2)`,
      [i, i === 20 ? 'poison' : `row ${i}`],
      src.name,
    );
  }
  await src.cluster.query(`insert into items select g, 'bulk' from generate_series(41, 60) g`, [], src.name);
  await src.cluster.query(`update items set v = v || '!' where id between 30 and 50`, [], src.name);
}

interface ErrorsJson {
  errors: {
    target: string;
    changeId: number;
    table: string;
    op: string;
    key: string;
    sqlstate: string;
    attempts: number;
  }[];
}

async function parkedOnPoison(file: string): Promise<ErrorsJson['errors'][number]> {
  let errors: ErrorsJson['errors'] = [];
  await waitFor(
    async () => {
      errors = (JSON.parse((await runCli(file, 'errors', 'b', '--json')).out) as ErrorsJson).errors;
      return errors.length > 0;
    },
    { what: 'b to park on the poison row', timeoutMs: 20_000 },
  );
  expect(errors).toHaveLength(1);
  return errors[0]!;
}

describe('a change a target refuses', () => {
  it('is named exactly in the error queue, everything before it applied, and applies after retry', async () => {
    const { src, b, c, config, file } = await refusingTopology();
    const daemon = await startDaemon(config);
    await writeWithPoison(src);

    const entry = await parkedOnPoison(file);
    expect(entry).toMatchObject({
      target: 'b',
      table: 'public.items',
      op: 'I',
      key: '{"id":20}',
      sqlstate: '23514',
    });
    // The text output says the operation in words.
    expect((await runCli(file, 'errors', 'b')).out).toMatch(
      /^b {2}change \d+ {2}public\.items {2}insert {2}key \{"id":20\} {2}23514 {2}attempts \d+ since /m,
    );
    // Everything before the culprit is on B, nothing after it.
    expect(
      await b.cluster.query(
        'select min(id)::int as lo, max(id)::int as hi, count(*)::int as n from items',
        [],
        b.name,
      ),
    ).toEqual([{ lo: 1, hi: 19, n: 19 }]);
    const status = JSON.parse((await runCli(file, 'status', '--json')).out) as {
      targets: { name: string; state: string; backlog: number }[];
    };
    expect(status.targets.find((t) => t.name === 'b')).toMatchObject({ state: 'parked' });
    expect(status.targets.find((t) => t.name === 'c')).toMatchObject({ state: 'live', backlog: 0 });
    expect((await runCli(file, 'status', '--check')).code).toBe(1);
    await expectSameRows(
      { url: src.url, query: 'select * from items' },
      { url: c.url, query: 'select * from items' },
      'id',
    );

    // The operator fixes the target and retries: B drains by itself.
    await b.cluster.query('alter table items drop constraint no_poison', [], b.name);
    expect((await runCli(file, 'retry', 'b')).code).toBe(0);
    await waitCaughtUp(config, 20_000);
    await expectSameRows(
      { url: src.url, query: 'select * from items' },
      { url: b.url, query: 'select * from items' },
      'id',
    );
    expect((JSON.parse((await runCli(file, 'errors', '--json')).out) as ErrorsJson).errors).toEqual([]);
    await daemon.stop();
  });

  it('is dropped for that target only by skip, which records who skipped what', async () => {
    const { src, b, c, config, file } = await refusingTopology();
    const daemon = await startDaemon(config);
    await writeWithPoison(src);
    const entry = await parkedOnPoison(file);

    expect((await runCli(file, 'skip', 'b', String(entry.changeId))).code).toBe(2); // no --yes
    const skipped = await runCli(file, 'skip', 'b', String(entry.changeId), '--yes');
    expect(skipped.code).toBe(0);
    await waitCaughtUp(config, 20_000);
    // B has everything but the poison row; C has everything.
    await expectSameRows(
      { url: src.url, query: 'select * from items where id <> 20' },
      { url: b.url, query: 'select * from items' },
      'id',
    );
    await expectSameRows(
      { url: src.url, query: 'select * from items' },
      { url: c.url, query: 'select * from items' },
      'id',
    );
    const audit = await src.cluster.query<{
      target: string;
      change_id: string;
      op: string;
      row: string;
      skipped_by: string;
    }>(
      `select target, change_id::text, op, row::text, skipped_by, skipped_at from trigsync.skipped_change`,
      [],
      src.name,
    );
    expect(audit).toEqual([
      expect.objectContaining({
        target: 'b',
        change_id: String(entry.changeId),
        op: 'I',
        row: '{"id":20,"v":"poison"}',
        skipped_by: 'postgres',
      }),
    ]);
    await daemon.stop();
  });
});
