// Crashes at the worst instants (issue #9): the daemon killed with SIGKILL while a target commits a
// batch and while the pruner deletes from the log, and a target's server killed while a batch is in
// flight. (A kill during an initial sync is in test/replication/sync.test.ts, source crashes in
// test/operations/source-restart.test.ts.) Each time, the targets converge with nothing lost and nothing
// applied twice: every target counts how often each event row was inserted into it, and that count must
// be exactly 1 (a batch applied again would delete and insert its rows once more).
import { describe, expect, it } from 'vitest';

import {
  freshDatabase,
  privateCluster,
  sharedClusters,
  waitFor,
  type FreshDatabase,
} from '../support/fixtures.js';
import { ChildDaemon, makeConfig, waitCaughtUp } from '../support/replication.js';
import {
  expectWorkloadConverged,
  runWorkload,
  steadyWriter,
  workloadConfig,
  workloadDatabases,
  workloadTables,
} from '../support/workload.js';

/** Count, on a target, each insert of an events row (ENABLE ALWAYS: trigsync applies as replica). */
const countInserts = `
  create table events_inserted (id bigint primary key, n int not null);
  create function count_insert() returns trigger language plpgsql as $$
  begin
    insert into events_inserted values (new.id, 1) on conflict (id) do update set n = events_inserted.n + 1;
    return null;
  end $$;
  create trigger count_insert after insert on events for each row execute function count_insert();
  alter table events enable always trigger count_insert;`;

async function expectEachEventInsertedOnce(src: FreshDatabase, targets: FreshDatabase[]): Promise<void> {
  const [events] = await src.cluster.query<{ n: number }>(
    'select count(*)::int as n from events',
    [],
    src.name,
  );
  for (const target of targets) {
    const [counted] = await target.cluster.query<{ rows: number; twice: number }>(
      `select count(*)::int as rows, count(*) filter (where n > 1)::int as twice from events_inserted`,
      [],
      target.name,
    );
    expect(counted, `inserts counted on ${target.name}`).toEqual({ rows: events!.n, twice: 0 });
  }
}

/** The daemon as users run it, over the workload's tables, and 4 writers and a late committer on the source. */
async function daemonUnderLoad(
  src: FreshDatabase,
  targets: Record<string, FreshDatabase>,
  batchSize: number,
) {
  for (const target of Object.values(targets)) await target.cluster.query(countInserts, [], target.name);
  const raw = workloadConfig(src, targets, { apply: { batchSize, pollIntervalMs: 100 } });
  const daemon = await ChildDaemon.create({ ...raw, metrics: { enabled: false } });
  await daemon.start();
  const load = runWorkload({
    url: src.url,
    writers: 4,
    lateCommitters: 1,
    durationMs: 10_000,
    minCommitted: 201,
    keys: 200,
  });
  return { daemon, load, config: makeConfig(raw) };
}

/** After the load: every target equals the source, each event inserted once. */
async function expectConverged(
  run: Awaited<ReturnType<typeof daemonUnderLoad>>,
  src: FreshDatabase,
  targets: FreshDatabase[],
): Promise<void> {
  expect((await run.load).committed).toBeGreaterThan(200);
  await waitCaughtUp(run.config);
  await expectWorkloadConverged(src, targets);
  await expectEachEventInsertedOnce(src, targets);
}

/** Whether a trigsync session on the server of `db` runs a statement matching `pattern` right now. */
async function trigsyncRuns(db: FreshDatabase, pattern: string): Promise<boolean> {
  const rows = await db.cluster.query(
    `select 1 from pg_stat_activity
      where datname = $1 and application_name = 'trigsync' and state = 'active' and query ilike $2`,
    [db.name, pattern],
  );
  return rows.length > 0;
}

/** Kill the daemon as soon as it runs `pattern` on `db`, then start it again; the instants it hit. */
async function killWhenRunning(
  daemon: ChildDaemon,
  db: FreshDatabase,
  pattern: string,
  timeoutMs = 20_000,
): Promise<void> {
  await waitFor(() => trigsyncRuns(db, pattern), {
    what: `trigsync to run ${pattern} on ${db.name}`,
    timeoutMs,
    intervalMs: 5,
  });
  await daemon.kill();
  await daemon.start();
}

describe('crashes at chosen instants', () => {
  it('the daemon killed while a target commits a batch, three times: nothing lost or applied twice', async () => {
    const { src, a, b } = await workloadDatabases();
    // Target a takes 300 ms to commit each transaction of trigsync's: a deferred trigger that sleeps
    // once per transaction, at commit (ENABLE ALWAYS: trigsync applies as replica). The kill lands while
    // the COMMIT is running on the server.
    await a.cluster.query(
      `create function slow_commit() returns trigger language plpgsql as $$
       begin
         if current_setting('test.slowed', true) = 'yes' then return null; end if;
         perform set_config('test.slowed', 'yes', true);
         perform pg_sleep(0.3);
         return null;
       end $$;
       create constraint trigger slow_commit after insert on events deferrable initially deferred
         for each row execute function slow_commit();
       alter table events enable always trigger slow_commit;`,
      [],
      a.name,
    );
    const run = await daemonUnderLoad(src, { a, b }, 100);
    for (let kill = 0; kill < 3; kill++) await killWhenRunning(run.daemon, a, 'commit%');
    // Catching up at 300 ms a batch would take longer than the test needs.
    await a.cluster.query('drop trigger slow_commit on events', [], a.name);
    await expectConverged(run, src, [a, b]);
    expect(await run.daemon.stop()).toBe(0);
  });

  it('the daemon killed while it prunes the log, twice: nothing lost or applied twice, and pruning resumes', async () => {
    const { src, a, b } = await workloadDatabases();
    const run = await daemonUnderLoad(src, { a, b }, 5_000);
    for (let round = 0; round < 2; round++) {
      // A large applied backlog makes pruning last long enough to be caught at it: 60k rows, three of its delete statements.
      const base = 1_000_000_000 * (round + 1);
      await src.cluster.query(
        `insert into events select $1::bigint + g, g % 100, 'bulk' from generate_series(1, 60000) g`,
        [base],
        src.name,
      );
      await killWhenRunning(run.daemon, src, '%delete from%change_log%', 30_000);
    }
    await expectConverged(run, src, [a, b]);
    // Everything is applied everywhere: the pruner of the restarted daemon empties the log.
    const logRows = async () =>
      (
        await src.cluster.query<{ n: number }>(
          'select count(*)::int as n from trigsync.change_log',
          [],
          src.name,
        )
      )[0]!.n;
    await waitFor(async () => (await logRows()) === 0, {
      what: 'the change log to be pruned',
      timeoutMs: 30_000,
    });
    expect(await run.daemon.stop()).toBe(0);
  });

  it("a target's server killed while a batch is in flight, and restarted: it drains, nothing lost or applied twice", async () => {
    const { source, target1 } = sharedClusters();
    const cluster = await privateCluster('b');
    const [src, a, b] = await Promise.all([
      freshDatabase(source),
      freshDatabase(target1),
      freshDatabase(cluster),
    ]);
    for (const db of [src, a, b]) await db.cluster.query(workloadTables, [], db.name);
    const run = await daemonUnderLoad(src, { a, b }, 50);
    // Writes that go on until both crashes are done, however long the load takes to reach them.
    const steady = steadyWriter(src.url, 10);
    for (let crash = 0; crash < 2; crash++) {
      await waitFor(() => trigsyncRuns(b, '%'), {
        what: 'a batch in flight on b',
        timeoutMs: 20_000,
        intervalMs: 5,
      });
      await cluster.kill();
      await cluster.start();
    }
    await steady.stop();
    await expectConverged(run, src, [a, b]);
    expect(await run.daemon.stop()).toBe(0);
  });
});
