// `trigsync pause TARGET` / `resume TARGET`: a paused target takes nothing after the batch in flight,
// through writes and daemon restarts, while the other target goes on; the daemon opens nothing to it
// (its server may be down for the maintenance the pause is for); resumed, it applies what waited and
// equals the source. Parents with their children, as users write them, on targets with the foreign keys.
import { describe, expect, it } from 'vitest';

import type { Config } from '../../src/config/types.js';
import type { Daemon } from '../../src/daemon/daemon.js';
import { sourceAndTwoTargets, waitFor, type FreshDatabase } from '../support/fixtures.js';
import {
  collectingLogger,
  configFile,
  expectSameRows,
  makeConfig,
  runCli,
  startDaemon,
  targetStatus,
  waitCaughtUp,
} from '../support/replication.js';

const ddl = `
  create table orders (id int primary key, customer int not null, note text);
  create table order_lines (order_id int not null references orders (id) on delete cascade,
                            line int not null, qty int not null, primary key (order_id, line));`;

/** `count` orders from `first` on, each with three lines, one transaction each; then a few changes. */
async function writeOrders(src: FreshDatabase, first: number, count: number): Promise<void> {
  for (let id = first; id < first + count; id++) {
    await src.cluster.query(
      `with o as (insert into orders values ($1, $1 % 7, null) returning id)
       insert into order_lines select o.id, g, g from o, generate_series(1, 3) g`,
      [id],
      src.name,
    );
  }
  await src.cluster.query(
    `update orders set note = 'changed' where id % 5 = 0 and id >= $1`,
    [first],
    src.name,
  );
  await src.cluster.query(`delete from orders where id = $1`, [first + 1], src.name);
}

async function countOn(db: FreshDatabase): Promise<number> {
  const rows = await db.cluster.query<{ n: number }>(
    'select (select count(*) from orders) + (select count(*) from order_lines) as n',
    [],
    db.name,
  );
  return Number(rows[0]!.n);
}

async function expectSame(src: FreshDatabase, target: FreshDatabase): Promise<void> {
  for (const [table, key] of [
    ['orders', 'id'],
    ['order_lines', 'order_id, line'],
  ] as const) {
    await expectSameRows(
      { url: src.url, query: `select * from ${table}` },
      { url: target.url, query: `select * from ${table}` },
      key,
    );
  }
}

/** Writes that `other` (not paused) applies in full: the daemon has had turns since they committed. */
async function writeAndWaitFor(
  src: FreshDatabase,
  other: FreshDatabase,
  first: number,
  count: number,
): Promise<void> {
  await writeOrders(src, first, count);
  const expected = await countOn(src);
  await waitFor(async () => (await countOn(other)) === expected, {
    what: 'the target not paused to apply the writes',
    timeoutMs: 30_000,
  });
}

function rawConfig(src: FreshDatabase, bUrl: string, cUrl: string) {
  return {
    source: { url: src.url },
    tables: ['orders', 'order_lines'],
    targets: [
      { name: 'b', url: bUrl, initialSync: 'none' },
      { name: 'c', url: cUrl, initialSync: 'none' },
    ],
    apply: { pollIntervalMs: 100 },
    retry: { initialDelayMs: 50, maxDelayMs: 500 },
    metrics: { enabled: false },
  };
}

async function pausedGauge(daemon: Daemon, target: string): Promise<number | undefined> {
  const { values } = await daemon.metrics.paused.get();
  return values.find((v) => v.labels.target === target)?.value;
}

async function connectionErrors(daemon: Daemon, target: string): Promise<number> {
  const { values } = await daemon.metrics.errors.get();
  return values
    .filter((v) => v.labels.target === target && v.labels.kind === 'connection')
    .reduce((n, v) => n + v.value, 0);
}

/** A command that exits 2 (usage or configuration) saying `message`. */
async function expectRefused(ran: Promise<{ code: number; out: string }>, message: RegExp): Promise<void> {
  const { code, out } = await ran;
  expect(out).toMatch(message);
  expect(code).toBe(2);
}

describe('pause and resume', () => {
  it('holds a target through writes and restarts while the other goes on; resumed, it catches up', async () => {
    const { src, one: b, two: c } = await sourceAndTwoTargets(ddl);
    const raw = rawConfig(src, b.url, c.url);
    const config: Config = makeConfig(raw);
    const file = await configFile(raw);
    const pauses: boolean[] = [];
    let daemon = await startDaemon(config, undefined, (d) =>
      d.events.on('target:paused', ({ target, paused }) => {
        if (target === 'b') pauses.push(paused);
      }),
    );
    await writeOrders(src, 1, 20);
    await waitCaughtUp(config);

    const paused = await runCli(file, 'pause', 'b');
    expect(paused).toMatchObject({ code: 0 });
    expect(paused.out).toMatch(/^b paused: the running daemon applies nothing more to it after the batch/);
    // The worker says when the pause took effect; from then on nothing reaches b.
    await waitFor(() => pauses.includes(true), { what: "b's worker to pause" });
    const held = await countOn(b);
    await writeAndWaitFor(src, c, 100, 30);
    await writeAndWaitFor(src, c, 200, 5);
    expect(await countOn(b)).toBe(held);

    const status = await targetStatus(config, 'b');
    expect(status).toMatchObject({ state: 'paused' });
    expect(status.pausedSince).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(status.backlog).toBeGreaterThan(0);
    expect(await targetStatus(config, 'c')).toMatchObject({ state: 'live', backlog: 0, pausedSince: null });
    expect((await runCli(file, 'status')).out).toMatch(/^b\s+paused since \S+\s+\d+/m);
    // Paused by choice: not a problem for --check, which still sees c and the daemon.
    expect(await runCli(file, 'status', '--check', '--max-lag', '0.001')).toMatchObject({ code: 0 });
    await waitFor(
      async () => (await pausedGauge(daemon, 'b')) === 1 && (await pausedGauge(daemon, 'c')) === 0,
      {
        what: 'trigsync_target_paused to say b, not c',
      },
    );
    expect((await runCli(file, 'pause', 'b')).out).toMatch(/^b was paused already, since \S+ by \w+/);
    // verify says so, without waiting for a catch-up that cannot come; repair writes nothing to it,
    // since what differs is what waits for it.
    const verified = JSON.parse((await runCli(file, 'verify', 'b', '--json')).out) as {
      equal: boolean;
      targets: { name: string; paused: boolean }[];
    };
    expect(verified).toMatchObject({ equal: false, targets: [{ name: 'b', paused: true }] });
    const repaired = await runCli(file, 'repair', 'b');
    expect(repaired).toMatchObject({ code: 1 });
    expect(repaired.out).toMatch(
      /^b is paused \(trigsync pause\): the changes waiting for it show as differences/m,
    );
    expect(await countOn(b)).toBe(held);
    expect(JSON.parse((await runCli(file, 'verify', 'c', '--json')).out)).toMatchObject({
      equal: true,
      targets: [{ name: 'c', paused: false }],
    });

    // A copy asked of it waits for the resume.
    const synced = await runCli(file, 'sync', 'b', '--table', 'public.orders');
    expect(synced).toMatchObject({ code: 0 });
    expect(synced.out).toMatch(/b is paused \(trigsync pause\), so its copy begins when it is resumed/);

    // A restart keeps the pause: the source holds it, not the daemon.
    await daemon.stop();
    daemon = await startDaemon(config);
    await writeAndWaitFor(src, c, 300, 10);
    expect(await countOn(b)).toBe(held);

    const resumed = await runCli(file, 'resume', 'b');
    expect(resumed).toMatchObject({ code: 0 });
    expect(resumed.out).toMatch(/^b resumed \(it was paused since \S+ by \w+\)/);
    await waitFor(async () => (await targetStatus(config, 'b')).copying === null, {
      what: "b's copy of orders, asked while it was paused",
    });
    await waitCaughtUp(config);
    await expectSame(src, b);
    await expectSame(src, c);
    expect(await targetStatus(config, 'b')).toMatchObject({ state: 'live', pausedSince: null });
    expect((await runCli(file, 'resume', 'b')).out).toBe('b was not paused');
    // Resumed, it follows live changes again.
    await writeOrders(src, 400, 3);
    await waitCaughtUp(config);
    await expectSame(src, b);
    await daemon.stop();
  });

  it('opens nothing to a paused target, so its server may be down; and says what it cannot pause', async () => {
    const { src, one: b, two: c } = await sourceAndTwoTargets(ddl);
    const raw = rawConfig(src, b.url, c.url);
    const config = makeConfig(raw);
    const file = await configFile(raw);
    await expectRefused(
      runCli(file, 'pause', 'b'),
      /not installed on the source: trigsync\.target does not exist; run install/,
    );
    await expectRefused(
      runCli(file, 'pause', 'nosuch'),
      /no target named nosuch in the config \(targets: b, c\)/,
    );
    // Installed by a config without b: b is not registered until an install (or start) of this one.
    const withoutB = await configFile({ ...raw, targets: raw.targets.filter((t) => t.name !== 'b') });
    expect((await runCli(withoutB, 'install')).code).toBe(0);
    await expectRefused(
      runCli(file, 'pause', 'b'),
      /target b is not registered on the source; run install \(or start\) first/,
    );
    expect((await runCli(file, 'install')).code).toBe(0);
    expect((await runCli(file, 'pause', 'b')).code).toBe(0);

    // b's server "down": its URL leads nowhere. With b paused, the daemon starts and never tries it.
    const down = makeConfig(rawConfig(src, b.url.replace(/:\d+\//, ':1/'), c.url));
    const { logger, lines } = collectingLogger();
    const daemon = await startDaemon(down, logger);
    await writeAndWaitFor(src, c, 1, 10);
    await writeAndWaitFor(src, c, 100, 10);
    expect(await connectionErrors(daemon, 'b')).toBe(0);
    expect(lines.filter((l) => l.includes('"target":"b"') && /"level":(40|50)/.test(l))).toEqual([]);
    expect(await countOn(b)).toBe(0);
    await daemon.stop();

    // Back up, resumed while no daemon runs: the next start applies what waited.
    expect((await runCli(file, 'resume', 'b')).code).toBe(0);
    const again = await startDaemon(config);
    await waitCaughtUp(config);
    await expectSame(src, b);
    await again.stop();
  });
});
