// G4 and G5 against real outages: a target's server stopped, its password changed, its backend
// terminated mid-batch. The failing target parks and drains by itself; the other target carries on.
import { describe, expect, it } from 'vitest';

import {
  createRole,
  freshDatabase,
  privateCluster,
  setPassword,
  sharedClusters,
  waitFor,
  type PgCluster,
} from '../support/fixtures.js';
import { makeConfig, startDaemon, targetStatus, waitCaughtUp } from '../support/replication.js';
import { delay } from '../support/wait.js';
import { expectWorkloadConverged, steadyWriter, workloadTables } from '../support/workload.js';

/** Source and C on the shared clusters, B on a private one that the test may stop. */
async function topology(bRole?: { user: string; password: string }) {
  const { source, target1 } = sharedClusters();
  const [src, c] = await Promise.all([freshDatabase(source), freshDatabase(target1)]);
  const cluster: PgCluster = await privateCluster('b');
  if (bRole !== undefined) await createRole(cluster, bRole.user, bRole.password);
  const b = await freshDatabase(cluster, bRole === undefined ? {} : { owner: bRole.user });
  for (const db of [src, b, c]) await db.cluster.query(workloadTables, [], db.name);
  if (bRole !== undefined)
    await cluster.query(
      `alter table items owner to ${bRole.user}; alter table events owner to ${bRole.user}`,
      [],
      b.name,
    );
  const bUrl = bRole === undefined ? b.url : cluster.url(b.name, bRole);
  const config = makeConfig({
    source: { url: src.url },
    tables: ['items', 'events'],
    targets: [
      { name: 'b', url: bUrl, initialSync: 'none' },
      { name: 'c', url: c.url, initialSync: 'none' },
    ],
    apply: { pollIntervalMs: 200 },
    retry: { initialDelayMs: 100, maxDelayMs: 1_000, dataErrorDelayMs: 1_000 },
  });
  return { src, b, c, cluster, config };
}

describe('a failing target', () => {
  it('parks while its server is down for 20 s, other targets keep their lag low, and it drains after', async () => {
    const { src, b, c, cluster, config } = await topology();
    const daemon = await startDaemon(config);
    const writer = steadyWriter(src.url, 20);
    await waitCaughtUp(config);

    await cluster.stop();
    const downUntil = Date.now() + 20_000;
    let worstLagC = 0;
    let sawParked = false;
    while (Date.now() < downUntil) {
      const [sb, sc] = [await targetStatus(config, 'b'), await targetStatus(config, 'c')];
      worstLagC = Math.max(worstLagC, sc.lagSeconds);
      sawParked ||= sb.state === 'parked' && sb.lastError !== null;
      await delay(500);
    }
    console.info('worst lag of c while b was down (s):', worstLagC);
    expect(sawParked).toBe(true);
    expect(worstLagC).toBeLessThan(3);

    await cluster.start();
    await writer.stop();
    await waitCaughtUp(config, 60_000);
    expect((await targetStatus(config, 'b')).state).toBe('live');
    await expectWorkloadConverged(src, [b, c]);
    await daemon.stop();
  });

  it('parks on a changed password with an error that names no password, and drains once it is restored', async () => {
    const role = { user: 'b_replicator', password: 'first-secret-Pw1' };
    const { src, b, c, cluster, config } = await topology(role);
    const daemon = await startDaemon(config);
    const writer = steadyWriter(src.url, 20);
    await waitCaughtUp(config);

    // The seeds' own failure test: the password changes, and the session that used it is gone.
    await setPassword(cluster, role.user, 'another-secret-Pw2');
    await cluster.query(`select pg_terminate_backend(pid) from pg_stat_activity where usename = $1`, [
      role.user,
    ]);
    // First the terminated session, then every reconnect: the error the status shows becomes the refusal.
    await waitFor(
      async () => /password authentication failed/.test((await targetStatus(config, 'b')).lastError ?? ''),
      {
        what: 'b to park on the refused password',
        timeoutMs: 20_000,
      },
    );
    const parked = await targetStatus(config, 'b');
    expect(parked.state).toBe('parked');
    expect(parked.lastError).not.toContain('first-secret');
    expect(parked.lastError).not.toContain('another-secret');
    expect(parked.parkedSince).not.toBeNull();
    expect((await targetStatus(config, 'c')).state).not.toBe('parked');

    await setPassword(cluster, role.user, role.password);
    await writer.stop();
    await waitCaughtUp(config, 60_000);
    await expectWorkloadConverged(src, [b, c]);
    await daemon.stop();
  });

  it('applies nothing twice or out of order when its backend is terminated in the middle of batches', async () => {
    const { src, b, c, cluster, config } = await topology();
    const daemon = await startDaemon(
      makeConfig({ ...rawOf(config), apply: { batchSize: 20, pollIntervalMs: 100 } }),
    );
    const writer = steadyWriter(src.url, 2);
    let terminated = 0;
    const until = Date.now() + 10_000;
    while (Date.now() < until) {
      const rows = await cluster.query<{ t: boolean }>(
        `select pg_terminate_backend(pid) as t from pg_stat_activity where application_name = 'trigsync' and state <> 'idle'`,
      );
      terminated += rows.filter((r) => r.t).length;
      await delay(50);
    }
    console.info('trigsync backends terminated while busy:', terminated);
    expect(terminated).toBeGreaterThan(0);
    await writer.stop();
    await waitCaughtUp(config, 60_000);
    await expectWorkloadConverged(src, [b, c]);
    await daemon.stop();
  });
});

/** The raw form of a config made by makeConfig, to vary one key. */
function rawOf(config: ReturnType<typeof makeConfig>): Record<string, unknown> {
  return {
    source: config.source,
    tables: config.tables.map((t) => `${t.schema}.${t.name}`),
    targets: config.targets.map((t) => ({ name: t.name, url: t.url, initialSync: t.initialSync })),
    retry: config.retry,
  };
}
