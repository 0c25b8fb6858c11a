// A start's workers begin their target sessions while the leader installs on the source
// (src/worker/early-session.ts): on a far target those round trips no longer wait for the install.
import { describe, expect, it } from 'vitest';

import { withClient } from '../support/cluster.js';
import { waitFor, type PgCluster } from '../support/fixtures.js';
import { caughtUpPair, expectSameItems, startDaemon, waitCaughtUp } from '../support/replication.js';

describe("a start's target sessions", () => {
  it('start on the target, its apply lock taken, while the install waits; then apply as usual', async () => {
    const { src, dst, config } = await caughtUpPair();
    await src.cluster.query(
      `insert into items select g, 'backlog' from generate_series(1, 500) g`,
      [],
      src.name,
    );

    // The install takes this lock first (src/capture/install.ts lockCapture): held here, it waits.
    await withClient(src.url, async (holder) => {
      await holder.query('begin');
      await holder.query(`select pg_advisory_xact_lock(hashtext('trigsync capture'), hashtext($1))`, [
        config.schema,
      ]);
      const starting = startDaemon(config);
      starting.catch(() => undefined);
      const trigsyncSessions = async (cluster: PgCluster, database: string, where: string) =>
        (
          await cluster.query<{ n: number }>(
            `select count(*)::int as n from pg_stat_activity a
              where a.datname = $1 and a.application_name = 'trigsync' and ${where}`,
            [database],
          )
        )[0]!.n;
      await waitFor(
        async () => (await trigsyncSessions(src.cluster, src.name, `a.wait_event = 'advisory'`)) === 1,
        { what: 'the install to wait for the capture lock' },
      );
      // The worker's apply lock on the target (src/apply/target-lock.ts), taken by its session's start.
      await waitFor(
        async () =>
          (await trigsyncSessions(
            dst.cluster,
            dst.name,
            `exists (select from pg_locks l where l.pid = a.pid and l.locktype = 'advisory' and l.granted
                        and l.classid = hashtext('trigsync apply')::oid)`,
          )) === 1,
        { what: 'the target session to start while the install waits' },
      );
      expect(await trigsyncSessions(src.cluster, src.name, `a.wait_event = 'advisory'`)).toBe(1);
      await holder.query('commit');
      const daemon = await starting;
      await waitCaughtUp(config);
      await daemon.stop();
    });
    await expectSameItems(src.url, dst.url);
  });
});
