// Groups of daemons on one source (issue #20): each group leads its own targets, with its own leader
// and standbys; the capture, the log and pruning are shared. A daemon of one group never marks another
// group's target removed, never stops capturing a table another group lists, and never prunes what
// another group's target has not applied.
import { describe, expect, it } from 'vitest';

import type { Config } from '../../src/config/types.js';
import type { Daemon } from '../../src/daemon/daemon.js';
import type { Status } from '../../src/lib/status-report.js';
import { pruneLog } from '../../src/changelog/pruner.js';
import { readStatus } from '../../src/changelog/status.js';
import { withClient } from '../support/cluster.js';
import { sourceAndTwoTargets, waitFor, type FreshDatabase } from '../support/fixtures.js';
import {
  collectingLogger,
  configFile,
  expectSameRows,
  makeConfig,
  runCli,
  startDaemon,
  waitCaughtUp,
} from '../support/replication.js';
import { expectWorkloadConverged, runWorkload, workloadTables } from '../support/workload.js';

const ddl = `${workloadTables}
  create table only_us (id int primary key, v text);`;

/** The raw config of a daemon of `group` applying `tables` to one target. */
function groupRaw(
  group: string,
  src: FreshDatabase,
  tables: string[],
  target: { name: string; db: FreshDatabase },
): Record<string, unknown> {
  return {
    group,
    source: { url: src.url },
    tables,
    targets: [{ name: target.name, url: target.db.url, initialSync: 'none' }],
    apply: { pollIntervalMs: 200, batchSize: 200 },
    retry: { initialDelayMs: 100, maxDelayMs: 1000 },
    metrics: { enabled: false },
  };
}

function status(config: Config): Promise<Status> {
  return withClient(config.source.url, (client) => readStatus(client, config));
}

async function count(db: FreshDatabase, sql: string): Promise<number> {
  return (await db.cluster.query<{ n: number }>(sql, [], db.name))[0]!.n;
}

const logRows = (src: FreshDatabase) => count(src, 'select count(*)::int as n from trigsync.change_log');

async function applied(daemon: Daemon, target: string): Promise<number> {
  const { values } = await daemon.metrics.applied.get();
  return values.filter((v) => v.labels.target === target).reduce((n, v) => n + v.value, 0);
}

describe('groups of daemons on one source', () => {
  it('two groups apply each to its own target under concurrent writers; standbys per group; the log is kept for both', async () => {
    const { src, one: a, two: b } = await sourceAndTwoTargets(ddl);
    const usRaw = groupRaw('us', src, ['items', 'events', 'only_us'], { name: 'b', db: b });
    const eu = makeConfig(groupRaw('eu', src, ['items', 'events'], { name: 'a', db: a }));
    const us = makeConfig(usRaw);

    const usLeader = await startDaemon(us);
    const usStandby = await startDaemon(us);
    expect([usLeader.isLeader, usStandby.isLeader]).toEqual([true, false]);
    await src.cluster.query(
      `insert into only_us select g, 'before eu' from generate_series(1, 20) g`,
      [],
      src.name,
    );

    // Group eu's daemon leads at once (another lock), and its install leaves group us's table captured.
    let euDaemon = await startDaemon(eu);
    expect(euDaemon.isLeader).toBe(true);
    expect(
      await count(
        src,
        `select count(*)::int as n from pg_trigger where tgrelid = 'only_us'::regclass and tgname like 'trigsync_capture_%'`,
      ),
    ).toBe(4);
    const seen = await status(eu);
    expect(seen.notInConfig).toEqual([]);
    expect(seen.groups.map((g) => [g.name, g.leader !== null])).toEqual([
      ['eu', true],
      ['us', true],
    ]);
    expect(seen.targets.map((t) => [t.name, t.group, t.state === 'removed'])).toEqual([
      ['a', 'eu', false],
      ['b', 'us', false],
    ]);
    // One pruner for the source: the daemon whose pruner session holds the pruner's lock.
    const pruners = `select count(*)::int as n from pg_locks where locktype = 'advisory' and granted
                        and database = (select oid from pg_database where datname = current_database())
                        and classid = hashtext('trigsync pruner')::oid and objid = hashtext('trigsync')::oid`;
    await waitFor(async () => (await count(src, pruners)) === 1, { what: 'one pruner', timeoutMs: 20_000 });
    const refused = await runCli(
      await configFile(groupRaw('eu', src, ['items', 'events'], { name: 'a', db: a })),
      'uninstall',
      '--table',
      'only_us',
      '--yes',
    );
    expect(refused.code).toBe(2);
    expect(refused.out).toContain('public.only_us: in the tables of group us');
    const table = await runCli(await configFile(usRaw), 'status');
    expect(table.out).toMatch(/^GROUP\s+TARGET\s+STATE/m);
    expect(table.out).toMatch(/^leader of group eu: \S+ since /m);
    expect(table.out).toMatch(/^leader of group us: \S+ since /m);

    const load = runWorkload({
      url: src.url,
      writers: 4,
      lateCommitters: 1,
      durationMs: 8_000,
      minCommitted: 150,
      keys: 200,
    });
    await waitFor(async () => (await applied(euDaemon, 'a')) > 0 && (await applied(usLeader, 'b')) > 0, {
      what: 'both groups to apply',
      timeoutMs: 20_000,
    });
    // Group us's leader stops: its standby takes over while group eu goes on applying.
    const euBefore = await applied(euDaemon, 'a');
    await usLeader.stop();
    await waitFor(() => usStandby.isLeader, { what: "group us's standby to lead", timeoutMs: 20_000 });
    await src.cluster.query(
      `insert into only_us select g, 'during the load' from generate_series(21, 40) g`,
      [],
      src.name,
    );
    await waitFor(async () => (await applied(euDaemon, 'a')) > euBefore, {
      what: 'group eu to apply on',
      timeoutMs: 20_000,
    });
    expect(euDaemon.isLeader).toBe(true);
    expect((await load).committed).toBeGreaterThan(150);

    await waitCaughtUp(eu);
    await waitCaughtUp(us);
    await expectWorkloadConverged(src, [a, b]);
    const onlyUs = 'select * from only_us';
    await expectSameRows({ url: src.url, query: onlyUs }, { url: b.url, query: onlyUs }, 'id');
    expect(await count(a, 'select count(*)::int as n from only_us')).toBe(0);
    await waitFor(async () => (await logRows(src)) === 0, {
      what: 'the log to be pruned',
      timeoutMs: 20_000,
    });

    // No daemon of group us runs: what its target has not applied stays in the log, whoever prunes, and
    // group eu's daemons (a new term's install too) leave its target registered as it was.
    await usStandby.stop();
    await src.cluster.query(
      `insert into items select g, 0, 'us is down', null from generate_series(10001, 10050) g`,
      [],
      src.name,
    );
    await waitCaughtUp(eu);
    await euDaemon.stop();
    euDaemon = await startDaemon(eu);
    await src.cluster.query(`update items set v = v + 1 where id > 10000`, [], src.name);
    await waitCaughtUp(eu);
    await withClient(src.url, (client) => pruneLog(client, 'trigsync'));
    expect(await logRows(src)).toBeGreaterThanOrEqual(100);
    const held = (await status(eu)).targets.find((t) => t.name === 'b')!;
    expect(held).toMatchObject({ group: 'us', backlog: 100 });
    expect(held.state).not.toBe('removed');

    // Group us back: its target drains what it missed, and then the log is pruned.
    const usAgain = await startDaemon(us);
    await waitCaughtUp(us);
    await expectWorkloadConverged(src, [a, b]);
    await waitFor(async () => (await logRows(src)) === 0, {
      what: 'the log to be pruned',
      timeoutMs: 20_000,
    });
    await usAgain.stop();
    await euDaemon.stop();
  });

  it("a target is one group's: another group naming it is refused while its leader runs; a renamed group takes it over", async () => {
    const { src, one: a } = await sourceAndTwoTargets(ddl);
    const target = { name: 'a', db: a };
    const eu = makeConfig(groupRaw('eu', src, ['items'], target));
    const euDaemon = await startDaemon(eu);

    const us = makeConfig(groupRaw('us', src, ['items'], target));
    await expect(startDaemon(us)).rejects.toThrow(
      /target a: group eu's \(its leader \S+ applies to it\), not group us's: a target belongs to one group/,
    );
    const install = await runCli(await configFile(groupRaw('us', src, ['items'], target)), 'install');
    expect(install.code).toBe(2);
    expect(install.out).toContain("target a: group eu's");
    await src.cluster.query(`insert into items values (1, 1, 'eu', null)`, [], src.name);
    await waitCaughtUp(eu);
    await euDaemon.stop();

    // Group eu renamed europe: its first leader takes the target over, from its position.
    await src.cluster.query(`insert into items values (2, 2, 'between', null)`, [], src.name);
    const europe = makeConfig(groupRaw('europe', src, ['items'], target));
    const logged = collectingLogger();
    const europeDaemon = await startDaemon(europe, logged.logger);
    expect(logged.lines.some((l) => l.includes('target a: taken over from group eu'))).toBe(true);
    await src.cluster.query(`insert into items values (3, 3, 'europe', null)`, [], src.name);
    await waitCaughtUp(europe);
    const query = 'select * from items';
    await expectSameRows({ url: src.url, query }, { url: a.url, query }, 'id');
    const seen = await status(europe);
    expect(seen.targets.map((t) => [t.name, t.group])).toEqual([['a', 'europe']]);
    // Group eu, left without targets and leader, is forgotten.
    expect(seen.groups.map((g) => g.name)).toEqual(['europe']);
    await europeDaemon.stop();
  });
});
