// High availability: two daemons configured for one source. One leads (holds the advisory lock) and
// applies; the other stands by. When the leader is killed the standby takes over within seconds and
// replication continues with nothing lost or applied twice.
import { describe, expect, it } from 'vitest';

import { configFromObject } from '../../src/config/load.js';
import type { Status } from '../../src/lib/status-report.js';
import { readStatus } from '../../src/changelog/status.js';
import { withClient } from '../support/cluster.js';
import { waitFor } from '../support/fixtures.js';
import { scrape, valueOf } from '../support/metrics.js';
import { ChildDaemon, makeConfig, runCli, configFile, waitCaughtUp } from '../support/replication.js';
import { delay } from '../support/wait.js';
import {
  expectWorkloadConverged,
  runWorkload,
  workloadDatabases,
  workloadConfig,
} from '../support/workload.js';

async function statusNow(raw: Record<string, unknown>): Promise<Status> {
  const config = configFromObject(raw, { env: {} });
  return withClient(config.source.url, (client) => readStatus(client, config));
}

/** Two daemons for one source: the first leads, the second stands by. */
async function leaderAndStandby(
  raw: Record<string, unknown>,
): Promise<{ first: ChildDaemon; second: ChildDaemon }> {
  const first = await ChildDaemon.create(raw);
  const second = await ChildDaemon.create(raw);
  await first.start();
  await waitFor(async () => (await statusNow(raw)).leader?.daemon.endsWith(`:${first.pid}`) === true, {
    what: 'the first daemon to lead',
  });
  await second.start();
  await waitFor(async () => (await second.log()).includes('standing by'), { what: 'the second to stand by' });
  return { first, second };
}

describe('leader election', () => {
  it('a standby takes over within 5 s of the leader being killed, and nothing is lost', async () => {
    const { src, a, b } = await workloadDatabases();
    const raw = workloadConfig(src, { a, b }, { apply: { batchSize: 200, pollIntervalMs: 200 } });
    const config = makeConfig(raw);
    const { first, second } = await leaderAndStandby(raw);

    const load = runWorkload({
      url: src.url,
      writers: 6,
      lateCommitters: 2,
      durationMs: 20_000,
      minCommitted: 201,
      keys: 200,
    });
    await delay(6_000);
    const [leading, standing] = await Promise.all([
      scrape(await first.metricsUrl()),
      scrape(await second.metricsUrl()),
    ]);
    expect(valueOf(leading, 'trigsync_leader')).toBe(1);
    expect(valueOf(standing, 'trigsync_leader')).toBe(0);
    // The standby applied nothing; its gauges show the same source as the leader's.
    expect(
      valueOf(standing, 'trigsync_changes_applied_total', {
        target: 'a',
        table: 'public.items',
        op: 'insert',
      }),
    ).toBe(0);
    expect(
      valueOf(leading, 'trigsync_changes_applied_total', {
        target: 'a',
        table: 'public.items',
        op: 'insert',
      }),
    ).toBeGreaterThan(0);
    const table = await runCli(await configFile(raw), 'status');
    expect(table.out).toContain(`leader: `);
    expect(table.out).toContain(`:${first.pid} since`);

    const killedAt = Date.now();
    await first.kill();
    await waitFor(async () => (await statusNow(raw)).leader?.daemon.endsWith(`:${second.pid}`) === true, {
      what: 'the standby to take over',
      intervalMs: 50,
    });
    const electedAfter = (Date.now() - killedAt) / 1000;
    // Applying again: a row written now reaches both targets.
    const marker = Date.now();
    await src.cluster.query(`insert into events values ($1, 0, 'after the leader died')`, [marker], src.name);
    for (const target of [a, b]) {
      await waitFor(
        async () =>
          (await target.cluster.query(`select 1 from events where id = $1`, [marker], target.name)).length ===
          1,
        { what: `the marker on ${target.name}`, intervalMs: 50 },
      );
    }
    const applyingAfter = (Date.now() - killedAt) / 1000;
    console.info(
      `leader killed: standby elected after ${electedAfter.toFixed(2)} s, applying after ${applyingAfter.toFixed(2)} s`,
    );
    expect(applyingAfter).toBeLessThan(5);

    // The old leader comes back as a standby.
    await first.start();
    await waitFor(
      async () =>
        (await first.log())
          .split('\n')
          .some((l) => l.includes(`"pid":${first.pid}`) && l.includes('standing by')),
      {
        what: 'the restarted daemon to stand by',
      },
    );

    const result = await load;
    expect(result.committed).toBeGreaterThan(200);
    await waitCaughtUp(config);
    await expectWorkloadConverged(src, [a, b]);
    expect((await statusNow(raw)).leader?.daemon.endsWith(`:${second.pid}`)).toBe(true);
    expect(await first.stop()).toBe(0);
    expect(await second.stop()).toBe(0);
    const none = await runCli(await configFile(raw), 'status', '--check');
    expect(none.code).toBe(1);
    expect(none.out).toContain('no trigsync daemon is running');
  });

  it('a hung leader (SIGSTOP) is deposed within leaderTimeoutMs; resumed, it stands by and writes nothing', async () => {
    const { src, a, b } = await workloadDatabases();
    const raw = workloadConfig(src, { a, b }, { apply: { batchSize: 200, pollIntervalMs: 200 } });
    const config = makeConfig(raw);
    const { first, second } = await leaderAndStandby(raw);
    // Every write of a position, with the start of the session that wrote it: a session of the hung
    // process started before it was stopped; the new leader's all start after.
    for (const db of [a, b, src]) {
      const positions = db === src ? 'trigsync.target' : 'trigsync.applied_position';
      if (db !== src) {
        await waitFor(
          async () =>
            (await db.cluster.query(`select to_regclass('trigsync.applied_position') as t`, [], db.name))[0]!
              .t !== null,
          { what: `trigsync's schema on ${db.name}` },
        );
      }
      await db.cluster.query(
        `create table public.position_writes (at timestamptz, session_started timestamptz, pid int);
         create function public.note_position_write() returns trigger language plpgsql as $$ begin
           insert into public.position_writes
             select clock_timestamp(), backend_start, pid from pg_stat_activity where pid = pg_backend_pid();
           return null; end $$;
         create trigger note_position_write after insert or update on ${positions}
           for each statement execute function public.note_position_write();
         alter table ${positions} enable always trigger note_position_write`,
        [],
        db.name,
      );
    }
    const load = runWorkload({
      url: src.url,
      writers: 4,
      lateCommitters: 1,
      durationMs: 25_000,
      minCommitted: 201,
      keys: 200,
    });
    const now = async (): Promise<string> =>
      (await src.cluster.query<{ t: string }>('select clock_timestamp()::text as t', [], src.name))[0]!.t;
    await waitFor(
      async () =>
        Number(
          (
            await a.cluster.query<{ n: string }>(
              'select count(*) as n from public.position_writes',
              [],
              a.name,
            )
          )[0]!.n,
        ) > 5,
      { what: 'the leader to apply under load' },
    );

    const stoppedAt = await now();
    const stopped = Date.now();
    first.signal('SIGSTOP');
    await waitFor(async () => (await statusNow(raw)).leader?.daemon.endsWith(`:${second.pid}`) === true, {
      what: 'the standby to depose the hung leader',
      timeoutMs: 30_000,
      intervalMs: 100,
    });
    const tookOver = (Date.now() - stopped) / 1000;
    const marker = Date.now();
    await src.cluster.query(`insert into events values ($1, 0, 'after the leader hung')`, [marker], src.name);
    for (const target of [a, b]) {
      await waitFor(
        async () =>
          (await target.cluster.query(`select 1 from events where id = $1`, [marker], target.name)).length ===
          1,
        { what: `the marker on ${target.name}`, intervalMs: 50, timeoutMs: 30_000 },
      );
    }
    const applying = (Date.now() - stopped) / 1000;
    console.info(
      `leader hung: deposed and replaced after ${tookOver.toFixed(2)} s, applying after ${applying.toFixed(2)} s`,
    );
    // leaderTimeoutMs is 6 s by default; a standby looks every second.
    expect(tookOver).toBeLessThan(10);
    expect(await second.log()).toContain('the leader is silent; ended its sessions to take over');

    const resumedAt = await now();
    first.signal('SIGCONT');
    await waitFor(
      async () => {
        const lines = (await first.log()).split('\n');
        const resigned = lines.findIndex((l) => l.includes('no longer leading'));
        return resigned >= 0 && lines.slice(resigned).some((l) => l.includes('standing by'));
      },
      { what: 'the resumed daemon to stand by' },
    );
    const result = await load;
    expect(result.committed).toBeGreaterThan(200);
    await waitCaughtUp(config);
    await expectWorkloadConverged(src, [a, b]);
    // No position written after the resume by a session that the hung process had opened before.
    for (const db of [a, b, src]) {
      const late = await db.cluster.query(
        `select * from public.position_writes where at > $1 and session_started < $2`,
        [resumedAt, stoppedAt],
        db.name,
      );
      expect(late, db.name).toEqual([]);
    }
    expect((await statusNow(raw)).leader?.daemon.endsWith(`:${second.pid}`)).toBe(true);
    expect(await first.stop()).toBe(0);
    expect(await second.stop()).toBe(0);
  }, 120_000);
});
