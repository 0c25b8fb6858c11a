// Least privilege (issue #9, docs/operations.md "Roles and privileges"): trigsync runs with a source role
// that owns none of the captured tables, holding only TRIGGER and SELECT on them and a schema an admin
// made for it, and a target role with only what apply needs. No superuser anywhere: the tables belong to
// an application role, which writes them and needs nothing of trigsync's. (The other way, a source role
// owning its tables, with a read-only target, is test/replication/guard.test.ts.)
import { describe, expect, it } from 'vitest';

import { withClient } from '../support/cluster.js';
import {
  createRole,
  freshDatabase,
  ident,
  sharedClusters,
  uniqueName,
  type PgCluster,
} from '../support/fixtures.js';
import {
  configFile,
  expectSameRows,
  makeConfig,
  runCli,
  startDaemon,
  waitCaughtUp,
} from '../support/replication.js';

const tables = `
  create table orders (id bigint primary key, status text not null, total numeric(12, 2));
  create table "Order Lines" (order_id bigint, line int, qty int not null, primary key (order_id, line));`;
const tableList = 'orders, "Order Lines"';

/** A database of its own with the tables, made by an admin; `grants` run there as the admin. */
async function adminDatabase(cluster: PgCluster, grants: string) {
  const db = await freshDatabase(cluster);
  await cluster.query(
    `revoke all on database ${ident(db.name)} from public; ${tables}; ${grants}`,
    [],
    db.name,
  );
  return db;
}

async function rolesOf(url: string): Promise<{ superuser: boolean; ownsTables: boolean }> {
  return withClient(url, async (client) => {
    const result = await client.query<{ superuser: boolean; owns: boolean }>(
      `select rolsuper as superuser,
              exists (select from pg_tables where tableowner = current_user and schemaname = 'public') as owns
         from pg_roles where rolname = current_user`,
    );
    return { superuser: result.rows[0]!.superuser, ownsTables: result.rows[0]!.owns };
  });
}

describe('least privilege', () => {
  it('replicates, syncs and verifies with a source role holding TRIGGER and SELECT only, and a target role holding what apply needs', async () => {
    const { source, target1 } = sharedClusters();
    const password = 'least privilege';
    const [app, capture, apply] = [uniqueName('app'), uniqueName('capture'), uniqueName('apply')];
    await createRole(source, app, password);
    await createRole(source, capture, password);
    await createRole(target1, apply, password);

    // The grants of docs/operations.md, no more.
    const src = await adminDatabase(
      source,
      `alter table orders owner to ${ident(app)};
       alter table "Order Lines" owner to ${ident(app)};
       grant usage on schema public to ${ident(app)}, ${ident(capture)};
       grant select, trigger on ${tableList} to ${ident(capture)};
       create schema trigsync authorization ${ident(capture)};`,
    );
    await source.query(`grant connect on database ${ident(src.name)} to ${ident(app)}, ${ident(capture)}`);
    const dst = await adminDatabase(
      target1,
      `grant usage on schema public to ${ident(apply)};
       grant select, insert, update, delete, truncate on ${tableList} to ${ident(apply)};
       create schema trigsync authorization ${ident(apply)};`,
    );
    await target1.query(`grant connect on database ${ident(dst.name)} to ${ident(apply)}`);

    const appUrl = source.url(src.name, { user: app, password });
    const sourceUrl = source.url(src.name, { user: capture, password });
    const targetUrl = target1.url(dst.name, { user: apply, password });
    for (const url of [appUrl, sourceUrl, targetUrl])
      expect(await rolesOf(url)).toMatchObject({ superuser: false });
    expect(await rolesOf(sourceUrl)).toEqual({ superuser: false, ownsTables: false });

    // Rows from before trigsync, which the initial sync copies.
    await withClient(appUrl, (db) =>
      db.query(
        `insert into orders select g, 'old', g from generate_series(1, 500) g;
         insert into "Order Lines" select o, l, l from generate_series(1, 100) o, generate_series(1, 3) l`,
      ),
    );
    const raw = {
      source: { url: sourceUrl },
      tables: ['orders', '"Order Lines"'],
      targets: [{ name: 'replica', url: targetUrl, initialSync: 'copy' }],
      retry: { initialDelayMs: 100, maxDelayMs: 1_000, dataErrorDelayMs: 200 },
      metrics: { enabled: false },
    };
    const config = makeConfig(raw);
    const file = await configFile(raw);
    expect((await runCli(file, 'check')).code).toBe(0);
    const daemon = await startDaemon(config);

    // The application writes its own tables, every kind of change; it has no privilege on trigsync's
    // schema, and the capture triggers log its changes all the same.
    await withClient(appUrl, async (db) => {
      await db.query(`insert into orders select g, 'new', g from generate_series(501, 800) g`);
      await db.query(`update orders set status = 'paid', total = total + 1 where id % 3 = 0`);
      await db.query(`delete from orders where id % 10 = 0`);
      await db.query(`update "Order Lines" set qty = qty * 2 where line = 2`);
      await db.query(`truncate "Order Lines"`);
      await db.query(`insert into "Order Lines" select o, 1, o from generate_series(1, 50) o`);
    });
    await waitCaughtUp(config);
    for (const [table, key] of [
      ['orders', 'id'],
      ['"Order Lines"', '(order_id, line)'],
    ] as const) {
      const query = `select * from ${table}`;
      await expectSameRows({ url: appUrl, query }, { url: targetUrl, query }, key);
    }
    const verified = await runCli(file, 'verify', 'replica');
    expect(verified.out).toMatch(/orders/);
    expect(verified.code).toBe(0);
    await daemon.stop();
  });
});
