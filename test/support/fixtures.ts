// What test files use. Helpers that create something for a test (databases, private clusters, clients)
// clean it up when the test finishes, so they must be called inside a test or beforeEach: not in
// beforeAll, and not from test.concurrent tests.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { expect, inject, onTestFinished } from 'vitest';
import { attachCluster, createCluster, withClient, type PgCluster } from './cluster.js';
import { SHARED_CLUSTER_NAMES, type PgRunInfo, type SharedClusterName } from './run-root.js';

export { waitFor, type WaitForOptions } from './wait.js';
export type { PgAuth, PgCluster } from './cluster.js';

export type SharedClusters = Readonly<Record<SharedClusterName, PgCluster>>;

export interface FreshDatabase {
  name: string;
  /** Superuser URL of the database. */
  url: string;
  cluster: PgCluster;
}

export interface TrackedResource {
  /** Named in the leak error. */
  what: string;
  isOpen(): boolean;
  close(): Promise<void>;
}

export function runInfo(): PgRunInfo {
  return inject('trigsyncPg');
}

/** The lowest major version among the run's servers: what a test of a version's feature may rely on. */
export function serverMajor(): number {
  return Math.min(...runInfo().clusters.map((c) => Number.parseInt(c.serverVersion)));
}

/** Double-quoted SQL identifier. */
export function ident(name: string): string {
  return pg.escapeIdentifier(name);
}

/** A name no other test (or worker) will pick: prefix, then random hex. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${randomBytes(4).toString('hex')}`;
}

let shared: SharedClusters | undefined;

/** The run's shared clusters. Attached, not owned: stop/restart/kill are refused. */
export function sharedClusters(): SharedClusters {
  if (shared) return shared;
  const { clusters } = runInfo();
  const entries = SHARED_CLUSTER_NAMES.map((name) => {
    const info = clusters.find((cluster) => cluster.name === name);
    if (!info) throw new Error(`global setup provided no cluster named "${name}"`);
    return [name, attachCluster(info)] as const;
  });
  shared = Object.fromEntries(entries) as Record<SharedClusterName, PgCluster>;
  return shared;
}

function currentTestSlug(): string {
  const name = expect.getState().currentTestName ?? 'test';
  const slug = name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
  return slug.slice(-40) || 'test';
}

interface TestScope {
  resources: TrackedResource[];
  cleanups: Array<(failed: boolean) => Promise<void>>;
}

let scope: TestScope | undefined;

/**
 * Per-test bookkeeping with a single onTestFinished hook. The leak check runs first, before cleanups such
 * as DROP DATABASE ... WITH (FORCE) could close a leaked connection and hide the leak; then cleanups
 * run in reverse order of creation (databases before the private cluster they live on).
 */
function testScope(): TestScope {
  if (scope) return scope;
  const created: TestScope = { resources: [], cleanups: [] };
  onTestFinished(async (context) => {
    scope = undefined;
    const failedAlready = context.task.result?.state === 'fail';
    const leaks = created.resources.filter((resource) => resource.isOpen());
    await Promise.all(leaks.map((resource) => resource.close().catch(() => undefined)));
    const errors: unknown[] = [];
    for (const cleanup of created.cleanups.reverse()) {
      await cleanup(failedAlready || leaks.length > 0).catch((error: unknown) => errors.push(error));
    }
    // After a failure a leak report would only hide the real error: the resources are just closed.
    if (leaks.length > 0 && !failedAlready) {
      const list = leaks.map((resource) => `- ${resource.what}`).join('\n');
      throw new Error(`Leaked, still open when the test ended (close them in the test):\n${list}`);
    }
    if (errors.length > 0) throw errors[0];
  });
  scope = created;
  return created;
}

/**
 * A new database for the current test. Dropped after the test if it passed; kept until the end of the
 * run if it failed, with its name printed for inspection.
 */
export async function freshDatabase(
  cluster: PgCluster,
  /** `encoding`: the database's own (say LATIN1), made from template0 with the C locale. */
  options: { owner?: string; template?: string; encoding?: string } = {},
): Promise<FreshDatabase> {
  const name = uniqueName(`t_${currentTestSlug()}`);
  let sql = `CREATE DATABASE ${ident(name)}`;
  if (options.owner !== undefined) sql += ` OWNER ${ident(options.owner)}`;
  if (options.template !== undefined) sql += ` TEMPLATE ${ident(options.template)}`;
  if (options.encoding !== undefined) {
    sql += ` TEMPLATE template0 ENCODING ${pg.escapeLiteral(options.encoding)} LC_COLLATE 'C' LC_CTYPE 'C'`;
  }
  const { cleanups } = testScope();
  await cluster.query(sql);
  cleanups.push(async (failed) => {
    if (failed) {
      console.warn(
        `[trigsync-test] kept database "${name}" on cluster "${cluster.name}": ${cluster.url(name)}`,
      );
    } else if (await cluster.isRunning()) {
      await cluster.query(`DROP DATABASE IF EXISTS ${ident(name)} WITH (FORCE)`);
    }
  });
  return { name, url: cluster.url(name), cluster };
}

/** A source and two targets: fresh databases on the three shared clusters, each given `ddl`. */
export async function sourceAndTwoTargets(
  ddl: string,
): Promise<{ src: FreshDatabase; one: FreshDatabase; two: FreshDatabase }> {
  const { source, target1, target2 } = sharedClusters();
  const [src, one, two] = await Promise.all([
    freshDatabase(source),
    freshDatabase(target1),
    freshDatabase(target2),
  ]);
  for (const db of [src, one, two]) await db.cluster.query(ddl, [], db.name);
  return { src, one, two };
}

/**
 * A cluster of the test's own, for tests that stop, restart or kill servers or change passwords.
 * Removed after the test, passed or failed; on failure the end of its server log is printed first.
 */
export async function privateCluster(name: string, settings: readonly string[] = []): Promise<PgCluster> {
  const { runRoot } = runInfo();
  const dataDir = join(runRoot, uniqueName(`private-${name}`));
  const cluster = await createCluster({ name, dataDir, settings });
  // Registered before start(), so that a failed start is cleaned up too.
  testScope().cleanups.push(async (failed) => {
    if (failed) {
      const tail = await cluster.logTail(20).catch(() => '');
      console.warn(`[trigsync-test] private cluster "${name}" (${cluster.dataDir}) log:\n${tail}`);
    }
    await cluster.destroy();
  });
  await cluster.start();
  return cluster;
}

/**
 * A hot standby of `primary`, as a read replica's address leads to: a copy of its data directory made
 * while it is stopped (ownership kept), started in recovery (standby.signal) with no primary to stream
 * from, so it stays a standby until promoted. `primary` runs again after. Removed after the test.
 */
export async function coldStandby(primary: PgCluster, name: string): Promise<PgCluster> {
  const { runRoot } = runInfo();
  const dataDir = join(runRoot, uniqueName(`standby-${name}`));
  await primary.stop();
  await promisify(execFile)('cp', ['-a', primary.dataDir, dataDir]);
  await writeFile(join(dataDir, 'standby.signal'), '');
  const standby = await createCluster({ name, dataDir, user: primary.user, password: primary.password });
  testScope().cleanups.push(() => standby.destroy());
  await standby.start();
  await primary.start();
  return standby;
}

/**
 * A private cluster whose commits wait for the disk (fsync on, unlike every other test server): commits
 * are slower and many more transactions are in flight at any moment, as on a busy production server.
 */
export async function durableCluster(name: string): Promise<PgCluster> {
  // Settings on the server's command line: ALTER SYSTEM cannot override the test servers' fsync=off,
  // which is given there too.
  return privateCluster(name, ['fsync=on', 'full_page_writes=on']);
}

export async function createRole(
  cluster: PgCluster,
  role: string,
  password: string,
  options: { login: boolean; superuser?: boolean } = { login: true },
): Promise<void> {
  const attributes = [
    options.login ? 'LOGIN' : 'NOLOGIN',
    options.superuser ? 'SUPERUSER' : 'NOSUPERUSER',
    // Utility statements take no bind parameters, so the literal is escaped instead.
    `PASSWORD ${pg.escapeLiteral(password)}`,
  ];
  await cluster.query(`CREATE ROLE ${ident(role)} WITH ${attributes.join(' ')}`);
}

export async function setPassword(cluster: PgCluster, role: string, password: string): Promise<void> {
  await cluster.query(`ALTER ROLE ${ident(role)} PASSWORD ${pg.escapeLiteral(password)}`);
}

/**
 * Fails the current test if resource is still open when the test ends (it is closed either way), e.g. a
 * worker or pool a test started. A leak is only reported for tests that passed otherwise.
 */
export function trackResource(resource: TrackedResource): void {
  testScope().resources.push(resource);
}

/** A connected pg client that the test must end() before it finishes (leak-checked). */
export async function connect(url: string): Promise<pg.Client> {
  // Taken before any await, while the caller is still on the stack.
  const openedAt = new Error().stack?.split('\n')[2]?.trim() ?? 'at an unknown place';
  const client = new pg.Client({ connectionString: url });
  let open = true;
  client.on('end', () => (open = false));
  // Tests that stop servers expect errors on their clients; queries still reject.
  client.on('error', () => undefined);
  await client.connect();
  const { user, host, port, database } = client;
  trackResource({
    what: `pg client ${user}@${host}:${port}/${database} opened by connect() ${openedAt}`,
    isOpen: () => open,
    close: () => client.end(),
  });
  return client;
}

/**
 * Row count and an order-independent hash of the table's rows (as text, so column order matters).
 * qualifiedTable is SQL syntax: `items`, `public.items`, `"My Schema"."Items"`.
 */
export async function tableFingerprint(
  url: string,
  qualifiedTable: string,
): Promise<{ count: number; hash: string }> {
  return withClient(url, async (client) => {
    // regclass parses and checks the name; its text form is safely quoted.
    const relation = await client.query<{ rel: string }>('select $1::regclass::text as rel', [
      qualifiedTable,
    ]);
    const rel = relation.rows[0]?.rel ?? qualifiedTable;
    const result = await client.query<{ count: string; hash: string }>(
      `select count(*)::text as count, coalesce(sum(hashtext(t::text)), 0)::text as hash from ${rel} t`,
    );
    const row = result.rows[0];
    return { count: Number(row?.count ?? 0), hash: row?.hash ?? '0' };
  });
}
