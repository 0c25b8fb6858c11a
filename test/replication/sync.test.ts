// Online initial sync (issue #6): a target is filled from one snapshot of the source while writers keep
// going, without blocking them, and continues from exactly that snapshot (nothing lost, nothing twice).
import pg from 'pg';
import { describe, expect, it } from 'vitest';

import { readStatus } from '../../src/changelog/status.js';
import { withClient } from '../support/cluster.js';
import {
  createRole,
  ident,
  sourceAndTwoTargets,
  uniqueName,
  waitFor,
  type FreshDatabase,
} from '../support/fixtures.js';
import {
  ChildDaemon,
  configFile,
  conflictsCounted,
  expectSameRows,
  makeConfig,
  runCli,
  startDaemon,
  targetStatus,
  waitCaughtUp,
} from '../support/replication.js';

const ddl = `create table big (id bigint primary key, v int not null, payload text);
             create table small (id int primary key, note text)`;

async function fill(db: FreshDatabase, rows: number): Promise<void> {
  await db.cluster.query(
    `insert into big select g, g % 1000, md5(g::text) from generate_series(1, $1::int) g;
     insert into small select g, 'note ' || g from generate_series(1, 100) g; analyze big`.replace(
      '$1::int',
      String(rows),
    ),
    [],
    db.name,
  );
}

interface Writers {
  /** Stop; resolves with the statements committed and the slowest one's latency in ms. */
  stop(): Promise<{ statements: number; maxLatencyMs: number }>;
}

/** `count` clients updating, inserting and deleting rows of `big` (and `small`) as fast as they can. */
function writers(url: string, count: number, rows: number): Writers {
  let running = true;
  let statements = 0;
  let maxLatencyMs = 0;
  const one = async (w: number): Promise<void> => {
    const db = new pg.Client({ connectionString: url, application_name: `writer-${w}` });
    db.on('error', () => undefined);
    await db.connect();
    let next = rows + 1 + w * 10_000_000;
    try {
      while (running) {
        const id = 1 + Math.floor(Math.random() * rows);
        const pick = Math.random();
        const started = performance.now();
        if (pick < 0.6) await db.query('update big set v = v + 1 where id = $1', [id]);
        else if (pick < 0.8) await db.query(`insert into big values ($1, 0, 'new')`, [next++]);
        else if (pick < 0.9) await db.query('delete from big where id = $1', [id]);
        else await db.query('update small set note = note || $2 where id = $1', [1 + (id % 100), '+']);
        maxLatencyMs = Math.max(maxLatencyMs, performance.now() - started);
        statements++;
      }
    } finally {
      await db.end();
    }
  };
  const done = Promise.all(Array.from({ length: count }, (_, w) => one(w)));
  return {
    stop: async () => {
      running = false;
      await done;
      return { statements, maxLatencyMs };
    },
  };
}

async function expectTablesEqual(src: FreshDatabase, dst: FreshDatabase): Promise<void> {
  for (const table of ['big', 'small']) {
    const query = `select * from ${table}`;
    await expectSameRows({ url: src.url, query }, { url: dst.url, query }, 'id');
  }
}

async function databases(rows: number): Promise<{ src: FreshDatabase; b: FreshDatabase; c: FreshDatabase }> {
  const { src, one: b, two: c } = await sourceAndTwoTargets(ddl);
  await fill(src, rows);
  return { src, b, c };
}

function raw(src: FreshDatabase, targets: Record<string, unknown>[]): Record<string, unknown> {
  return { source: { url: src.url }, tables: ['big', 'small'], targets, metrics: { enabled: false } };
}

describe('initial sync', () => {
  it('copies 1M rows to a new target while 4 writers go on unblocked, then follows from the copy', async () => {
    const rows = 1_000_000;
    const { src, b } = await databases(rows);
    const config = makeConfig(raw(src, [{ name: 'b', url: b.url }])); // initialSync: copy by default
    const load = writers(src.url, 4, rows);
    const started = performance.now();
    const daemon = await startDaemon(config);
    let sawSyncing = false;
    await waitFor(
      async () => {
        const status = await withClient(src.url, (client) => readStatus(client, config));
        const state = status.targets[0]!.state;
        sawSyncing ||= state === 'syncing';
        return sawSyncing && state !== 'syncing';
      },
      { what: 'the copy to run and finish', timeoutMs: 120_000, intervalMs: 100 },
    );
    const copySeconds = (performance.now() - started) / 1000;
    const { statements, maxLatencyMs } = await load.stop();
    await waitCaughtUp(config, 60_000);
    await expectTablesEqual(src, b);
    const file = await configFile(raw(src, [{ name: 'b', url: b.url }]));
    const verify = await runCli(file, 'verify', 'b', '--json');
    expect(verify.code).toBe(0);
    expect(JSON.parse(verify.out)).toMatchObject({ equal: true });
    console.log(
      `sync of ${rows} rows: ${copySeconds.toFixed(1)} s until live; writers committed ${statements} ` +
        `statements meanwhile, the slowest took ${maxLatencyMs.toFixed(0)} ms`,
    );
    expect(statements).toBeGreaterThan(1000);
    expect(maxLatencyMs).toBeLessThan(1_000);
    expect(await conflictsCounted(daemon)).toBe(0);
    await daemon.stop();
  }, 240_000);

  it('copies a target added to the config at the next start, and leaves the existing target undisturbed', async () => {
    const { src, b, c } = await databases(20_000);
    const first = makeConfig(raw(src, [{ name: 'b', url: b.url }]));
    let daemon = await startDaemon(first);
    await waitCaughtUp(first, 60_000);
    await daemon.stop();

    const load = writers(src.url, 2, 20_000);
    const second = makeConfig(
      raw(src, [
        { name: 'b', url: b.url },
        { name: 'c', url: c.url },
      ]),
    );
    const copiesOnB = () =>
      b.cluster.query(`select relid, copied_at::text from trigsync.table_floor order by relid`, [], b.name);
    const bBefore = await copiesOnB();
    daemon = await startDaemon(second);
    await waitFor(
      async () => {
        const request = await src.cluster.query<{ pending: boolean }>(
          `select sync_tables is not null as pending from trigsync.target where name = 'c'`,
          [],
          src.name,
        );
        return request[0]?.pending === false;
      },
      { what: 'c to be copied', timeoutMs: 60_000 },
    );
    await load.stop();
    await waitCaughtUp(second, 60_000);
    await expectTablesEqual(src, b);
    await expectTablesEqual(src, c);
    // b was not copied again: its floors (if the position has not dropped them yet) are the first copy's.
    const bAfter = await copiesOnB();
    expect(bAfter.length).toBeLessThanOrEqual(bBefore.length);
    for (const floor of bAfter) expect(bBefore).toContainEqual(floor);
    expect(await conflictsCounted(daemon)).toBe(0);
    await daemon.stop();
  }, 120_000);

  it('starts over cleanly when the daemon is killed during the copy', async () => {
    const { src, b } = await databases(400_000);
    const rawConfig = raw(src, [{ name: 'b', url: b.url }]);
    const config = makeConfig(rawConfig);
    const child = await ChildDaemon.create(rawConfig);
    const load = writers(src.url, 2, 400_000);
    // Hold the second table: the copy fills big in its target transaction, then waits for small.
    const blocker = new pg.Client({ connectionString: b.url });
    await blocker.connect();
    await blocker.query('begin; lock table small in access share mode');
    await child.start();
    await waitFor(
      async () => {
        const waiting = await b.cluster.query<{ n: number }>(
          `select count(*)::int as n from pg_stat_activity
            where datname = $1 and application_name = 'trigsync' and wait_event_type = 'Lock'`,
          [b.name],
        );
        return waiting[0]!.n === 1;
      },
      { what: 'the copy to have filled big and wait for small', timeoutMs: 60_000, intervalMs: 50 },
    );
    await child.kill();
    await blocker.query('commit');
    await blocker.end();
    // Nothing of the cut copy is visible on the target: its transaction never committed.
    expect(await b.cluster.query('select count(*)::int as n from big', [], b.name)).toEqual([{ n: 0 }]);
    await child.start();
    await waitFor(
      async () => (await withClient(src.url, (c) => readStatus(c, config))).targets[0]!.state !== 'syncing',
      { what: 'the copy to finish after the restart', timeoutMs: 120_000 },
    );
    await load.stop();
    await waitCaughtUp(config, 60_000);
    await expectTablesEqual(src, b);
    expect(await child.stop()).toBe(0);
  }, 240_000);

  it('`sync TARGET --table T` recopies one table of a live target; the other tables keep following', async () => {
    const { src, b } = await databases(50_000);
    // A row of small that no writer touches (they update ids 1 to 100): only a copy of small brings it.
    await src.cluster.query(`insert into small values (1000, 'untouched')`, [], src.name);
    const rawConfig = raw(src, [{ name: 'b', url: b.url, initialSync: 'none' }]);
    const config = makeConfig(rawConfig);
    // b starts empty and follows from now: it lacks the rows that existed before until a sync.
    const file = await configFile(rawConfig);
    const daemon = await startDaemon(config);
    const load = writers(src.url, 2, 50_000);
    const synced = await runCli(file, 'sync', 'b', '--table', 'big');
    expect(synced.code).toBe(0);
    expect(synced.out).toMatch(/sync of public\.big to b done/);
    await load.stop();
    await waitCaughtUp(config, 60_000);
    // big was copied whole; small was never copied, and holds only rows that changes brought (b started
    // without small's rows: the writers' updates brought those they touched, never row 1000).
    await expectSameRows(
      { url: src.url, query: 'select * from big' },
      { url: b.url, query: 'select * from big' },
      'id',
    );
    const untouched = await b.cluster.query('select * from small where id > 100', [], b.name);
    expect(untouched).toEqual([]);
    expect((await runCli(file, 'sync', 'b', '--table', 'nosuch')).code).toBe(2);
    await daemon.stop();
  }, 120_000);

  it('a copy the target refuses parks it with the table, the constraint and the way out; `sync` and `errors` say so', async () => {
    // The target's child table references a parent that trigsync does not replicate, and lacks.
    const { src, one } = await sourceAndTwoTargets(
      `create table parent (id int primary key);
       create table child (id int primary key, parent_id int not null references parent);`,
    );
    await src.cluster.query(
      `insert into parent select generate_series(1, 10); insert into child select g, 1 + g % 10 from generate_series(1, 100) g`,
      [],
      src.name,
    );
    // A role that cannot set session_replication_role: the target checks its foreign keys as rows land.
    const role = uniqueName('copy_apply');
    await createRole(one.cluster, role, 'copy apply');
    await one.cluster.query(
      `grant create on database ${ident(one.name)} to ${ident(role)};
       grant select, insert, update, delete, truncate on parent, child to ${ident(role)}`,
      [],
      one.name,
    );
    const targetUrl = one.cluster.url(one.name, { user: role, password: 'copy apply' });
    const raw = {
      source: { url: src.url },
      tables: ['child'],
      targets: [{ name: 'b', url: targetUrl, initialSync: 'copy' }],
      apply: { pollIntervalMs: 100 },
      retry: { initialDelayMs: 100, maxDelayMs: 1_000, dataErrorDelayMs: 60_000 },
      metrics: { enabled: false },
    };
    const config = makeConfig(raw);
    const file = await configFile(raw);
    const daemon = await startDaemon(config);
    const synced = await runCli(file, 'sync', 'b');
    expect(synced.code, synced.out).toBe(1);
    expect(synced.out).toContain(
      'sync of every table to b failed: copy to target b: copying public.child failed',
    );
    expect(synced.out).toContain('foreign key child_parent_id_fkey of child refuses the copy');
    expect(synced.out).toContain('`trigsync retry b`');
    const status = await withClient(src.url, (c) => readStatus(c, config));
    expect(status.targets[0]).toMatchObject({ state: 'parked', errorQueue: 0 });
    expect(status.targets[0]!.lastError).toContain('child_parent_id_fkey');
    const errors = await runCli(file, 'errors');
    expect(errors.out).toMatch(
      /^b {2}parked since \S+, not by a change\n {4}copy to target b: copying public\.child/,
    );

    // The way out: the parents on the target, then a retry; the copy goes through.
    await one.cluster.query('insert into parent select generate_series(1, 10)', [], one.name);
    expect((await runCli(file, 'retry', 'b')).code).toBe(0);
    // The parked target's backlog is 0 already: caught up is not enough, the copy must be done.
    await waitFor(
      async () => {
        const target = await targetStatus(config, 'b');
        return target.state !== 'parked' && target.copying === null;
      },
      { what: 'the retried copy to finish', timeoutMs: 30_000 },
    );
    await waitCaughtUp(config, 30_000);
    await expectSameRows(
      { url: src.url, query: 'select * from child' },
      { url: targetUrl, query: 'select * from child' },
      'id',
    );
    await daemon.stop();
  });
});
