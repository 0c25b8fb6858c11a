// Fan-out that reads the log once (issue 20): targets at the same position share the daemon's ticks and
// chunk reads (src/apply/shared-log.ts), and so do targets at different positions that see the same
// changes; each still gets exactly what the source holds, and a target that parks holds nobody back.
import pg from 'pg';
import { describe, expect, it } from 'vitest';

import type { Daemon } from '../../src/daemon/daemon.js';
import { freshDatabase, sharedClusters, type FreshDatabase } from '../support/fixtures.js';
import { withClient } from '../support/cluster.js';
import {
  configFile,
  fingerprint,
  makeConfig,
  runCli,
  startDaemon,
  targetStatus,
  waitCaughtUp,
} from '../support/replication.js';
import { loadRegisteredPosition } from '../../src/changelog/targets.js';
import { readStatus } from '../../src/changelog/status.js';
import { positionAt, takeTick, type Tick } from '../../src/changelog/window.js';
import { SharedLog } from '../../src/apply/shared-log.js';
import { waitFor } from '../support/wait.js';
import { FaultProxy } from '../support/fault-proxy.js';

const ddl = `create table items (id bigint primary key, v int not null, pad text)`;
const everything = 'select * from items';

/** Four targets on the two target clusters, each with `items` (and `extra` SQL on the first). */
async function setUp(extra = ''): Promise<{ src: FreshDatabase; targets: FreshDatabase[] }> {
  const { source, target1, target2 } = sharedClusters();
  const src = await freshDatabase(source);
  await source.query(ddl, [], src.name);
  const targets: FreshDatabase[] = [];
  for (const cluster of [target1, target2, target1, target2]) {
    const db = await freshDatabase(cluster);
    await cluster.query(`${ddl}; ${targets.length === 0 ? extra : ''}`, [], db.name);
    targets.push(db);
  }
  return { src, targets };
}

/** Targets t1.. on `targets`, or on the first `count` of them. */
function rawConfig(
  src: FreshDatabase,
  targets: FreshDatabase[],
  count = targets.length,
): Record<string, unknown> {
  return {
    source: { url: src.url },
    tables: ['public.items'],
    targets: targets
      .slice(0, count)
      .map((db, i) => ({ name: `t${i + 1}`, url: db.url, initialSync: 'none' })),
    // Small chunks: a backlog is many of them.
    apply: { pollIntervalMs: 200, batchSize: 100 },
    retry: { initialDelayMs: 100, maxDelayMs: 1000, dataErrorDelayMs: 200 },
  };
}

function configFor(
  src: FreshDatabase,
  targets: FreshDatabase[],
  count?: number,
): ReturnType<typeof makeConfig> {
  return makeConfig(rawConfig(src, targets, count));
}

/** `writers` sessions, each running `transactions` of inserts, updates and deletes, some multi-row. */
async function write(url: string, writers: number, transactions: number, seed: number): Promise<void> {
  await Promise.all(
    Array.from({ length: writers }, (_, w) =>
      withClient(url, async (db) => {
        for (let i = 0; i < transactions; i++) {
          const base = seed * 1_000_000 + w * 100_000 + i * 10;
          await db.query('begin');
          await db.query(
            `insert into items select g, g % 997, repeat('x', g % 50) from generate_series($1::int, $1::int + 4) g`,
            [base],
          );
          // Each writer's own rows only: rows of other writers, updated in another order, deadlock.
          await db.query(
            `update items set v = v + 1 where id between $1 and $1 + 4 and (id = $1 or id % 7 <> $2)`,
            [base, i % 7],
          );
          await db.query(`delete from items where id = $1`, [base + 2]);
          await db.query('commit');
        }
      }),
    ),
  );
}

async function expectEqual(src: FreshDatabase, targets: FreshDatabase[], rows = everything): Promise<void> {
  const expected = await fingerprint(src.url, rows);
  expect(expected.count).toBeGreaterThan(0);
  for (const [i, target] of targets.entries()) {
    expect(await fingerprint(target.url, rows), `target ${i + 1} of ${targets.length}`).toEqual(expected);
  }
}

/** The most changes the source counts as applied to any target. */
async function appliedChanges(src: FreshDatabase): Promise<number> {
  const rows = await src.cluster.query<{ n: number }>(
    'select max(applied_changes)::int as n from trigsync.target',
    [],
    src.name,
  );
  return rows[0]!.n;
}

function reads(daemon: Daemon): NonNullable<Daemon['logReads']> {
  return { ...daemon.logReads! };
}

describe('fan-out through one reading of the log', () => {
  it('shares ticks and chunks between targets at one position, each equal to the source', async () => {
    const { src, targets } = await setUp();
    const config = configFor(src, targets);
    // A backlog written while the daemon is stopped: every target starts from it at once.
    let daemon = await startDaemon(config);
    await waitCaughtUp(config);
    await daemon.stop();
    const before = await appliedChanges(src);
    await write(src.url, 3, 40, 1);
    daemon = await startDaemon(config);
    await waitCaughtUp(config);
    const backlog = reads(daemon);
    const backlogChanges = (await appliedChanges(src)) - before;
    // Then live writes from concurrent sessions: windows the workers open at their own paces.
    await write(src.url, 3, 60, 2);
    await waitCaughtUp(config);
    await expectEqual(src, targets);
    const counts = reads(daemon);
    await daemon.stop();
    expect(counts.ticksShared, JSON.stringify(counts)).toBeGreaterThan(0);
    // Each target applied the backlog; read apart, the source would have read it four times, and once
    // for all four it is read once. (Live windows are shared as their ticks are, which a busy machine
    // makes a matter of timing: the workers drift apart by a window and read it each, seen 2.6-3.5 times
    // over under the suite's load, so they are not counted here.)
    expect(backlog.changesRead, JSON.stringify(backlog)).toBeLessThan(1.5 * backlogChanges);
  });

  it('workers that end a window together open the next one to one tick', async () => {
    // Workers that share their chunks end their windows at once, and each then asks for a tick from the
    // same start while the latest one taken ends none of their next windows. All three must take one
    // tick, not one each: their windows, and so their chunks, would part from there on.
    const { src, targets } = await setUp();
    const config = configFor(src, targets, 1);
    const daemon = await startDaemon(config);
    await daemon.stop();
    // A session of the source for each of three workers, and one more.
    const sessions = await Promise.all(
      targets.map(async () => {
        const client = new pg.Client({ connectionString: src.url });
        client.on('error', () => undefined);
        await client.connect();
        return client;
      }),
    );
    // A long transaction elsewhere on the server holds every snapshot's xmin back meanwhile (the suite's
    // other files hold some open): a tick still ends a window from a start taken before it.
    const long = sessions.pop()!;
    await long.query('begin');
    await long.query('select pg_current_xact_id()');
    try {
      const log = new SharedLog(config.schema, 1 << 20);
      for (let i = 0; i < sessions.length; i++) log.register({});
      const first = sessions[0]!;
      // The latest tick the SharedLog took, from an earlier start...
      await log.tick(first, positionAt(await takeTick(first, config.schema)).from, false);
      // ...and a start taken after it, where every worker's next window begins.
      const from = positionAt(await takeTick(first, config.schema)).from;
      const before = { ...log.counts };
      const ticks: Tick[] = await Promise.all(sessions.map((session) => log.tick(session, from, false)));
      expect(new Set(ticks.map((t) => t.snapshot)).size, JSON.stringify(ticks)).toBe(1);
      expect(log.counts.ticksTaken - before.ticksTaken).toBe(1);
      expect(log.counts.ticksShared - before.ticksShared).toBe(sessions.length - 1);
    } finally {
      await Promise.all([...sessions, long].map((session) => session.end().catch(() => undefined)));
    }
  });

  it("reads a backlog window's catalog versions once, not once per chunk", async () => {
    const { src, targets } = await setUp();
    const config = configFor(src, targets, 1);
    let daemon = await startDaemon(config);
    await waitCaughtUp(config);
    await daemon.stop();
    // About 1,200 changes written while stopped: one window of a dozen chunks of 100 at the next start.
    await write(src.url, 3, 40, 3);
    daemon = await startDaemon(config);
    await waitCaughtUp(config);
    const counts = reads(daemon);
    await daemon.stop();
    await expectEqual(src, targets.slice(0, 1));
    expect(counts.chunksRead, JSON.stringify(counts)).toBeGreaterThanOrEqual(10);
    expect(counts.tableVersionsRead, JSON.stringify(counts)).toBe(1);
  });

  it('targets that start at different positions seeing the same changes read a backlog once', async () => {
    const { src, targets } = await setUp();
    // t1 and t2 apply some changes, and their position ends at a tick of that daemon's.
    const firstTwo = configFor(src, targets, 2);
    let daemon = await startDaemon(firstTwo);
    await write(src.url, 2, 10, 5);
    await waitCaughtUp(firstTwo);
    await daemon.stop();
    // t3 and t4 are registered later, each at a tick of its own: a start that sees what t1's sees.
    const all = configFor(src, targets);
    const install = await runCli(await configFile(rawConfig(src, targets)), 'install');
    expect(install.code, install.out).toBe(0);
    const froms = await withClient(src.url, (db) =>
      Promise.all(
        ['t1', 't3'].map(async (t) => (await loadRegisteredPosition(db, all.schema, t))!.position.from),
      ),
    );
    expect(froms[0]!.snapshot).not.toBe(froms[1]!.snapshot);
    // A backlog in front of both starts.
    await write(src.url, 3, 40, 6);
    daemon = await startDaemon(all);
    await waitCaughtUp(all);
    await expectEqual(src, targets.slice(0, 2));
    // t3 and t4 joined after the first writes, without a copy (initialSync none): they hold the
    // backlog's rows (seed 6) and none before.
    await expectEqual(src, targets.slice(2), 'select * from items where id >= 6000000');
    for (const target of targets.slice(2)) {
      expect((await fingerprint(target.url, 'select * from items where id < 6000000')).count).toBe(0);
    }
    const counts = reads(daemon);
    await daemon.stop();
    expect(counts.startsMerged, JSON.stringify(counts)).toBeGreaterThan(0);
    // Chunks read for one start are taken by targets of the other: with two starts read apart, none
    // would be. How many depends on how far the workers drift apart: on a calm machine each chunk is read
    // once for all four (3 shares a read), on a busy one a CI run saw 42 shares for 50 reads.
    expect(counts.chunksSharedAcrossStarts, JSON.stringify(counts)).toBeGreaterThan(0);
  });

  it("four targets' workers share one source connection", async () => {
    const { src, targets } = await setUp();
    const config = configFor(src, targets);
    const daemon = await startDaemon(config);
    await write(src.url, 2, 10, 12);
    await waitCaughtUp(config);
    // Counted by the daemon: the source's sessions of trigsync come and go with the status sampler,
    // the pruner and the capture watcher, each on a connection of its own and a schedule of its own.
    // That the leases of one connection are one backend: test/replication/shared-connection.test.ts.
    expect(daemon.workerSourceConnections).toBe(1);
    await expectEqual(src, targets);
    await daemon.stop();
  });

  it('targets whose first chunks grow at different paces still read a backlog once', async () => {
    // t4 is behind a proxy that adds 3 ms each way: a long link, whose second chunk is a whole one,
    // where the others' grow from 256 changes to 512 and then 1,000 (ChunkRamp). Their chunks start at
    // other ids from the second on: only chunks taken whatever the limits they were read under bring
    // t4 and the others to the same ones.
    const { src, targets } = await setUp();
    const proxy = await FaultProxy.start(targets[3]!.url);
    proxy.setLatency(3);
    try {
      const raw = rawConfig(src, targets);
      const config = makeConfig({
        ...raw,
        targets: (raw.targets as { url: string }[]).map((t, i) =>
          i === 3 ? { ...t, url: proxy.url(t.url) } : t,
        ),
        apply: { pollIntervalMs: 200, batchSize: 1000 },
      });
      let daemon = await startDaemon(config);
      await waitCaughtUp(config);
      await daemon.stop();
      await src.cluster.query(
        `insert into items select g, g % 997, 'x' from generate_series(1, 6000) g`,
        [],
        src.name,
      );
      daemon = await startDaemon(config);
      await waitCaughtUp(config);
      const counts = reads(daemon);
      await daemon.stop();
      await expectEqual(src, targets);
      // Read apart, the two paths read all but the first 256 changes twice: 11,744. (Which way they
      // share is the machine's: on a loaded one the workers may open their windows late enough to share
      // chunks of one pace, and none across limits, 1 run in 8 under two busy loops.)
      expect(counts.changesRead, JSON.stringify(counts)).toBeLessThan(9_000);
    } finally {
      await proxy.close();
    }
  });

  it('status counts the backlog of the position it read, though a target that shared it moved on', async () => {
    // Targets at one position are counted once. A target that leaves it between status's two reads
    // (its row, then the log) must not lend its new backlog to the others: status once said a target
    // 5,744 changes behind had caught up, and this file's test above stopped its daemon on that word.
    const { src, targets } = await setUp();
    const raw = rawConfig(src, targets, 2);
    const config = makeConfig(raw);
    const install = await runCli(await configFile(raw), 'install');
    expect(install.code, install.out).toBe(0);
    // Registered in one transaction, the two targets' ticks share their xid, but not always their
    // snapshot (each statement takes its own): t2 is put at t1's position.
    await src.cluster.query(
      `update trigsync.target t2 set from_snapshot = t1.from_snapshot, from_id_bound = t1.from_id_bound,
              from_next_xid = t1.from_next_xid
         from trigsync.target t1 where t1.name = 't1' and t2.name = 't2'`,
      [],
      src.name,
    );
    const positions = await withClient(src.url, (db) =>
      Promise.all(
        ['t1', 't2'].map(async (t) => (await loadRegisteredPosition(db, config.schema, t))!.position),
      ),
    );
    expect(positions[1]).toEqual(positions[0]);
    await src.cluster.query(
      `insert into items select g, 1, 'x' from generate_series(1, 500) g`,
      [],
      src.name,
    );
    const moveFirst = (): Promise<unknown> =>
      src.cluster.query(
        `update trigsync.target set from_snapshot = pg_current_snapshot(), to_snapshot = null, applied_id = 0
          where name = 't1'`,
        [],
        src.name,
      );
    const status = await withClient(src.url, (db) => {
      // The same session, but t1 moves on right after status has read the targets' rows.
      const between = Object.create(db) as typeof db;
      let moved = false;
      between.query = (async (...args: Parameters<typeof db.query>) => {
        const result = await (db.query as (...a: unknown[]) => Promise<unknown>)(...args);
        const text = typeof args[0] === 'string' ? args[0] : '';
        if (!moved && /\.target t order by t\.name/.test(text)) {
          moved = true;
          await moveFirst();
        }
        return result;
      }) as typeof db.query;
      return readStatus(between, config);
    });
    const backlog = new Map(status.targets.map((t) => [t.name, t.backlog]));
    expect(backlog.get('t2'), JSON.stringify(status.targets)).toBe(500);
    expect(backlog.get('t1'), JSON.stringify(status.targets)).toBe(500);
    // Read again, t1 holds none of them and t2 all.
    const after = await withClient(src.url, (db) => readStatus(db, config));
    expect(after.targets.map((t) => [t.name, t.backlog])).toEqual([
      ['t1', 0],
      ['t2', 500],
    ]);
  });

  it('a target that parks lags alone: the others get everything, and it catches up once fixed', async () => {
    // The first target refuses some rows until its constraint goes.
    const { src, targets } = await setUp(`alter table items add constraint small check (v < 900)`);
    const config = configFor(src, targets);
    const daemon = await startDaemon(config);
    await write(src.url, 3, 40, 3);
    await waitFor(async () => (await targetStatus(config, 't1')).state === 'parked', {
      what: 't1 to park',
      timeoutMs: 30_000,
    });
    // The others go on while t1 is parked: they apply writes made after it parked.
    await write(src.url, 2, 20, 4);
    const expected = await fingerprint(src.url, everything);
    await waitFor(
      async () => {
        const found = await Promise.all(targets.slice(1).map((t) => fingerprint(t.url, everything)));
        return found.every((f) => f.count === expected.count && f.hash === expected.hash);
      },
      { what: 'the targets that did not park to hold every row', timeoutMs: 30_000 },
    );
    expect((await targetStatus(config, 't1')).state).toBe('parked');
    await withClient(targets[0]!.url, (db) => db.query('alter table items drop constraint small'));
    await waitCaughtUp(config);
    await expectEqual(src, targets);
    await daemon.stop();
  });
});
