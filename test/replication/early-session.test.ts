// A start's workers begin their target sessions while the leader installs on the source
// (src/worker/early-session.ts): on a far target those round trips no longer wait for the install. Where
// the source is installed as the config installs it (src/capture/install-digest.ts), they apply beside it.
import type pg from 'pg';
import { describe, expect, it } from 'vitest';

import { installedAsConfigured } from '../../src/capture/install-digest.js';
import { describeSourceTables } from '../../src/capture/source-tables.js';
import { uncaptureTables } from '../../src/capture/table-set.js';
import type { Config } from '../../src/config/types.js';
import { installSource } from '../../src/operator/install-source.js';
import { withClient } from '../support/cluster.js';
import { freshDatabase, sharedClusters, waitFor, type PgCluster } from '../support/fixtures.js';
import {
  caughtUpPair,
  expectSameItems,
  makeConfig,
  startDaemon,
  waitCaughtUp,
} from '../support/replication.js';

/** Holds the lock the install takes first (src/capture/install.ts lockCapture) while `work` runs. */
async function withInstallHeld(config: Config, url: string, work: () => Promise<void>): Promise<void> {
  await withClient(url, async (holder) => {
    await holder.query('begin');
    await holder.query(`select pg_advisory_xact_lock(hashtext('trigsync capture'), hashtext($1))`, [
      config.schema,
    ]);
    try {
      await work();
    } finally {
      await holder.query('commit');
    }
  });
}

async function installWaits(cluster: PgCluster, database: string): Promise<boolean> {
  const found = await cluster.query<{ n: number }>(
    `select count(*)::int as n from pg_stat_activity
      where datname = $1 and application_name = 'trigsync' and wait_event = 'advisory'`,
    [database],
  );
  return found[0]!.n === 1;
}

describe("a start's target sessions", () => {
  it('start on the target, its apply lock taken, while the install waits; then apply as usual', async () => {
    const { src, dst, config } = await caughtUpPair();
    await src.cluster.query(
      `insert into items select g, 'backlog' from generate_series(1, 500) g`,
      [],
      src.name,
    );

    // The install takes this lock first (src/capture/install.ts lockCapture): held here, it waits.
    await withClient(src.url, async (holder) => {
      await holder.query('begin');
      await holder.query(`select pg_advisory_xact_lock(hashtext('trigsync capture'), hashtext($1))`, [
        config.schema,
      ]);
      const starting = startDaemon(config);
      starting.catch(() => undefined);
      const trigsyncSessions = async (cluster: PgCluster, database: string, where: string) =>
        (
          await cluster.query<{ n: number }>(
            `select count(*)::int as n from pg_stat_activity a
              where a.datname = $1 and a.application_name = 'trigsync' and ${where}`,
            [database],
          )
        )[0]!.n;
      await waitFor(
        async () => (await trigsyncSessions(src.cluster, src.name, `a.wait_event = 'advisory'`)) === 1,
        { what: 'the install to wait for the capture lock' },
      );
      // The worker's apply lock on the target (src/apply/target-lock.ts), taken by its session's start.
      await waitFor(
        async () =>
          (await trigsyncSessions(
            dst.cluster,
            dst.name,
            `exists (select from pg_locks l where l.pid = a.pid and l.locktype = 'advisory' and l.granted
                        and l.classid = hashtext('trigsync apply')::oid)`,
          )) === 1,
        { what: 'the target session to start while the install waits' },
      );
      expect(await trigsyncSessions(src.cluster, src.name, `a.wait_event = 'advisory'`)).toBe(1);
      await holder.query('commit');
      const daemon = await starting;
      await waitCaughtUp(config);
      await daemon.stop();
    });
    await expectSameItems(src.url, dst.url);
  });

  it('apply a backlog while the install waits, where the source is installed as configured', async () => {
    const { src, dst, config } = await caughtUpPair();
    await src.cluster.query(
      `insert into items select g, 'backlog' from generate_series(1, 500) g`,
      [],
      src.name,
    );
    let starting: Promise<unknown> | undefined;
    await withInstallHeld(config, src.url, async () => {
      starting = startDaemon(config);
      starting.catch(() => undefined);
      await waitFor(() => installWaits(src.cluster, src.name), {
        what: 'the install to wait for the capture lock',
      });
      // The whole backlog, while the install still waits.
      await waitFor(
        async () =>
          (await dst.cluster.query<{ n: number }>('select count(*)::int as n from items', [], dst.name))[0]!
            .n === 500,
        { what: 'the backlog on the target while the install waits' },
      );
      expect(await installWaits(src.cluster, src.name)).toBe(true);
    });
    const daemon = (await starting) as Awaited<ReturnType<typeof startDaemon>>;
    await src.cluster.query(`insert into items values (501, 'after the install')`, [], src.name);
    await waitCaughtUp(config);
    await daemon.stop();
    await expectSameItems(src.url, dst.url);
  });

  it("read the target's catalog for their plans while the source is checked", async () => {
    const { src, dst, config } = await caughtUpPair();
    await src.cluster.query(`insert into items values (501, 'backlog')`, [], src.name);
    // The check's first read of the source (src/capture/migrations.ts) waits behind this lock.
    await withClient(src.url, async (holder) => {
      await holder.query('begin');
      await holder.query(`lock table "${config.schema}".schema_version in access exclusive mode`);
      const starting = startDaemon(config);
      starting.catch(() => undefined);
      const checkWaits = async () =>
        (
          await src.cluster.query<{ n: number }>(
            `select count(*)::int as n from pg_stat_activity
              where datname = $1 and application_name = 'trigsync' and wait_event_type = 'Lock'`,
            [src.name],
          )
        )[0]!.n === 1;
      await waitFor(checkWaits, { what: 'the check to wait for the schema_version lock' });
      // The plan's reads end with the guards' (src/apply/plan-keeper.ts readForPlan), the only statement
      // of a worker's target session that reads pg_trigger's arguments.
      await waitFor(
        async () =>
          (
            await dst.cluster.query<{ n: number }>(
              `select count(*)::int as n from pg_stat_activity
                where datname = $1 and application_name = 'trigsync' and state = 'idle'
                  and query like '%tgargs%'`,
              [dst.name],
            )
          )[0]!.n === 1,
        { what: "the plan's reads on the target while the check waits" },
      );
      expect(await checkWaits()).toBe(true);
      await holder.query('commit');
      const daemon = await starting;
      await waitCaughtUp(config);
      await daemon.stop();
    });
    await expectSameItems(src.url, dst.url);
  });

  it('of a daemon that stands by are closed: it opened them before it knew', async () => {
    const { dst, config } = await caughtUpPair();
    const sessions = async () =>
      (
        await dst.cluster.query<{ n: number }>(
          `select count(*)::int as n from pg_stat_activity where datname = $1 and application_name = 'trigsync'`,
          [dst.name],
        )
      )[0]!.n;
    const leader = await startDaemon(config);
    await waitCaughtUp(config);
    const leaders = await sessions();
    const standby = await startDaemon(config);
    expect(standby.isLeader).toBe(false);
    await waitFor(async () => (await sessions()) === leaders, {
      what: "the standby's target connection closed",
    });
    await standby.stop();
    await leader.stop();
  });
});

describe('the source installed as configured', () => {
  async function installedAs(client: pg.Client, config: Config): Promise<boolean> {
    const { tables } = await describeSourceTables(client, config);
    return installedAsConfigured(client, config, tables);
  }

  it('is so after an install of the same config only', async () => {
    const { source, target1 } = sharedClusters();
    const [src, dst, other] = await Promise.all([
      freshDatabase(source),
      freshDatabase(target1),
      freshDatabase(target1),
    ]);
    await source.query(
      'create table items (id int primary key, v text); create table extra (id int primary key)',
      [],
      src.name,
    );
    const configOf = (tables: string[], targets: { name: string; url: string }[]) =>
      makeConfig({
        source: { url: src.url },
        tables,
        targets: targets.map((t) => ({ ...t, initialSync: 'none' })),
        metrics: { enabled: false },
      });
    const both = configOf(['items', 'extra'], [{ name: 'dst', url: dst.url }]);
    const items = configOf(['items'], [{ name: 'dst', url: dst.url }]);
    await withClient(src.url, async (client) => {
      await installSource(client, both);
      expect(await installedAs(client, both)).toBe(true);
      // The same tables and targets at another URL: the install would register nothing new.
      expect(await installedAs(client, configOf(['items', 'extra'], [{ name: 'dst', url: other.url }]))).toBe(
        true,
      );
      // A target more, a table less: not until installed.
      expect(
        await installedAs(
          client,
          configOf(
            ['items', 'extra'],
            [
              { name: 'dst', url: dst.url },
              { name: 'more', url: other.url },
            ],
          ),
        ),
      ).toBe(false);
      expect(await installedAs(client, items)).toBe(false);
      await installSource(client, items);
      expect(await installedAs(client, items)).toBe(true);
      expect(await installedAs(client, both)).toBe(false);
      // `uninstall --table` changes the registry outside an install.
      await uncaptureTables(client, items, [{ schema: 'public', name: 'extra' }]);
      expect(await installedAs(client, items)).toBe(false);
      await installSource(client, items);
      // A table made anew is new to every target.
      await client.query('drop table items; create table items (id int primary key, v text)');
      expect(await installedAs(client, items)).toBe(false);
    });
  });
});
