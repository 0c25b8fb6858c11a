// Connection poolers between trigsync and a server. One in transaction mode gives each transaction
// whichever server connection is free, so that a session's state (a target session's
// session_replication_role = replica, the leader's lock, LISTEN) would be left to other clients'
// sessions: an application's session through the same pooler would then write without its foreign-key
// checks and triggers. trigsync refuses such a pooler before it sets anything: `check` says so, a target
// behind one parks saying so while the others apply, and a source behind one stops the daemon's start.
// One in session mode keeps a session on one server connection: trigsync replicates through it as it
// does directly.
import { afterEach, describe, expect, it } from 'vitest';

import { connect, freshDatabase, sharedClusters, waitFor } from '../support/fixtures.js';
import {
  configFile,
  expectSameItems,
  fingerprint,
  makeConfig,
  runCli,
  startDaemon,
  waitParked,
  targetStatus,
  waitCaughtUp,
} from '../support/replication.js';
import { TestPooler, type PoolMode } from '../support/test-pooler.js';

const table = 'create table items (id int primary key, v text not null)';
const poolerMessage =
  /reached through a connection pooler in transaction mode \(two of trigsync's sessions ran on one server process, \d+\)/;

const poolers: TestPooler[] = [];
afterEach(async () => {
  await Promise.all(poolers.splice(0).map((pooler) => pooler.close()));
});

async function pooled(url: string, mode: PoolMode): Promise<TestPooler> {
  const pooler = await TestPooler.start(url, mode);
  poolers.push(pooler);
  return pooler;
}

async function writeItems(url: string, first: number, count: number): Promise<void> {
  const client = await connect(url);
  try {
    await client.query(`insert into items select g, 'v' || g from generate_series($1::int, $2::int) g`, [
      first,
      first + count - 1,
    ]);
    await client.query(`update items set v = v || '!' where id % 3 = 0`);
    await client.query(`delete from items where id = $1`, [first]);
  } finally {
    await client.end();
  }
}

describe('connection poolers', () => {
  it('a target behind a pooler in transaction mode: check says so, it parks writing nothing and leaving no session state, the others apply', async () => {
    const { source, target1 } = sharedClusters();
    const [src, direct, behind] = await Promise.all([
      freshDatabase(source),
      freshDatabase(target1),
      freshDatabase(target1),
    ]);
    for (const db of [src, direct, behind]) await db.cluster.query(table, [], db.name);
    const pooler = await pooled(behind.url, 'transaction');
    const raw = {
      source: { url: src.url },
      tables: ['items'],
      targets: [
        { name: 'direct', url: direct.url, initialSync: 'none' },
        { name: 'pooled', url: pooler.url, initialSync: 'none' },
      ],
      apply: { pollIntervalMs: 100 },
      retry: { initialDelayMs: 50, maxDelayMs: 500, dataErrorDelayMs: 200 },
      metrics: { enabled: false },
    };
    const config = makeConfig(raw);
    const checked = await runCli(await configFile(raw), 'check');
    expect(checked.out).toMatch(new RegExp(`pooled\\s+FAILED\\s+\\S+: ${poolerMessage.source}`));
    expect(checked.code).not.toBe(0);

    const daemon = await startDaemon(config);
    await writeItems(src.url, 1, 200);
    const parked = await waitParked(config, 'pooled', { what: 'the target behind the pooler to park' });
    expect(parked.lastError).toMatch(poolerMessage);
    const everything = 'select * from items';
    const expected = await fingerprint(src.url, everything);
    await waitFor(
      async () => {
        const found = await fingerprint(direct.url, everything);
        return found.count === expected.count && found.hash === expected.hash;
      },
      { what: 'the direct target to hold every row' },
    );
    expect((await targetStatus(config, 'pooled')).state).toBe('parked');
    expect(await behind.cluster.query('select count(*)::int as n from items', [], behind.name)).toEqual([
      { n: 0 },
    ]);
    // An application's sessions through the same pooler find none of trigsync's session state.
    const application = await connect(pooler.url);
    try {
      for (let i = 0; i < 5; i++) {
        const found = await application.query<{ role: string }>(
          `select current_setting('session_replication_role') as role`,
        );
        expect(found.rows[0]).toMatchObject({ role: 'origin' });
      }
    } finally {
      await application.end();
    }
    await daemon.stop();
  });

  it('a source behind a pooler in transaction mode: the daemon does not start, saying so', async () => {
    const { source, target1 } = sharedClusters();
    const [src, dst] = await Promise.all([freshDatabase(source), freshDatabase(target1)]);
    for (const db of [src, dst]) await db.cluster.query(table, [], db.name);
    const pooler = await pooled(src.url, 'transaction');
    const config = makeConfig({
      source: { url: pooler.url },
      tables: ['items'],
      targets: [{ name: 'dst', url: dst.url, initialSync: 'none' }],
      metrics: { enabled: false },
    });
    await expect(startDaemon(config)).rejects.toThrow(new RegExp(`^source: ${poolerMessage.source}`));
    // Nothing was installed: the check refused before any change to the source.
    expect(
      await src.cluster.query(
        `select count(*)::int as n from pg_namespace where nspname = $1`,
        [config.schema],
        src.name,
      ),
    ).toEqual([{ n: 0 }]);
  });

  it('replicates through poolers in session mode on both sides as it does directly', async () => {
    const { source, target1 } = sharedClusters();
    const [src, dst] = await Promise.all([freshDatabase(source), freshDatabase(target1)]);
    for (const db of [src, dst]) await db.cluster.query(table, [], db.name);
    const [toSource, toTarget] = await Promise.all([pooled(src.url, 'session'), pooled(dst.url, 'session')]);
    await writeItems(src.url, 1, 50);
    const config = makeConfig({
      source: { url: toSource.url },
      tables: ['items'],
      targets: [{ name: 'dst', url: toTarget.url, initialSync: 'copy' }],
      apply: { pollIntervalMs: 100 },
      metrics: { enabled: false },
    });
    const daemon = await startDaemon(config);
    await writeItems(src.url, 100, 300);
    await waitCaughtUp(config);
    await expectSameItems(src.url, dst.url);
    await daemon.stop();
  });
});
