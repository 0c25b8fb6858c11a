// verify's first pass alone (no re-checks) under a writer of hot keys and a pruner that never rests:
// the keys in flight between the source's snapshot and the target's are found exactly, so that every
// key an equal target differs by in that pass is one of them (and is re-checked later), however the
// daemon's commits and the pruner's deletes fall.
import pg from 'pg';
import { describe, expect, it } from 'vitest';

import { pausePruning, pruneLog, resumePruning } from '../../src/changelog/pruner.js';
import { forEachTarget } from '../../src/verify/session.js';
import { keyId } from '../../src/verify/table-side.js';
import { compareTarget, verify } from '../../src/verify/verify.js';
import { freshDatabase, sharedClusters, waitFor, type FreshDatabase } from '../support/fixtures.js';
import { makeConfig, startDaemon, waitCaughtUp } from '../support/replication.js';
import { loopOnSession } from '../support/workload.js';

const run = (db: FreshDatabase, sql: string): Promise<Record<string, unknown>[]> =>
  db.cluster.query(sql, undefined, db.name);

describe('verify, keys in flight', () => {
  it('a paused pruner deletes nothing, and prunes once resumed', async () => {
    const { source, target1 } = sharedClusters();
    const [src, dst] = await Promise.all([freshDatabase(source), freshDatabase(target1)]);
    const build = 'create table t (id int primary key, v int not null)';
    await Promise.all([run(src, build), run(dst, build)]);
    const config = makeConfig({
      source: { url: src.url },
      tables: ['t'],
      targets: [{ name: 'replica', url: dst.url, initialSync: 'none' }],
      metrics: { enabled: false },
    });
    const daemon = await startDaemon(config);
    await run(src, 'insert into t select g, g from generate_series(1, 100) g');
    await waitCaughtUp(config);
    // The pruner keeps what an open transaction anywhere on the cluster (another test's) kept from the
    // registered position's snapshot: wait for a position that holds none of the changes back.
    await waitFor(
      async () =>
        (
          await run(
            src,
            `select bool_and(pg_snapshot_xmin(t.from_snapshot) > (select max(txid) from trigsync.change_log)) as past
             from trigsync.target t`,
          )
        )[0]?.past === true,
      { what: 'a registered position past every change', timeoutMs: 30_000 },
    );
    await daemon.stop();

    const [verifier, pruner] = [new pg.Client(src.url), new pg.Client(src.url)];
    await Promise.all([verifier.connect(), pruner.connect()]);
    try {
      await pausePruning(verifier, 'trigsync');
      expect(await pruneLog(pruner, 'trigsync')).toBe(0);
      expect(await run(src, 'select count(*)::int as n from trigsync.change_log')).toEqual([{ n: 100 }]);
      await resumePruning(verifier, 'trigsync');
      expect(await pruneLog(pruner, 'trigsync')).toBe(100);
    } finally {
      await Promise.all([verifier.end(), pruner.end()]);
    }
  });

  it('finds an equal target different only by keys in flight, under hot writes and constant pruning', async () => {
    const { source, target1 } = sharedClusters();
    const [src, dst] = await Promise.all([freshDatabase(source), freshDatabase(target1)]);
    const build = `create table t (id int primary key, v int not null, note text);
      insert into t select g, g, md5(g::text) from generate_series(1, 20000) g;`;
    await Promise.all([run(src, build), run(dst, build)]);
    const config = makeConfig({
      source: { url: src.url },
      tables: ['t'],
      targets: [{ name: 'replica', url: dst.url, initialSync: 'none' }],
      apply: { pollIntervalMs: 50 },
      metrics: { enabled: false },
    });
    const daemon = await startDaemon(config);
    await waitCaughtUp(config);

    // 500 hot keys: most are changed again while a comparison runs.
    const writer = loopOnSession(src.url, 'in-flight-test', async (client) => {
      const id = 1 + Math.floor(Math.random() * 500);
      await client.query(`update t set v = v + 1, note = md5(random()::text) where id = $1`, [id]);
    });
    const pruner = loopOnSession(src.url, 'in-flight-test', async (client) => {
      await pruneLog(client, 'trigsync');
    });
    const found: string[] = [];
    let inFlight = 0;
    try {
      await waitFor(() => writer.loops() >= 100 && pruner.loops() >= 10, {
        what: 'the writer and the pruner',
      });
      for (let pass = 0; pass < 12; pass++) {
        const [compared] = await forEachTarget(config, { target: 'replica' }, (session) =>
          compareTarget(session.source, session.client, session.work, { rechecks: 0 }),
        );
        const table = compared!.compared[0]!;
        inFlight += table.byKey.size;
        const outside = table.differences.map((d) => keyId(d.key)).filter((id) => !table.byKey.has(id));
        if (outside.length > 0) found.push(`pass ${pass}: ${outside.join(' ')}`);
      }
      expect(inFlight, 'keys in flight over all passes').toBeGreaterThan(0);
    } finally {
      await Promise.all([writer.stop(), pruner.stop()]);
    }
    expect(found).toEqual([]);
    await waitCaughtUp(config);
    expect((await verify(config, { target: 'replica' })).equal).toBe(true);
    await daemon.stop();
  });
});
