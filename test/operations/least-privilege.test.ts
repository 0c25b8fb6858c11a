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
  fingerprint,
  makeConfig,
  runCli,
  startDaemon,
  waitParked,
  waitCaughtUp,
} from '../support/replication.js';

const tables = `
  create table orders (id bigint primary key, status text not null, total numeric(12, 2));
  create table "Order Lines" (order_id bigint, line int, qty int not null, primary key (order_id, line));`;
const tableList = 'orders, "Order Lines"';

/** A database of its own with the tables of `ddl`, made by an admin; `grants` run there as the admin. */
async function adminDatabase(cluster: PgCluster, ddl: string, grants: string) {
  const db = await freshDatabase(cluster);
  await cluster.query(`revoke all on database ${ident(db.name)} from public; ${ddl}; ${grants}`, [], db.name);
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

/**
 * The grants of docs/operations.md, no more: the tables of `ddl` belong to an application role, the
 * source role holds TRIGGER and SELECT on them and owns trigsync's schema, the target role what apply needs.
 * `appSchema`, if named, is a schema of the application role's own on the source.
 */
async function leastPrivilegeRig(ddl: string, tableList: string, appSchema?: string) {
  const { source, target1 } = sharedClusters();
  const password = 'least privilege';
  const [app, capture, apply] = [uniqueName('app'), uniqueName('capture'), uniqueName('apply')];
  await createRole(source, app, password);
  await createRole(source, capture, password);
  await createRole(target1, apply, password);
  const src = await adminDatabase(
    source,
    ddl,
    `${tableList
      .split(', ')
      .map((t) => `alter table ${t} owner to ${ident(app)};`)
      .join('\n')}
     grant usage on schema public to ${ident(app)}, ${ident(capture)};
     grant select, trigger on ${tableList} to ${ident(capture)};
     create schema trigsync authorization ${ident(capture)};
     ${appSchema === undefined ? '' : `create schema ${ident(appSchema)} authorization ${ident(app)};`}`,
  );
  await source.query(`grant connect on database ${ident(src.name)} to ${ident(app)}, ${ident(capture)}`);
  const dst = await adminDatabase(
    target1,
    ddl,
    `grant usage on schema public to ${ident(apply)};
     grant select, insert, update, delete, truncate on ${tableList} to ${ident(apply)};
     create schema trigsync authorization ${ident(apply)};`,
  );
  await target1.query(`grant connect on database ${ident(dst.name)} to ${ident(apply)}`);
  return {
    appUrl: source.url(src.name, { user: app, password }),
    sourceUrl: source.url(src.name, { user: capture, password }),
    targetUrl: target1.url(dst.name, { user: apply, password }),
  };
}

describe('least privilege', () => {
  it('replicates, syncs and verifies with a source role holding TRIGGER and SELECT only, and a target role holding what apply needs', async () => {
    const { appUrl, sourceUrl, targetUrl } = await leastPrivilegeRig(tables, tableList);
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
    // Not the tables' owner, the role may not make the capture fire ALWAYS: install says what that
    // misses and what the owner may run.
    const installed = await runCli(file, 'install');
    expect(installed.code).toBe(0);
    expect(installed.out).toMatch(
      /source: trigsync's role does not own public\.orders, public\."Order Lines": their capture fires on origin only, so writes made under session_replication_role = replica are not captured.*`alter table T enable always trigger trigsync_capture_insert, /,
    );
    const fires = await withClient(appUrl, (db) =>
      db.query<{ fires: string }>(
        `select distinct tgenabled::text as fires from pg_trigger where tgname like 'trigsync_capture_%'`,
      ),
    );
    expect(fires.rows).toEqual([{ fires: 'O' }]);
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

    // A capture trigger the owner disabled, which the role may not enable: install refuses, saying
    // what the owner runs, and what to copy after.
    await withClient(appUrl, (db) => db.query(`alter table orders disable trigger trigsync_capture_insert`));
    const refused = await runCli(file, 'install');
    expect(refused.code).toBe(2);
    expect(refused.out).toMatch(
      /capture trigger trigsync_capture_insert on public\.orders is disabled, and trigsync's role does not own the table: as its owner run `alter table public\.orders enable always trigger trigsync_capture_insert`, then copy the table to each target \(`trigsync sync TARGET --table public\.orders`\)/,
    );
    await withClient(appUrl, (db) =>
      db.query(`alter table orders enable always trigger trigsync_capture_insert`),
    );
    expect((await runCli(file, 'install')).code).toBe(0);
  });

  it("runs none of a writer's own operators or functions, and leaves its styles as they were", async () => {
    // capture_rows() is a security definer function without a SET clause (sql/source/014): it runs
    // under the writer's search_path, so it must name everything by schema. Here the writer's path puts
    // a schema of its own first, whose functions and operators raise if anything calls them.
    const measures =
      'create table measures (id bigint primary key, span interval, ratio float8, at timestamptz)';
    const { appUrl, sourceUrl, targetUrl } = await leastPrivilegeRig(measures, 'measures', 'trap');
    const raw = {
      source: { url: sourceUrl },
      tables: ['measures'],
      targets: [{ name: 'replica', url: targetUrl, initialSync: 'copy' }],
      metrics: { enabled: false },
    };
    const config = makeConfig(raw);
    const daemon = await startDaemon(config);
    // Synced before the writes, so that the target's rows come from their captured images.
    await waitCaughtUp(config);
    const functions = await withClient(sourceUrl, (db) =>
      db.query<{ fn: string }>(`select distinct tgfoid::regproc::text as fn from pg_trigger
                                  where tgrelid = 'public.measures'::regclass and not tgisinternal`),
    );
    expect(functions.rows.map((r) => r.fn)).toEqual(['trigsync.capture_rows']);

    const sprung = (returns: string) =>
      `returns ${returns} language sql as $$ select case when trap.sprung() then null::${returns} end $$`;
    await withClient(appUrl, (db) =>
      db.query(`
        create function trap.sprung() returns boolean language plpgsql as
          $$ begin raise exception 'a function of the writer''s trap schema ran as %', current_user; end $$;
        create function trap.eq(text, text) ${sprung('boolean')};
        create operator trap.= (leftarg = text, rightarg = text, function = trap.eq);
        create operator trap.<> (leftarg = text, rightarg = text, function = trap.eq);
        create function trap.eq(bigint, bigint) ${sprung('boolean')};
        create operator trap.= (leftarg = bigint, rightarg = bigint, function = trap.eq);
        create function trap.eq(oid, oid) ${sprung('boolean')};
        create operator trap.= (leftarg = oid, rightarg = oid, function = trap.eq);
        create function trap.lt(int, int) ${sprung('boolean')};
        create operator trap.< (leftarg = int, rightarg = int, function = trap.lt);
        create function trap.to_json(anyelement) ${sprung('json')};
        create function trap.current_setting(text) ${sprung('text')};
        create function trap.set_config(text, text, boolean) ${sprung('text')};
        create function trap.nextval(regclass) ${sprung('bigint')};
        create function trap.pg_sequence_last_value(regclass) ${sprung('bigint')};
        -- Seen by every role, the function's owner included.
        grant usage on schema trap to public;`),
    );

    const styles = `select pg_catalog.current_setting('intervalstyle') as interval_style,
                           pg_catalog.current_setting('extra_float_digits') as float_digits,
                           pg_catalog.current_setting('datestyle') as date_style`;
    const writerStyles = { interval_style: 'iso_8601', float_digits: '0', date_style: 'SQL, DMY' };
    await withClient(appUrl, async (db) => {
      await db.query(`set search_path = trap, pg_catalog, public; set intervalstyle = iso_8601;
                      set extra_float_digits = 0; set datestyle = 'SQL, DMY'`);
      await db.query('begin');
      await db.query(`insert into public.measures
                        select g, g * interval '1 day 2 hours', 1.0 / (g + 2), now() from generate_series(1, 6) g`);
      expect((await db.query(styles)).rows[0]).toEqual(writerStyles);
      await db.query(`update public.measures set ratio = ratio / 7 where id operator(pg_catalog.=) 2`);
      await db.query(`update public.measures set id = id + 10 where id operator(pg_catalog.=) 3`);
      await db.query(`delete from public.measures where id operator(pg_catalog.=) 4`);
      await db.query('commit');
      expect((await db.query(styles)).rows[0]).toEqual(writerStyles);
      await db.query('truncate public.measures');
      await db.query(`insert into public.measures values (1, interval '1 year 1 second', 1.0 / 3, now())`);
    });
    await waitCaughtUp(config);
    const query = 'select * from measures';
    await expectSameRows({ url: appUrl, query }, { url: targetUrl, query }, 'id');
    await daemon.stop();
  });

  it('refuses a table whose row-level security hides rows from the source role, and copies every row once a policy shows them', async () => {
    const accounts = 'create table accounts (id bigint primary key, tenant text not null, balance int)';
    const { appUrl, sourceUrl, targetUrl } = await leastPrivilegeRig(accounts, 'accounts');
    const role = decodeURIComponent(new URL(sourceUrl).username);
    // On the source only, by the table's owner, as a multi-tenant application does.
    await withClient(appUrl, (db) =>
      db.query(
        `alter table accounts enable row level security;
         create policy tenants on accounts using (tenant = current_setting('app.tenant', true));
         insert into accounts select g, 'tenant ' || g % 3, g from generate_series(1, 300) g`,
      ),
    );
    const raw = {
      source: { url: sourceUrl },
      tables: ['accounts'],
      targets: [{ name: 'replica', url: targetUrl, initialSync: 'copy' }],
      retry: { initialDelayMs: 100, maxDelayMs: 1_000 },
      metrics: { enabled: false },
    };
    const file = await configFile(raw);
    // The role sees none of the rows: a copy would bring none, and verify would find nothing amiss.
    const checked = await runCli(file, 'check');
    expect(checked.code).toBe(2);
    expect(checked.out).toContain(
      `tables: public.accounts has row-level security that may hide rows from trigsync's role ${role}: ` +
        `the initial copy, sync and verify would read only the rows its policies show, while capture ` +
        `logs every change. Give the role BYPASSRLS (ALTER ROLE ${role} BYPASSRLS), make it the table's ` +
        `owner, or show it every row (CREATE POLICY trigsync_reads ON public.accounts FOR SELECT TO ${role} USING (true))`,
    );
    // A restrictive policy holds rows back even beside a permissive one that shows them all.
    await withClient(appUrl, (db) =>
      db.query(
        `create policy trigsync_reads on accounts for select to ${role} using (true);
         create policy no_closed on accounts as restrictive using (balance >= 0)`,
      ),
    );
    expect((await runCli(file, 'check')).code).toBe(2);
    await withClient(appUrl, (db) => db.query(`drop policy no_closed on accounts`));
    expect((await runCli(file, 'check')).code).toBe(0);

    const config = makeConfig(raw);
    const daemon = await startDaemon(config);
    try {
      await withClient(appUrl, (db) =>
        db.query(`update accounts set balance = balance + 1 where id % 7 = 0`),
      );
      await waitCaughtUp(config);
      const query = 'select * from accounts';
      await expectSameRows({ url: appUrl, query }, { url: targetUrl, query }, 'id');
    } finally {
      await daemon.stop();
    }
  });

  it('refuses a target table whose row-level security applies to the target role, and never lets a policy swallow a change', async () => {
    const accounts = 'create table accounts (id bigint primary key, tenant text not null, balance int)';
    const { appUrl, sourceUrl, targetUrl } = await leastPrivilegeRig(accounts, 'accounts');
    const { target1 } = sharedClusters();
    const role = decodeURIComponent(new URL(targetUrl).username);
    const targetDb = new URL(targetUrl).pathname.slice(1);
    const asTargetAdmin = (sql: string) => target1.query(sql, [], targetDb);
    // An append-only table on the target, as audit tables are: the role may insert and read, and no
    // policy lets it update or delete. Under such policies an UPDATE or DELETE finds no row and changes
    // nothing, without an error: the source's change would be lost.
    await asTargetAdmin(`alter table accounts enable row level security;
      create policy appends on accounts for insert with check (true);
      create policy reads on accounts for select using (true)`);
    const raw = {
      source: { url: sourceUrl },
      tables: ['accounts'],
      targets: [{ name: 'replica', url: targetUrl, initialSync: 'none' }],
      retry: { initialDelayMs: 100, maxDelayMs: 500, dataErrorDelayMs: 200 },
      metrics: { enabled: false },
    };
    const file = await configFile(raw);
    const refusal =
      `targets.replica: public.accounts -> public.accounts: row-level security on public.accounts applies to ` +
      `trigsync's role ${role} on the target: its policies could hide rows from updates and deletes, whose ` +
      `changes would be lost. Give the role BYPASSRLS (ALTER ROLE ${role} BYPASSRLS), make it the table's ` +
      `owner (without FORCE ROW LEVEL SECURITY), or ALTER TABLE public.accounts DISABLE ROW LEVEL SECURITY`;
    const checked = await runCli(file, 'check');
    expect(checked.code).toBe(2);
    expect(checked.out).toContain(refusal);

    const config = makeConfig(raw);
    const daemon = await startDaemon(config);
    try {
      const write = (sql: string) => withClient(appUrl, (db) => db.query(sql));
      await write(`insert into accounts select g, 'tenant ' || g % 3, g from generate_series(1, 20) g`);
      const parked = await waitParked(config, 'replica', {
        what: 'the target to park',
        timeoutMs: 30_000,
        intervalMs: 100,
      });
      expect(parked.lastError).toBe(refusal);
      expect((await fingerprint(targetUrl, 'select * from accounts')).count).toBe(0);

      // The role made the table's owner: it applies, updates and deletes included.
      await asTargetAdmin(`alter table accounts owner to ${ident(role)}`);
      expect((await runCli(file, 'retry', 'replica')).code).toBe(0);
      await write(
        `update accounts set balance = balance * 10 where id % 2 = 0; delete from accounts where id % 5 = 0`,
      );
      await waitCaughtUp(config);
      const query = 'select * from accounts';
      await expectSameRows({ url: appUrl, query }, { url: targetUrl, query }, 'id');

      // Row-level security forced on its owner while the daemon runs, under a plan made before: the
      // policies would hide the rows from the next update and delete. The apply fails instead, and parks.
      await asTargetAdmin('alter table accounts force row level security');
      await write(`update accounts set balance = -1 where id = 2; delete from accounts where id = 4`);
      const before = await fingerprint(targetUrl, query);
      const forced = await waitParked(config, 'replica', {
        what: 'the target to park under forced row-level security',
        timeoutMs: 30_000,
        intervalMs: 100,
      });
      expect(forced.lastError).toMatch(/row-level security/);
      expect(await fingerprint(targetUrl, query)).toEqual(before);
      await asTargetAdmin('alter table accounts no force row level security');
      expect((await runCli(file, 'retry', 'replica')).code).toBe(0);
      await waitCaughtUp(config);
      await expectSameRows({ url: appUrl, query }, { url: targetUrl, query }, 'id');
    } finally {
      await daemon.stop();
    }
  });
});
