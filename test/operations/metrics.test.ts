// What an operator scrapes and signals: every series of SPEC §5 with values that agree with the
// databases, /healthz and /readyz, and a SIGTERM that drains within the timeout (a second one at once).
import { describe, expect, it } from 'vitest';

import { connect, waitFor, type FreshDatabase } from '../support/fixtures.js';
import { httpStatus, scrape, valueOf } from '../support/metrics.js';
import { ChildDaemon, makeConfig, runCli, configFile, waitCaughtUp } from '../support/replication.js';
import {
  expectWorkloadConverged,
  steadyWriter,
  workloadDatabases,
  workloadConfig,
} from '../support/workload.js';

async function setup(extra: Record<string, unknown> = {}) {
  const { src, a, b } = await workloadDatabases();
  const raw = workloadConfig(
    src,
    { a, b },
    {
      retry: { initialDelayMs: 100, maxDelayMs: 1000, dataErrorDelayMs: 1000 },
      ...extra,
    },
  );
  const daemon = await ChildDaemon.create(raw);
  await daemon.start();
  return { src, a, b, raw, config: makeConfig(raw), daemon, metrics: await daemon.metricsUrl() };
}

const series = [
  'trigsync_target_backlog_changes',
  'trigsync_target_lag_seconds',
  'trigsync_target_parked',
  'trigsync_changes_applied_total',
  'trigsync_apply_errors_total',
  'trigsync_batch_duration_seconds_bucket',
  'trigsync_batch_duration_seconds_count',
  'trigsync_replication_latency_seconds_bucket',
  'trigsync_replication_latency_seconds_sum',
  'trigsync_change_log_rows',
  'trigsync_conflicts_total',
  // The process defaults of prom-client.
  'process_cpu_user_seconds_total',
  'process_resident_memory_bytes',
  'nodejs_heap_size_used_bytes',
  'nodejs_eventloop_lag_seconds',
];

/** trigsync sessions on this database waiting for a lock. */
async function applyWaitingOnLock(db: FreshDatabase): Promise<number> {
  const rows = await db.cluster.query<{ n: number }>(
    `select count(*)::int as n from pg_stat_activity
      where datname = current_database() and application_name = 'trigsync' and wait_event_type = 'Lock'`,
    [],
    db.name,
  );
  return rows[0]!.n;
}

describe('the metrics endpoint', () => {
  it('shows every SPEC §5 series with values that agree with the databases, lag to the second', async () => {
    const { src, a, b, raw, config, daemon, metrics } = await setup({ shutdownTimeoutMs: 10_000 });
    const base = metrics.replace(/\/metrics$/, '');
    expect(await httpStatus(`${base}/healthz`)).toBe(200);
    await waitFor(async () => (await httpStatus(`${base}/readyz`)) === 200, { what: '/readyz' });

    const writer = steadyWriter(src.url, 5);
    await waitFor(
      async () =>
        (valueOf(await scrape(metrics), 'trigsync_replication_latency_seconds_count', { target: 'a' }) ?? 0) >
        50,
      { what: 'changes applied to a' },
    );

    // Hold target b's events table: b's batches wait, its backlog and lag grow; a carries on.
    const blocker = await connect(b.url);
    await blocker.query('begin; lock table events in access exclusive mode');
    const blockedAt = Date.now();
    await waitFor(
      async () => (valueOf(await scrape(metrics), 'trigsync_target_lag_seconds', { target: 'b' }) ?? 0) > 3,
      { what: "b's lag to pass 3 s", timeoutMs: 20_000 },
    );
    const during = await scrape(metrics);
    for (const name of series)
      expect(
        during.some((s) => s.name === name),
        name,
      ).toBe(true);
    const elapsed = (Date.now() - blockedAt) / 1000;
    const lagB = valueOf(during, 'trigsync_target_lag_seconds', { target: 'b' })!;
    console.info(`b blocked ${elapsed.toFixed(1)} s; lag gauge ${lagB.toFixed(2)} s`);
    // The oldest unapplied change is at most one batch older than the lock; the gauge is read each second.
    expect(lagB).toBeGreaterThan(elapsed - 2.5);
    expect(lagB).toBeLessThan(elapsed + 1.5);
    expect(valueOf(during, 'trigsync_target_backlog_changes', { target: 'b' })).toBeGreaterThan(10);
    expect(valueOf(during, 'trigsync_target_lag_seconds', { target: 'a' })).toBeLessThan(1.5);
    expect(valueOf(during, 'trigsync_target_parked', { target: 'a' })).toBe(0);
    expect(valueOf(during, 'trigsync_change_log_rows')).toBeGreaterThan(0);
    expect(valueOf(during, 'trigsync_conflicts_total', { target: 'a', table: 'public.items' })).toBe(0);
    expect(valueOf(during, 'trigsync_apply_errors_total', { target: 'a', kind: 'data' })).toBe(0);
    expect(valueOf(during, 'trigsync_leader')).toBe(1);
    // Latency buckets run from milliseconds to minutes.
    const les = during
      .filter((s) => s.name === 'trigsync_replication_latency_seconds_bucket' && s.labels['target'] === 'a')
      .map((s) => Number(s.labels['le']))
      .filter(Number.isFinite);
    expect(Math.min(...les)).toBeLessThanOrEqual(0.005);
    expect(Math.max(...les)).toBeGreaterThanOrEqual(300);

    await blocker.query('rollback');
    await blocker.end();
    const committed = await writer.stop();
    await waitCaughtUp(config);
    await expectWorkloadConverged(src, [a, b]);
    await waitFor(
      async () => {
        const after = await scrape(metrics);
        return (
          valueOf(after, 'trigsync_target_backlog_changes', { target: 'b' }) === 0 &&
          valueOf(after, 'trigsync_target_lag_seconds', { target: 'b' }) === 0
        );
      },
      { what: "b's backlog gauge to read 0", timeoutMs: 5_000 },
    );
    // Each of the writer's commits inserted one event: counted exactly once per target.
    const after = await scrape(metrics);
    for (const target of ['a', 'b']) {
      expect(
        valueOf(after, 'trigsync_changes_applied_total', { target, table: 'public.events', op: 'insert' }),
      ).toBe(committed);
      const count = valueOf(after, 'trigsync_replication_latency_seconds_count', { target })!;
      const sum = valueOf(after, 'trigsync_replication_latency_seconds_sum', { target })!;
      expect(count).toBeGreaterThanOrEqual(2 * committed);
      console.info(
        `target ${target}: ${count} changes, mean latency ${((sum / count) * 1000).toFixed(1)} ms`,
      );
    }
    expect((await runCli(await configFile(raw), 'status', '--check')).code).toBe(0);

    // SIGTERM while idle and under load alike drains within shutdownTimeoutMs and exits 0.
    const load = steadyWriter(src.url, 2);
    await waitFor(
      async () =>
        (valueOf(await scrape(metrics), 'trigsync_target_backlog_changes', { target: 'a' }) ?? 0) >= 0,
      { what: 'a scrape' },
    );
    const stopAsked = Date.now();
    daemon.signal('SIGTERM');
    const exit = await daemon.exit();
    const stopSeconds = (Date.now() - stopAsked) / 1000;
    await load.stop();
    console.info(`SIGTERM under load: exit ${exit.code} after ${stopSeconds.toFixed(2)} s`);
    expect(exit.code).toBe(0);
    expect(stopSeconds).toBeLessThan(10);
    expect(await httpStatus(`${base}/healthz`)).toBe(0);
  });

  it('SIGTERM waits for a stuck batch up to the timeout (exit 3); a second signal stops at once', async () => {
    const { b, daemon, metrics, src, raw } = await setup({ shutdownTimeoutMs: 3_000 });
    const blocker = await connect(b.url);
    await blocker.query('begin; lock table events in access exclusive mode');
    const writer = steadyWriter(src.url, 20);
    await waitFor(
      async () =>
        (valueOf(await scrape(metrics), 'trigsync_target_backlog_changes', { target: 'b' }) ?? 0) > 5,
      { what: "b's backlog" },
    );
    const asked = Date.now();
    daemon.signal('SIGTERM');
    const timedOut = await daemon.exit();
    const waited = (Date.now() - asked) / 1000;
    console.info(`stuck batch: exit ${timedOut.code} after ${waited.toFixed(2)} s (timeout 3 s)`);
    expect(timedOut.code).toBe(3);
    expect(waited).toBeGreaterThan(2.5);
    expect(waited).toBeLessThan(6);

    // The first daemon's batch still waits for the lock on b after its process exited (a backend blocked
    // on a lock does not notice its client is gone), holding b's apply lock: end it, as an operator would,
    // so that the batch found waiting below is the new daemon's.
    await b.cluster.query(
      `select pg_terminate_backend(pid) from pg_stat_activity
        where datname = current_database() and application_name = 'trigsync'`,
      [],
      b.name,
    );
    await waitFor(async () => (await applyWaitingOnLock(b)) === 0, {
      what: "the first daemon's batch to end",
    });
    const again = await ChildDaemon.create({ ...raw, shutdownTimeoutMs: 60_000 });
    await again.start();
    await waitFor(async () => (await applyWaitingOnLock(b)) > 0, {
      what: "the new daemon's batch to wait for the lock",
    });
    again.signal('SIGTERM');
    await waitFor(async () => (await again.log()).includes('stopping: finishing the batches in flight'), {
      what: 'the first signal',
    });
    expect(again.running).toBe(true);
    const second = Date.now();
    again.signal('SIGTERM');
    const forced = await again.exit();
    console.info(`second SIGTERM: exit ${forced.code} after ${Date.now() - second} ms`);
    expect(forced.code).toBe(3);
    expect(Date.now() - second).toBeLessThan(1_500);
    await writer.stop();
    await blocker.query('rollback');
    await blocker.end();
  });
});
