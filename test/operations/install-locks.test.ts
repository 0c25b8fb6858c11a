// The install makes its capture triggers while the shop writes: CREATE TRIGGER locks each table to the
// end of the install's transaction, so a user's transaction that writes the tables in the other order
// waits in a cycle with it. The install gives way (src/db/giving-way.ts): the user's transaction goes on
// and commits, and the install, begun again, finishes.
import { describe, expect, it } from 'vitest';

import { inTransactionGivingWay, onUsersTable } from '../../src/db/giving-way.js';
import { TableBusy } from '../../src/failure/errors.js';
import { connect, freshDatabase, sharedClusters, sourceAndTwoTargets, waitFor } from '../support/fixtures.js';
import { configFile, runCli } from '../support/replication.js';

const schema = `
  create table a (id int primary key, v text);
  create table b (id int primary key, v text);`;

describe('install beside writers', () => {
  it('gives way to a transaction that holds the tables in the other order, then installs', async () => {
    const { src, one } = await sourceAndTwoTargets(schema);
    const file = await configFile({
      source: { url: src.url },
      tables: ['public.a', 'public.b'],
      targets: [{ name: 'one', url: one.url, initialSync: 'none' }],
      metrics: { enabled: false },
    });
    const writer = await connect(src.url);
    const watcher = await connect(src.url);
    try {
      await writer.query('begin');
      await writer.query(`insert into b values (1, 'first')`);
      // The install makes a's triggers (a's lock is its own) and waits for b's.
      const installing = runCli(file, 'install');
      await waitFor(
        async () =>
          (
            await watcher.query<{ waiting: boolean }>(
              `select exists (select from pg_locks where not granted and relation = 'public.b'::regclass) as waiting`,
            )
          ).rows[0]!.waiting,
        { what: 'the install waiting for the lock of table b' },
      );
      // The writer now wants a: the cycle. Without giving way, one of the two is cancelled as a deadlock.
      await writer.query(`insert into a values (1, 'second')`);
      await writer.query('commit');
      const { code, out } = await installing;
      expect(out).not.toMatch(/deadlock/);
      expect(code).toBe(0);
      const triggers = await watcher.query<{ n: number }>(
        `select count(*)::int as n from pg_trigger
          where tgrelid in ('public.a'::regclass, 'public.b'::regclass) and tgname like 'trigsync_capture_%'`,
      );
      expect(triggers.rows[0]!.n).toBe(8);
      // Captured from now on.
      await watcher.query(`insert into a values (2, 'captured'); insert into b values (2, 'captured')`);
      const logged = await watcher.query<{ n: number }>(`select count(*)::int as n from trigsync.change_log`);
      expect(logged.rows[0]!.n).toBe(2);
    } finally {
      await writer.query('rollback').catch(() => undefined);
      await Promise.all([writer.end(), watcher.end()]);
    }
  });

  it('gives up after its budget with the busy table named, and leaves the holder alone', async () => {
    const db = await freshDatabase(sharedClusters().source);
    await db.cluster.query(schema, [], db.name);
    const holder = await connect(db.url);
    const installer = await connect(db.url);
    try {
      await holder.query('begin');
      await holder.query(`insert into b values (1, 'held')`);
      const started = Date.now();
      const failed = await inTransactionGivingWay(
        installer,
        () => onUsersTable(installer, 'public.b', ['create index on b (v)']),
        { budgetMs: 1_000 },
      ).catch((thrown: unknown) => thrown);
      expect(failed).toBeInstanceOf(TableBusy);
      expect((failed as Error).message).toMatch(/^public\.b: busy for \d+ s: each try waited \d+ms/);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
      // The installer's session is usable and has its own lock_timeout back.
      const after = await installer.query<{ t: string }>(`select current_setting('lock_timeout') as t`);
      expect(after.rows[0]!.t).toBe('0');
      await holder.query(`insert into b values (2, 'still held')`);
      await holder.query('commit');
      const rows = await installer.query<{ n: number }>(`select count(*)::int as n from b`);
      expect(rows.rows[0]!.n).toBe(2);
    } finally {
      await holder.query('rollback').catch(() => undefined);
      await Promise.all([holder.end(), installer.end()]);
    }
  });
});
