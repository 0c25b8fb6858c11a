// The set of captured tables (issue #18, point 3): a leader captures the tables of its config and leaves
// the capture of tables it does not know in place, so two daemons with different tables on one source,
// or a table removed from the config and added back, lose no change; a target that takes a table it
// could not follow all along is reported with the command that copies it; only `uninstall` removes
// capture, whole or by table.
import { describe, expect, it } from 'vitest';

import type { Config } from '../../src/config/types.js';
import type { Daemon } from '../../src/daemon/daemon.js';
import type { Status } from '../../src/lib/status-report.js';
import { readStatus } from '../../src/changelog/status.js';
import { withClient } from '../support/cluster.js';
import { connect, sourceAndTwoTargets, waitFor, type FreshDatabase } from '../support/fixtures.js';
import { delay } from '../support/wait.js';
import {
  collectingLogger,
  configFile,
  expectSameRows,
  fingerprint,
  makeConfig,
  runCli,
  startDaemon,
  waitCaughtUp,
} from '../support/replication.js';

const schema = `
  create table t1 (id int primary key, v text);
  create table t2 (id int primary key, v text) partition by range (id);
  create table t2_low partition of t2 for values from (minvalue) to (1000);
  create table t2_high partition of t2 for values from (1000) to (maxvalue);
  create table t3 (id int primary key, v text);`;

async function databases(): Promise<{ src: FreshDatabase; one: FreshDatabase; two: FreshDatabase }> {
  return sourceAndTwoTargets(schema);
}

/**
 * The raw config (as a file would hold it) of a daemon capturing `tables` for the targets given; a
 * target copies its tables first unless told `none`.
 */
function raw(
  src: FreshDatabase,
  tables: string[],
  targets: Record<string, { db: FreshDatabase; tables?: string[]; initialSync?: 'none' }>,
): Record<string, unknown> {
  return {
    source: { url: src.url },
    tables,
    targets: Object.entries(targets).map(([name, t]) => ({
      name,
      url: t.db.url,
      initialSync: t.initialSync ?? 'copy',
      ...(t.tables === undefined ? {} : { tables: t.tables }),
    })),
    apply: { pollIntervalMs: 200 },
    retry: { initialDelayMs: 100, maxDelayMs: 1000 },
    metrics: { enabled: false },
  };
}

/** Inserts, updates and deletes on each table named, by a client (captured). */
async function write(src: FreshDatabase, tables: string[], tag: string): Promise<void> {
  for (const t of tables) {
    await src.cluster.query(
      `insert into ${t} select m + g * 37, '${tag}' from (select coalesce(max(id), 0) as m from ${t}) x,
         generate_series(1, 30) g;
       update ${t} set v = v || '+${tag}' where id % 3 = 0;
       delete from ${t} where id % 7 = 0 and v not like '%+%';`,
      [],
      src.name,
    );
  }
}

async function expectTablesEqual(src: FreshDatabase, dst: FreshDatabase, tables: string[]): Promise<void> {
  for (const t of tables) {
    await expectSameRows(
      { url: src.url, query: `select * from ${t}` },
      { url: dst.url, query: `select * from ${t}` },
      'id',
    );
  }
}

function status(config: Config): Promise<Status> {
  return withClient(config.source.url, (client) => readStatus(client, config));
}

/** Capture triggers of trigsync's schema on each table given, by table. */
async function captureTriggers(src: FreshDatabase, tables: string[]): Promise<Record<string, number>> {
  const rows = await src.cluster.query<{ t: string; n: number }>(
    `select t, (select count(*)::int from pg_trigger where tgrelid = t::regclass and tgname like 'trigsync_capture_%') as n
       from unnest($1::text[]) t`,
    [tables],
    src.name,
  );
  return Object.fromEntries(rows.map((r) => [r.t, r.n]));
}

/** Until this daemon leads and its term's install is done (the leader's row is written after it). */
async function leads(daemon: Daemon, config: Config): Promise<void> {
  await waitFor(async () => daemon.isLeader && (await status(config)).leader !== null, {
    what: 'the daemon to lead',
    timeoutMs: 20_000,
  });
}

/** A command that must succeed; its output. */
async function succeeds(file: string, ...args: string[]): Promise<string> {
  const { code, out } = await runCli(file, ...args);
  expect(code, out).toBe(0);
  return out;
}

const warnings = (lines: string[]): string[] =>
  lines
    .map((l) => JSON.parse(l) as { level: number; msg: string })
    .filter((l) => l.level === 40)
    .map((l) => l.msg);

describe('the set of captured tables', () => {
  it('two daemons with different tables on one source: each leader keeps the other tables captured, nothing is lost', async () => {
    const { src, one, two } = await databases();
    const a = makeConfig(raw(src, ['t1', 't2', 't3'], { a: { db: one, initialSync: 'none' } }));
    const b = makeConfig(raw(src, ['t1', 't3'], { b: { db: two } }));
    const all = ['t1', 't2', 't3'];

    const first = await startDaemon(a);
    await write(src, all, 'a1');
    await waitCaughtUp(a);
    const logged = collectingLogger();
    const second = await startDaemon(b, logged.logger);
    expect(second.isLeader).toBe(false);
    await first.stop();
    await leads(second, b);

    // B's install kept t2's capture (and its partitions'), and said so.
    expect(await captureTriggers(src, [...all, 't2_low', 't2_high'])).toEqual({
      t1: 4,
      t2: 4,
      t3: 4,
      t2_low: 4,
      t2_high: 4,
    });
    expect(warnings(logged.lines)).toContainEqual(
      expect.stringContaining(
        'captured, not in this config: public.t2 (captured by another config or removed from this one; ' +
          'triggers kept; `trigsync uninstall --table public.t2 --yes` removes them)',
      ),
    );
    expect((await status(b)).notInConfig).toEqual(['public.t2']);
    await write(src, all, 'b1');
    await src.cluster.query(`insert into t2 values (5000, 'to t2_high by its name')`, [], src.name);
    await src.cluster.query(`insert into t2_low values (998, 'by the partition name')`, [], src.name);
    await waitCaughtUp(b);

    // A again: its target gets what was written to t2 while B led.
    const again = await startDaemon(a);
    await second.stop();
    await leads(again, a);
    await write(src, all, 'a2');
    await waitCaughtUp(a);
    await expectTablesEqual(src, one, all);
    expect((await status(a)).targets.find((t) => t.name === 'a')?.toCopy).toEqual([]);

    // And B again: its target, removed from the registry meanwhile, resumes where it was.
    const last = await startDaemon(b);
    await again.stop();
    await leads(last, b);
    await waitCaughtUp(b);
    await expectTablesEqual(src, two, ['t1', 't3']);
    await last.stop();
  });

  it('a table removed from the config and added back: its changes arrive, or the gap is reported with the fix', async () => {
    const { src, one } = await databases();
    // initialSync none: the gap is reported; a copy target copies it by itself (the next test).
    const both = raw(src, ['t1', 't3'], { a: { db: one, initialSync: 'none' } });
    const without = raw(src, ['t1'], { a: { db: one, initialSync: 'none' } });
    const withFile = await configFile(both);
    const withoutFile = await configFile(without);
    const config = makeConfig(both);

    let daemon = await startDaemon(config);
    await write(src, ['t1', 't3'], 'first');
    await waitCaughtUp(config);
    await daemon.stop();

    // Removed while no daemon applies: t3 stays captured, and its changes wait in the log.
    expect(await succeeds(withoutFile, 'install')).toContain(
      'source: captured, not in this config: public.t3',
    );
    await write(src, ['t1', 't3'], 'removed');
    expect(await succeeds(withFile, 'install')).not.toContain('may lack');
    daemon = await startDaemon(config);
    await waitCaughtUp(config);
    await expectTablesEqual(src, one, ['t1', 't3']);
    await daemon.stop();

    // Removed while the daemon applies: the target's position moves past t3's changes. Taking t3 again
    // is reported, in the install, the daemon's log, status and check, until a copy of t3 is done.
    const narrow = makeConfig(without);
    daemon = await startDaemon(narrow);
    await write(src, ['t1', 't3'], 'skipped');
    await waitCaughtUp(narrow);
    await daemon.stop();
    const logged = collectingLogger();
    daemon = await startDaemon(config, logged.logger);
    const fix = 'copy it with `trigsync sync a --table public.t3`';
    expect(warnings(logged.lines)).toContainEqual(
      expect.stringMatching(
        /^target a may lack rows or changes of public\.t3 from before \S+ \(it did not take/,
      ),
    );
    expect(warnings(logged.lines).join('\n')).toContain(fix);
    const gap = (await status(config)).targets.find((t) => t.name === 'a')!.toCopy;
    expect(gap.map((g) => g.table)).toEqual(['public.t3']);
    const checked = await runCli(withFile, 'status', '--check');
    expect(checked.code).toBe(1);
    expect(checked.out).toContain(fix);
    expect((await runCli(withFile, 'check')).out).toContain(fix);

    await succeeds(withFile, 'sync', 'a', '--table', 'public.t3');
    await waitCaughtUp(config);
    await expectTablesEqual(src, one, ['t1', 't3']);
    expect((await status(config)).targets.find((t) => t.name === 'a')!.toCopy).toEqual([]);
    await daemon.stop();
  });

  it('a table removed from the config: what the log holds of it then still reaches the target, nothing later', async () => {
    const { src, one } = await databases();
    const both = makeConfig(raw(src, ['t1', 't3'], { a: { db: one, initialSync: 'none' } }));
    const narrow = makeConfig(raw(src, ['t1'], { a: { db: one, initialSync: 'none' } }));
    let daemon = await startDaemon(both);
    await write(src, ['t1', 't3'], 'first');
    await waitCaughtUp(both);
    await daemon.stop();

    // Written while no daemon runs: in the log when the next start finds t3 gone from the config.
    await write(src, ['t1', 't3'], 'pending');
    const atRemoval = await fingerprint(src.url, 'select * from t3');
    const logged = collectingLogger();
    daemon = await startDaemon(narrow, logged.logger);
    await write(src, ['t1', 't3'], 'after');
    await waitCaughtUp(narrow);
    const said = (text: string) => logged.lines.some((l) => l.includes(text));
    await waitFor(
      () => Promise.resolve(said('removed from the config: its changes up to the removal are applied')),
      {
        what: 'the drain of t3 to end',
        timeoutMs: 20_000,
      },
    );
    expect(said('public.t3 removed from its tables; its changes already in the log are still applied')).toBe(
      true,
    );
    expect(await fingerprint(one.url, 'select * from t3')).toEqual(atRemoval);
    expect(await fingerprint(src.url, 'select * from t3')).not.toEqual(atRemoval);
    await expectTablesEqual(src, one, ['t1']);
    await daemon.stop();

    // Drained: the next start applies nothing more of it.
    const again = collectingLogger();
    daemon = await startDaemon(narrow, again.logger);
    await write(src, ['t3'], 'later still');
    await waitCaughtUp(narrow);
    expect(again.lines.some((l) => l.includes('public.t3 removed from its tables'))).toBe(false);
    expect(await fingerprint(one.url, 'select * from t3')).toEqual(atRemoval);
    await daemon.stop();
  });

  it('a table added to the config with rows: the next start copies it to every copy target while the other tables keep flowing', async () => {
    const { src, one, two } = await databases();
    // The copy of t3 takes at least 3 s on each target, however fast the machine: long enough to see
    // the other tables flow beside it (an ALWAYS trigger fires for trigsync's COPY too).
    for (const db of [one, two]) {
      await db.cluster.query(
        `create function slow_copy() returns trigger language plpgsql as $$ begin perform pg_sleep(3); return null; end $$;
         create trigger slow_copy after insert on t3 for each statement execute function slow_copy();
         alter table t3 enable always trigger slow_copy;`,
        [],
        db.name,
      );
    }
    const rows = 50_000;
    await src.cluster.query(
      `insert into t3 select g, repeat('x', 100) || g from generate_series(1, ${rows}) g`,
      [],
      src.name,
    );
    const targets = { a: { db: one }, b: { db: two } };
    const before = makeConfig(raw(src, ['t1', 't2'], targets));
    let daemon = await startDaemon(before);
    await write(src, ['t1', 't2'], 'before');
    await waitCaughtUp(before);
    await daemon.stop();

    // A writer on t1 all along; lag and t1's rows on each target sampled while t3 is being copied.
    const config = makeConfig(raw(src, ['t1', 't2', 't3'], targets));
    let writing = true;
    const writer = (async () => {
      const db = await connect(src.url);
      for (let id = 1_000_000; writing; id++) {
        await db.query(`insert into t1 values ($1, 'during the copy')`, [id]);
        await delay(20);
      }
      await db.end();
    })();
    const logged = collectingLogger();
    daemon = await startDaemon(config, logged.logger);
    const samples: { lag: number; t1: number[] }[] = [];
    const copyStarted = Date.now();
    const copying = async () =>
      (
        await src.cluster.query<{ n: number }>(
          `select count(*)::int as n from trigsync.target where sync_tables is not null`,
          [],
          src.name,
        )
      )[0]!.n > 0;
    while (await copying()) {
      const { targets: st } = await status(config);
      const t1 = await Promise.all(
        [one, two].map(
          async (db) =>
            (await db.cluster.query<{ n: number }>(`select count(*)::int as n from t1`, [], db.name))[0]!.n,
        ),
      );
      samples.push({ lag: Math.max(...st.map((t) => t.lagSeconds)), t1 });
      await delay(100);
    }
    const copySeconds = (Date.now() - copyStarted) / 1000;
    writing = false;
    await writer;
    await waitCaughtUp(config);
    await daemon.stop();
    await expectTablesEqual(src, one, ['t1', 't2', 't3']);
    await expectTablesEqual(src, two, ['t1', 't2', 't3']);
    const copied = logged.lines.filter((l) => l.includes('copies public.t3, which it takes anew'));
    expect(copied, 'the daemon said it copies t3 to both targets').toHaveLength(2);
    // The copy took several samples, during which t1 kept arriving on both targets within 2 s.
    expect(copySeconds, 'the copy of t3 took its 3 s').toBeGreaterThan(3);
    expect(samples.length, 'samples taken while t3 was being copied').toBeGreaterThan(3);
    const grew = [0, 1].map((i) => samples.at(-1)!.t1[i]! > samples[0]!.t1[i]!);
    expect(grew, 't1 rows arrived on each target during the copy').toEqual([true, true]);
    const maxLag = Math.max(...samples.map((s) => s.lag));
    console.log(
      `table added with ${rows} rows: copied in ${copySeconds.toFixed(1)} s; the other tables' lag at most ${maxLag.toFixed(2)} s`,
    );
    expect(maxLag).toBeLessThan(2);
  });

  it('uninstall --table removes only the tables named, refuses one in the config or not captured; status and check name the others', async () => {
    const { src, one } = await databases();
    const wide = await configFile(raw(src, ['t1', 't2', 't3'], { a: { db: one } }));
    const narrow = await configFile(raw(src, ['t1'], { a: { db: one } }));
    await succeeds(wide, 'install');
    await succeeds(narrow, 'install');

    const advice =
      'captured, not in this config: public.t2, public.t3 (captured by another config or removed from ' +
      'this one; triggers kept; `trigsync uninstall --table public.t2 --table public.t3 --yes` removes them)';
    expect((await runCli(narrow, 'status')).out).toContain(advice);
    const json = JSON.parse((await runCli(narrow, 'status', '--json')).out) as Status;
    expect(json.notInConfig).toEqual(['public.t2', 'public.t3']);
    const checked = await runCli(narrow, 'check');
    expect(checked.code).toBe(0);
    expect(checked.out).toContain(`WARNING ${advice}`);

    const inConfig = await runCli(narrow, 'uninstall', '--table', 'public.t1', '--yes');
    expect(inConfig.code).toBe(2);
    expect(inConfig.out).toContain(
      "public.t1: in this config's tables, so its leader captures them again; remove them from the config first",
    );
    await src.cluster.query('create table t4 (id int primary key)', [], src.name);
    const notCaptured = await runCli(narrow, 'uninstall', '--table', 't4', '--yes');
    expect(notCaptured.code).toBe(2);
    expect(notCaptured.out).toContain('public.t4: not captured by trigsync (schema trigsync) on this source');
    expect((await runCli(narrow, 'uninstall', '--table', 't2')).code).toBe(2);

    expect(await succeeds(narrow, 'uninstall', '--table', 't2', '--yes')).toContain(
      'source: removed the capture triggers of public.t2',
    );
    expect(await captureTriggers(src, ['t1', 't2', 't2_low', 't2_high', 't3'])).toEqual({
      t1: 4,
      t2: 0,
      t2_low: 0,
      t2_high: 0,
      t3: 4,
    });
    expect(JSON.parse((await runCli(narrow, 'status', '--json')).out)).toMatchObject({
      notInConfig: ['public.t3'],
    });

    // Captured again later, t2 is new to the target, which never had its rows or changes since: a copy
    // target has it copied (an initialSync none target is told the command, in the test before).
    await src.cluster.query(`insert into t2 values (1, 'not captured')`, [], src.name);
    const again = await succeeds(wide, 'install');
    expect(again).toContain('target a: the daemon copies public.t2, which it takes anew (initialSync: copy)');
    expect(again).not.toContain('public.t3, which');
    const [request] = await src.cluster.query<{ tables: string[] }>(
      `select sync_tables as tables from trigsync.target where name = 'a'`,
      [],
      src.name,
    );
    // The target's first copy (of every table, asked at its registration) is still pending: it takes t2 too.
    expect(request!.tables).toEqual([]);

    // A table that is not partitioned loses its triggers too.
    await succeeds(narrow, 'uninstall', '--table', 't3', '--yes');
    expect(await captureTriggers(src, ['t1', 't3'])).toEqual({ t1: 4, t3: 0 });
  });
});
