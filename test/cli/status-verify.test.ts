// What `verify`, `status` and connection errors tell an operator, through the built binary against real
// servers: a target that is down is named unreachable and the others are still compared; a source that
// is down is named as the source; status says whether a daemon runs, and marks what it shows as last
// seen when none does; a removed target shows when it was removed; verify says what its counts are.
import { writeFile } from 'node:fs/promises';

import type pg from 'pg';
import { describe, expect, it } from 'vitest';

import type { Status } from '../../src/lib/status-report.js';
import type { VerifyReport } from '../../src/verify/verify.js';
import {
  connect,
  freshDatabase,
  privateCluster,
  sharedClusters,
  waitFor,
  type FreshDatabase,
} from '../support/fixtures.js';
import { ChildDaemon, configFile, makeConfig, waitCaughtUp } from '../support/replication.js';
import { trigsync } from '../support/binary.js';

async function statusJson(file: string): Promise<Status> {
  const { code, stdout, stderr } = await trigsync('status', '--json', '--config', file);
  expect(stderr).toBe('');
  expect(code).toBe(0);
  return JSON.parse(stdout) as Status;
}

const items = 'create table items (id int primary key, v text)';

async function withItems(...dbs: FreshDatabase[]): Promise<void> {
  for (const db of dbs) {
    await db.cluster.query(items, [], db.name);
    await db.cluster.query(
      `insert into items select g, 'row ' || g from generate_series(1, 100) g`,
      [],
      db.name,
    );
  }
}

/** A target's line of the status table. */
function lineOf(stdout: string, name: string): string {
  return stdout.split('\n').find((l) => l.startsWith(`${name} `)) ?? `(no line for ${name})`;
}

describe('verify with a target down', () => {
  it('names the target unreachable with the reason, compares the other, and exits 1', async () => {
    const { source, target1 } = sharedClusters();
    const down = await privateCluster('verify-target-down');
    const [src, a, b] = await Promise.all([
      freshDatabase(source),
      freshDatabase(target1),
      freshDatabase(down),
    ]);
    await withItems(src, a, b);
    const file = await configFile({
      source: { url: src.url },
      tables: ['items'],
      targets: [
        { name: 'a', url: a.url, initialSync: 'none' },
        { name: 'b', url: b.url, initialSync: 'none' },
      ],
    });
    await down.stop();

    const text = await trigsync('verify', '--config', file);
    expect(text.stderr).toBe('');
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(
      /^a: source read in snapshot \d+:\d+:\S* \(\S+\), the target in a snapshot of its own/m,
    );
    expect(text.stdout).toMatch(/^ {2}TABLE\s+EQUAL\s+SOURCE ROWS\s+TARGET ROWS\s+IN FLIGHT\s+DIFFERENCES/m);
    expect(text.stdout).toMatch(/^ {2}public\.items\s+yes\s+100\s+100\s+0\s+0\s/m);
    expect(text.stdout).toMatch(
      new RegExp(`^b: UNREACHABLE, not compared: connect ECONNREFUSED 127\\.0\\.0\\.1:${down.port}$`, 'm'),
    );
    expect(text.stdout.trimEnd().split('\n').at(-1)).toBe(
      'verify: target(s) b unreachable, not compared; the other target(s) equal',
    );

    const json = await trigsync('verify', '--json', '--config', file);
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout) as VerifyReport;
    expect(report.equal).toBe(false);
    expect(report.targets).toMatchObject([
      {
        name: 'a',
        state: 'compared',
        equal: true,
        tables: [{ table: 'public.items', equal: true, inFlight: 0 }],
      },
      {
        name: 'b',
        state: 'unreachable',
        equal: false,
        tables: [],
        reason: `connect ECONNREFUSED 127.0.0.1:${down.port}`,
      },
    ]);

    // Named alone, the same; a difference on the reachable one still counts.
    await target1.query(`delete from items where id = 7`, [], a.name);
    const both = await trigsync('verify', '--config', file);
    expect(both.code).toBe(1);
    expect(both.stdout.trimEnd().split('\n').at(-1)).toBe(
      'verify: 1 difference(s) in 1 table(s); target(s) b unreachable, not compared',
    );
    const alone = await trigsync('verify', 'b', '--config', file);
    expect(alone.code).toBe(1);
    expect(alone.stdout).toMatch(/^b: UNREACHABLE, not compared: connect ECONNREFUSED /m);
  });
});

describe('a source that is down', () => {
  it('is named as the source by every command, which fails', async () => {
    const down = await privateCluster('source-down');
    const [src, a] = await Promise.all([freshDatabase(down), freshDatabase(sharedClusters().target1)]);
    await withItems(src, a);
    const file = await configFile({
      source: { url: src.url },
      tables: ['items'],
      targets: [{ name: 'a', url: a.url, initialSync: 'none' }],
    });
    await down.stop();
    const refused = `trigsync: source: connect ECONNREFUSED 127.0.0.1:${down.port}`;
    for (const args of [
      ['status'],
      ['status', '--json'],
      ['verify'],
      ['verify', 'a'],
      ['errors'],
      ['retry', 'a'],
      ['repair', 'a', '--dry-run'],
      ['status', '--check'],
      ['skip', 'a', '5', '--yes'],
      ['sync', 'a'],
      ['install'],
      ['uninstall', '--yes'],
    ]) {
      const { code, stdout, stderr } = await trigsync(...args, '--config', file);
      expect(stderr.trim(), args.join(' ')).toBe(refused);
      expect(stdout, args.join(' ')).toBe('');
      expect(code, args.join(' ')).toBe(3);
    }
    // check probes every database and names each in its table: the source down, the target reached.
    const checked = await trigsync('check', '--config', file);
    expect(checked.stdout).toMatch(
      new RegExp(`^source {2}FAILED {2}connect ECONNREFUSED 127\\.0\\.0\\.1:${down.port} `, 'm'),
    );
    expect(checked.stdout).not.toMatch(/^a\s+FAILED/m);
    expect(checked.code).toBe(1);
  });
});

describe('status and a daemon', () => {
  it('says whether a daemon runs; when none does, marks the states as last seen; a removed target shows when it was removed', async () => {
    const { source, target1 } = sharedClusters();
    const bCluster = await privateCluster('status-parked');
    const [src, a, b] = await Promise.all([
      freshDatabase(source),
      freshDatabase(target1),
      freshDatabase(bCluster),
    ]);
    await withItems(src, a, b);
    const raw = {
      source: { url: src.url },
      tables: ['items'],
      targets: [
        { name: 'a', url: a.url, initialSync: 'none' },
        { name: 'b', url: b.url, initialSync: 'none' },
      ],
      apply: { pollIntervalMs: 200 },
      retry: { initialDelayMs: 100, maxDelayMs: 1000 },
    };
    const file = await configFile(raw);
    const daemon = await ChildDaemon.create(raw);
    await daemon.start();
    await waitCaughtUp(makeConfig(raw));
    // b's server goes away: its worker parks it on the connection error.
    await bCluster.stop();
    await source.query(`insert into items values (101, 'after b went down')`, [], src.name);
    const parked = await waitFor(
      async () => {
        const status = await statusJson(file);
        return status.targets.find((t) => t.name === 'b' && t.state === 'parked') && status;
      },
      { what: 'b to park', timeoutMs: 30_000, intervalMs: 200 },
    );
    expect(parked.daemon).toMatchObject({ running: true });
    expect(parked.targets.every((t) => t.current)).toBe(true);

    const live = await trigsync('status', '--config', file);
    expect(live.code).toBe(0);
    expect(lineOf(live.stdout, 'b')).toMatch(/^b\s+parked since \S+\s+1\s/);
    expect(lineOf(live.stdout, 'a')).toMatch(/^a\s+live\s/);
    expect(live.stdout).not.toContain('last seen');
    expect(live.stdout).toMatch(/^daemon: running \(last heartbeat \d+\.\d s ago\)$/m);
    expect(live.stdout).toMatch(/^leader: \S+:\d+ since /m);

    expect(await daemon.stop()).toBe(0);
    const text = await trigsync('status', '--config', file);
    expect(text.stderr).toBe('');
    expect(text.code).toBe(0);
    const parkedSince = parked.targets.find((t) => t.name === 'b')!.parkedSince!;
    expect(lineOf(text.stdout, 'b')).toMatch(
      new RegExp(
        `^b\\s+last seen parked since ${parkedSince.replaceAll('.', '\\.')}\\s+1\\s+\\S+\\s+0\\s+connect ECONNREFUSED`,
      ),
    );
    expect(lineOf(text.stdout, 'a')).toMatch(/^a\s+last seen live\s+0\s/);
    expect(text.stdout).toMatch(/^leader: none$/m);
    expect(text.stdout).toMatch(
      /^daemon: not running \(last seen \d{4}-\d\d-\d\dT\S+Z, \d+\.\d s ago\): target states are as last seen then$/m,
    );
    const stopped = await statusJson(file);
    expect(stopped.daemon.running).toBe(false);
    expect(stopped.daemon.lastSeen).not.toBeNull();
    expect(Date.parse(stopped.daemon.lastSeen!)).toBeGreaterThanOrEqual(Date.parse(parkedSince));
    for (const t of stopped.targets) {
      // SPEC §4's fields stay; `current` says they are as last seen.
      expect(Object.keys(t)).toEqual(
        expect.arrayContaining([
          'name',
          'state',
          'backlog',
          'lagSeconds',
          'errorQueue',
          'lastError',
          'current',
        ]),
      );
      expect(t.current).toBe(false);
    }
    const check = await trigsync('status', '--check', '--config', file);
    expect(check.code).toBe(1);
    expect(check.stderr).toContain('check: no trigsync daemon is running for this source (no leader)');

    // b leaves the config: install marks it removed, at the time of the install, not of its parking.
    const before = (await source.query<{ now: Date }>('select now()', [], src.name))[0]!.now;
    await writeFile(file, JSON.stringify({ ...raw, targets: raw.targets.filter((t) => t.name !== 'b') }));
    const install = await trigsync('install', '--config', file);
    expect(install.code).toBe(0);
    const afterInstall = await statusJson(file);
    // An install is no sign of a daemon.
    expect(afterInstall.daemon).toMatchObject({ running: false, lastSeen: stopped.daemon.lastSeen });
    const removed = afterInstall.targets.find((t) => t.name === 'b')!;
    expect(removed).toMatchObject({ state: 'removed', parkedSince: null });
    expect(Date.parse(removed.removedSince!)).toBeGreaterThanOrEqual(before.getTime());
    expect(Date.parse(removed.removedSince!)).toBeGreaterThan(Date.parse(parkedSince));
    const table = await trigsync('status', '--config', file);
    expect(lineOf(table.stdout, 'b')).toMatch(
      new RegExp(`^b\\s+removed since ${removed.removedSince!.replaceAll('.', '\\.')}\\s`),
    );
  });
});

describe("verify's counts", () => {
  it('say what was compared: an equal table whose counts differ has that many rows in flight, and says so', async () => {
    const { source, target1 } = sharedClusters();
    const [src, a] = await Promise.all([freshDatabase(source), freshDatabase(target1)]);
    await withItems(src, a);
    const raw = {
      source: { url: src.url },
      tables: ['items'],
      targets: [{ name: 'a', url: a.url, initialSync: 'none' }],
      apply: { pollIntervalMs: 50 },
      retry: { initialDelayMs: 100, maxDelayMs: 1000 },
    };
    const file = await configFile(raw);
    const daemon = await ChildDaemon.create(raw);
    await daemon.start();
    await waitCaughtUp(makeConfig(raw));
    const writer: pg.Client = await connect(src.url);
    let writing = true;
    let writes = 0;
    const load = (async () => {
      let next = 1000;
      while (writing) {
        // Mostly inserts: the target's snapshot, later than the source's, holds more rows.
        await writer.query(`insert into items values ($1, 'new')`, [next++]);
        if (next % 3 === 0) await writer.query(`delete from items where id = $1`, [next - 50]);
        writes++;
      }
    })();
    try {
      await waitFor(() => writes >= 200, { what: 'the writer to get going' });
      const text = await trigsync('verify', '--config', file);
      expect(text.stderr).toBe('');
      expect(text.code).toBe(0);
      expect(text.stdout).toMatch(
        /^a: source read in snapshot \d+:\d+:\S* \(\S+\); the target read in a snapshot of its own once it had applied all of that, \d+\.\d s later$/m,
      );
      const row = /^ {2}public\.items\s+yes\s+(\d+)\s+(\d+)\s+(\d+)\s+0\s/m.exec(text.stdout);
      expect(row, text.stdout).not.toBeNull();
      const [sourceRows, targetRows, inFlight] = row!.slice(1).map(Number) as [number, number, number];
      // Equal beside different counts: the rows in flight between the two snapshots account for them,
      // and the legend says so.
      expect(Math.abs(sourceRows - targetRows)).toBeLessThanOrEqual(inFlight);
      if (inFlight > 0 || sourceRows !== targetRows) {
        expect(text.stdout).toContain(
          "(SOURCE ROWS are counted in the source snapshot, TARGET ROWS in the target's; IN FLIGHT rows were " +
            'changed between the two, compared by key, and again once the target had applied them)',
        );
      }
      console.log(
        `verify under load: source ${sourceRows} rows, target ${targetRows}, in flight ${inFlight}`,
      );

      const json = await trigsync('verify', '--json', '--config', file);
      expect(json.code).toBe(0);
      const report = JSON.parse(json.stdout) as VerifyReport;
      const target = report.targets[0]!;
      if (target.state !== 'compared') expect.fail(`a not compared: ${target.reason}`);
      expect(target).toMatchObject({ caughtUp: true, replicating: true, equal: true });
      for (const t of target.tables)
        expect(Math.abs(t.sourceRows - t.targetRows)).toBeLessThanOrEqual(t.inFlight);
    } finally {
      writing = false;
      await load;
      await writer.end();
    }
    expect(await daemon.stop()).toBe(0);
  });
});
