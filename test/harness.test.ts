// The test harness itself, against real servers: shared and private clusters, passwords, databases, and
// that nothing outlives a run, whether a test fails or vitest is killed.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, onTestFinished, test } from 'vitest';
import type { FixtureReport } from './fixtures/harness/report.js';
import {
  connect,
  createRole,
  freshDatabase,
  privateCluster,
  runInfo,
  setPassword,
  sharedClusters,
  tableFingerprint,
  uniqueName,
  waitFor,
  type PgCluster,
} from './support/fixtures.js';
import { findPostgresProcesses } from './support/watchdog.js';

const projectRoot = fileURLToPath(new URL('..', import.meta.url));
const embedded = runInfo().kind === 'embedded';

async function ids(cluster: PgCluster): Promise<number[]> {
  const rows = await cluster.query<{ id: number }>('select id from t order by id');
  return rows.map((row) => row.id);
}

async function systemIdentifier(cluster: PgCluster): Promise<string | undefined> {
  const rows = await cluster.query<{ id: string }>(
    'select system_identifier::text as id from pg_control_system()',
  );
  return rows[0]?.id;
}

describe('shared clusters', () => {
  test('run side by side as separate clusters', async () => {
    const { source, target1, target2 } = sharedClusters();
    expect(new Set([source.port, target1.port, target2.port]).size).toBe(3);
    const [sourceId, targetId] = await Promise.all([systemIdentifier(source), systemIdentifier(target1)]);
    expect(sourceId).toMatch(/^\d+$/);
    expect(targetId).not.toBe(sourceId);
    expect(source.serverVersion).toMatch(/^\d+\.\d+/);
    if (embedded) {
      const [settings] = await source.query(
        "select current_setting('listen_addresses') as listen, current_setting('fsync') as fsync",
      );
      expect(settings).toEqual({ listen: '127.0.0.1', fsync: 'off' });
    }
    await expect(source.stop()).rejects.toThrow(/privateCluster/);
  });

  test('freshDatabase gives every call its own database', async () => {
    const { source } = sharedClusters();
    const [a, b] = await Promise.all([freshDatabase(source), freshDatabase(source)]);
    expect(a.name).not.toBe(b.name);
    await source.query('create table only_in_a (id int)', [], a.name);
    const [inB] = await source.query("select to_regclass('only_in_a')::text as rel", [], b.name);
    expect(inB).toEqual({ rel: null });
    const client = await connect(a.url);
    const { rows } = await client.query<{ db: string }>('select current_database() as db');
    await client.end();
    expect(rows).toEqual([{ db: a.name }]);
  });

  test('tableFingerprint matches equal tables and tells changed ones apart', async () => {
    const { source, target1 } = sharedClusters();
    const [left, right] = await Promise.all([freshDatabase(source), freshDatabase(target1)]);
    for (const [db, order] of [
      [left, 'asc'],
      [right, 'desc'],
    ] as const) {
      await db.cluster.query('create table items (id int primary key, label text)', [], db.name);
      await db.cluster.query(
        `insert into items select i, 'item ' || i from generate_series(1, 100) i order by i ${order}`,
        [],
        db.name,
      );
    }
    const before = await tableFingerprint(left.url, 'public.items');
    expect(before.count).toBe(100);
    expect(await tableFingerprint(right.url, 'items')).toEqual(before);
    await target1.query("update items set label = 'changed' where id = 42", [], right.name);
    expect(await tableFingerprint(right.url, 'items')).not.toEqual(before);
  });

  test('a password change takes effect on the next connection', async () => {
    const { source } = sharedClusters();
    // Roles are cluster-wide: a unique name keeps parallel test files apart.
    const role = uniqueName('app');
    const oldPassword = "old pass'word";
    const newPassword = 'new:pass/word@%';
    await createRole(source, role, oldPassword, { login: true });
    const db = await freshDatabase(source);
    const urlWith = (password: string): string => source.url(db.name, { user: role, password });

    const before = await connect(urlWith(oldPassword));
    await before.end();
    await setPassword(source, role, newPassword);
    await expect(connect(urlWith(oldPassword))).rejects.toMatchObject({ code: '28P01' });
    const after = await connect(urlWith(newPassword));
    const { rows } = await after.query<{ who: string }>('select current_user as who');
    await after.end();
    expect(rows).toEqual([{ who: role }]);
  });
});

describe('private clusters', () => {
  test('keep their data across stop/start, restart and a crash', async () => {
    const cluster = await privateCluster('lifecycle');
    const port = cluster.port;
    await cluster.query('create table t (id int primary key)');
    await cluster.query('insert into t values (1)');

    await cluster.stop();
    expect(await cluster.isRunning()).toBe(false);
    await expect(cluster.query('select 1')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await cluster.start();
    expect(cluster.port).toBe(port);
    expect(await ids(cluster)).toEqual([1]);

    await cluster.query('insert into t values (2)');
    const idle = await connect(cluster.url());
    await cluster.kill();
    expect(await cluster.isRunning()).toBe(false);
    await expect(cluster.query('select 1')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await expect(idle.query('select 1')).rejects.toThrow();
    await idle.end();
    await cluster.start();
    expect(await ids(cluster)).toEqual([1, 2]);
    expect(await cluster.logTail(50)).toContain('automatic recovery in progress');

    const startTime = async (): Promise<unknown> =>
      (await cluster.query('select pg_postmaster_start_time() as at'))[0];
    const first = await startTime();
    await cluster.restart();
    expect(await startTime()).not.toEqual(first);
    expect(await ids(cluster)).toEqual([1, 2]);
  });
});

interface ChildRun {
  reportFile: string;
  /** Resolves with the exit code, or the signal name. */
  exited: Promise<number | string>;
  done(): boolean;
  output(): string;
  pid: number;
}

/** A child vitest on one fixture file, in its own process group so that it can be killed as a whole. */
function startChildVitest(fixture: string): ChildRun {
  const dir = join(runInfo().runRoot, uniqueName('child'));
  mkdirSync(dir);
  const reportFile = join(dir, 'report.json');
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !key.startsWith('VITEST') && key !== 'TRIGSYNC_TEST_KEEP'),
  );
  const child = spawn(
    process.execPath,
    [
      join(projectRoot, 'node_modules/vitest/vitest.mjs'),
      'run',
      '--config',
      'test/fixtures/harness/vitest.config.ts',
      fixture,
    ],
    {
      cwd: projectRoot,
      detached: true,
      env: { ...env, TRIGSYNC_FIXTURE_OUT: reportFile, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  let finished = false;
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | string>((resolve) =>
    child.once('close', (code, signal) => {
      finished = true;
      resolve(code ?? signal ?? 'unknown');
    }),
  );
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not start child vitest');
  onTestFinished(() => {
    // A test that failed half-way must not leave its child running; its watchdog reaps the servers.
    if (finished) return;
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // Exited meanwhile.
    }
  });
  return { reportFile, exited, done: () => finished, output: () => output, pid };
}

function readReport(file: string): FixtureReport | null {
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as FixtureReport) : null;
}

describe.skipIf(!embedded)('cleanup', () => {
  test('a failing test run leaves no server and no files behind', async () => {
    const child = startChildVitest('failing.fixture');
    const code = await child.exited;
    const output = child.output();
    expect(code, output).toBe(1);
    const report = readReport(child.reportFile);
    expect(report, output).not.toBeNull();
    if (report === null) return;
    // The failed test kept its databases (until the end of the run) and the leak check caught the client.
    for (const db of report.databases) expect(output).toContain(`kept database "${db}"`);
    expect(output).toMatch(/Leaked, still open when the test ended.*\n- pg client/);
    expect(findPostgresProcesses(report.runRoot)).toEqual([]);
    expect(existsSync(report.runRoot)).toBe(false);
  });

  test('when vitest is killed, the watchdog stops the servers and removes the run', async () => {
    const child = startChildVitest('hanging.fixture');
    const ready = await waitFor(() => child.done() || readReport(child.reportFile), {
      what: 'the hanging fixture to start its servers',
      timeoutMs: 60_000,
    });
    if (ready === true) throw new Error(`child vitest exited early:\n${child.output()}`);
    // Three shared clusters and the private one, each with its background processes.
    expect(findPostgresProcesses(ready.runRoot).length).toBeGreaterThan(4);
    expect(existsSync(ready.privateDataDir)).toBe(true);

    process.kill(-child.pid, 'SIGKILL');
    expect(await child.exited).toBe('SIGKILL');
    await waitFor(() => findPostgresProcesses(ready.runRoot).length === 0 && !existsSync(ready.runRoot), {
      what: `the watchdog to stop every server under ${ready.runRoot} and remove it`,
      timeoutMs: 15_000,
    });
  });
});

test('waitFor names what it was waiting for', async () => {
  await expect(
    waitFor(() => false, { what: 'a condition that never holds', timeoutMs: 100 }),
  ).rejects.toThrow(/Timed out after 100 ms waiting for a condition that never holds/);
});
