// Read-only targets (issue #5): the guard trigger refuses writes from anyone but trigsync, by
// application_name (a convention) or by role (guardRole), while trigsync's own writes arrive. The daemon
// runs as least-privilege roles only: the source role owns its database and tables; the target role
// holds just the grants of docs/operations.md ("Roles and privileges") on a database and tables that an
// admin created.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { main } from '../../src/cli/main.js';
import { collectingOutput } from '../../src/cli/output.js';
import type { Config } from '../../src/config/types.js';
import { readStatus } from '../../src/changelog/status.js';
import { withClient } from '../support/cluster.js';
import {
  createRole,
  freshDatabase,
  ident,
  sharedClusters,
  uniqueName,
  waitFor,
  type FreshDatabase,
} from '../support/fixtures.js';
import { clientAs, expectSameRows, makeConfig, startDaemon, waitCaughtUp } from '../support/replication.js';

const sourceTables = `
  create table orders (id bigint primary key, status text not null, total numeric(12, 2));
  create table "Order Lines" (order_id bigint, line int, qty int not null, primary key (order_id, line));`;

interface Setup {
  dst: FreshDatabase;
  sourceUrl: string;
  targetUrl: string;
  /** An application's role on the target, with every write privilege on the target tables. */
  writerUrl: string;
  targetRole: string;
  writerRole: string;
  /** The config, as a file would hold it, with these keys set on the target. */
  raw(target?: Record<string, unknown>): Record<string, unknown>;
}

/**
 * A source and a target on different clusters, each used only through a role without superuser. The
 * target role gets CONNECT, USAGE on the tables' schemas, SELECT, INSERT, UPDATE, DELETE, TRUNCATE and TRIGGER
 * on the tables, and CREATE on the database, or (`schemaByAdmin`) a schema an admin made for it.
 */
async function setup(options: { schemaByAdmin?: boolean } = {}): Promise<Setup> {
  const { source, target1 } = sharedClusters();
  const password = 'guard pass';
  const [sourceRole, targetRole, writerRole] = [uniqueName('src'), uniqueName('apply'), uniqueName('app')];
  await createRole(source, sourceRole, password);
  await createRole(target1, targetRole, password);
  await createRole(target1, writerRole, password);
  const src = await freshDatabase(source, { owner: sourceRole });
  const sourceUrl = source.url(src.name, { user: sourceRole, password });
  await withClient(sourceUrl, (client) => client.query(sourceTables));

  const dst = await freshDatabase(target1);
  const [db, apply, app] = [ident(dst.name), ident(targetRole), ident(writerRole)];
  const tables = 'archive.orders, public."Order Lines"';
  await target1.query(
    `revoke all on database ${db} from public;
     grant connect on database ${db} to ${apply}, ${app};
     create schema archive;
     create table archive.orders (id bigint primary key, status text, total numeric(12, 2));
     create table public."Order Lines" (order_id bigint, line int, qty int not null, primary key (order_id, line));
     grant usage on schema archive, public to ${apply}, ${app};
     grant select, insert, update, delete, truncate, trigger on ${tables} to ${apply};
     grant select, insert, update, delete, truncate on ${tables} to ${app};
     ${options.schemaByAdmin === true ? `create schema trigsync authorization ${apply}` : `grant create on database ${db} to ${apply}`}`,
    [],
    dst.name,
  );
  const targetUrl = target1.url(dst.name, { user: targetRole, password });
  return {
    dst,
    sourceUrl,
    targetUrl,
    writerUrl: target1.url(dst.name, { user: writerRole, password }),
    targetRole,
    writerRole,
    raw: (target = {}) => ({
      source: { url: sourceUrl },
      tables: ['orders', '"Order Lines"'],
      targets: [
        {
          name: 'replica',
          url: targetUrl,
          initialSync: 'none',
          readOnly: true,
          tables: [{ source: 'orders', target: 'archive.orders' }, '"Order Lines"'],
          ...target,
        },
      ],
      retry: { initialDelayMs: 100, maxDelayMs: 1_000, dataErrorDelayMs: 200 },
    }),
  };
}

/** Run one statement under an application_name; the error it raised, or undefined. */
async function writeAs(url: string, applicationName: string, sql: string): Promise<unknown> {
  const client = await clientAs(url, applicationName);
  try {
    await client.query(sql);
    return undefined;
  } catch (thrown) {
    return thrown;
  } finally {
    await client.end();
  }
}

/** The guard triggers on the target, by table, with their arguments. */
async function guards(s: Setup): Promise<{ table: string; args: string }[]> {
  return s.dst.cluster.query(
    `select tgrelid::regclass::text as table, encode(tgargs, 'escape') as args from pg_trigger
      where tgname = 'trigsync_guard' order by tgrelid::regclass::text collate "C"`,
    [],
    s.dst.name,
  );
}

async function isSuperuser(url: string): Promise<boolean> {
  return withClient(url, async (client) => {
    const result = await client.query<{ rolsuper: boolean }>(
      'select rolsuper from pg_roles where rolname = current_user',
    );
    return result.rows[0]!.rolsuper;
  });
}

/** Some of every kind of change on the source, as its owner (an application). */
async function writeSource(s: Setup, round: number): Promise<void> {
  const base = round * 1000;
  await withClient(s.sourceUrl, async (db) => {
    await db.query(`insert into orders select ${base} + g, 'open', g from generate_series(1, 100) g`);
    await db.query(
      `insert into "Order Lines" select ${base} + o, l, l from generate_series(1, 20) o, generate_series(1, 3) l`,
    );
    await db.query(`update orders set status = 'paid', total = total * 2 where id % 4 = 0`);
    await db.query(`update orders set id = id + 500 where id between ${base} + 1 and ${base} + 5`);
    await db.query(`delete from orders where id > ${base} + 90 and id < ${base} + 500`);
    await db.query(`delete from "Order Lines" where line = 3`);
  });
}

async function expectReplicated(s: Setup, config: Config): Promise<void> {
  await waitCaughtUp(config);
  await expectSameRows(
    { url: s.sourceUrl, query: 'select * from orders' },
    { url: s.targetUrl, query: 'select * from archive.orders' },
    'id',
  );
  const lines = 'select * from "Order Lines"';
  await expectSameRows(
    { url: s.sourceUrl, query: lines },
    { url: s.targetUrl, query: lines },
    '(order_id, line)',
  );
}

async function configFile(raw: Record<string, unknown>): Promise<string> {
  const file = join(await mkdtemp(join(tmpdir(), 'trigsync-guard-')), 'config.json');
  await writeFile(file, JSON.stringify(raw));
  return file;
}

/** A trigsync command in this process: its exit code and everything it printed. */
async function trigsync(...argv: string[]): Promise<{ code: number; text: string }> {
  const out = collectingOutput();
  const code = await main(argv, out);
  return { code, text: [...out.stdout, ...out.stderr].join('\n') };
}

const refused = (table: string, op: string, writer: string) => ({
  code: '25006',
  message: `table ${table} is a read-only trigsync replica: ${op} is accepted only from trigsync (${writer})`,
  hint: expect.stringContaining('readOnly: true') as unknown,
});

describe('a read-only target', () => {
  it('refuses INSERT, UPDATE, DELETE and TRUNCATE from anyone but trigsync, whose changes arrive; uninstall removes the guards', async () => {
    const s = await setup();
    const config = makeConfig(s.raw());
    expect(await isSuperuser(s.sourceUrl)).toBe(false);
    expect(await isSuperuser(s.targetUrl)).toBe(false);
    const daemon = await startDaemon(config);
    await writeSource(s, 1);
    await expectReplicated(s, config);
    expect(await guards(s)).toEqual([
      { table: '"Order Lines"', args: 'trigsync\\000\\000' },
      { table: 'archive.orders', args: 'trigsync\\000\\000' },
    ]);

    const byName = 'application_name "trigsync"';
    const attempts: [string, string][] = [
      ['INSERT', `insert into archive.orders values (9000, 'local', 1)`],
      ['UPDATE', `update archive.orders set total = 0`],
      ['DELETE', `delete from archive.orders where id = 10`],
      ['TRUNCATE', `truncate archive.orders`],
    ];
    for (const [op, sql] of attempts) {
      expect(await writeAs(s.writerUrl, 'psql', sql)).toMatchObject(refused('archive.orders', op, byName));
    }
    // The name in the message is quoted as SQL needs it; the table owner (a superuser) is refused too.
    expect(await writeAs(s.writerUrl, 'psql', `insert into "Order Lines" values (1, 9, 9)`)).toMatchObject(
      refused('public."Order Lines"', 'INSERT', byName),
    );
    expect(await writeAs(s.dst.url, 'psql', `delete from "Order Lines"`)).toMatchObject(
      refused('public."Order Lines"', 'DELETE', byName),
    );

    // trigsync's own writes pass: a truncate, then changes after it.
    await withClient(s.sourceUrl, (db) => db.query(`truncate "Order Lines"`));
    await writeSource(s, 2);
    await expectReplicated(s, config);

    // The default guard goes by application_name, a convention that any client can follow.
    expect(
      await writeAs(s.writerUrl, 'trigsync', `insert into archive.orders values (9000, 'x', 1)`),
    ).toBeUndefined();
    expect(
      await writeAs(s.writerUrl, 'trigsync', `delete from archive.orders where id = 9000`),
    ).toBeUndefined();

    await daemon.stop();
    // The target role owns none of the tables; the guards go with the guard function all the same.
    const uninstall = await trigsync('uninstall', '--yes', '--config', await configFile(s.raw()));
    expect(uninstall.code, uninstall.text).toBe(0);
    expect(await guards(s)).toEqual([]);
    expect(
      await writeAs(s.writerUrl, 'psql', `insert into archive.orders values (9000, 'x', 1)`),
    ).toBeUndefined();
  });

  it('with guardRole accepts writes from that role only, not from a client that claims trigsync’s application_name', async () => {
    const s = await setup({ schemaByAdmin: true });
    const raw = s.raw({ guardRole: s.targetRole });
    const file = await configFile(raw);
    const byRole = `role "${s.targetRole}"`;

    // install guards the tables as the daemon would. It refuses a guardRole that would shut trigsync
    // out, and names a table it cannot guard.
    const otherRole = await trigsync(
      'install',
      '--config',
      await configFile(s.raw({ guardRole: s.writerRole })),
    );
    expect(otherRole.code).toBe(2);
    expect(otherRole.text).toContain(
      `targets.replica.guardRole: trigsync connects to target replica as role ${s.targetRole}, ` +
        `but the guard lets only role ${s.writerRole} write`,
    );
    await s.dst.cluster.query(`revoke trigger on "Order Lines" from ${ident(s.targetRole)}`, [], s.dst.name);
    const refusedInstall = await trigsync('install', '--config', file);
    expect(refusedInstall.code).toBe(2);
    expect(refusedInstall.text).toContain(
      `targets.replica: cannot guard table public."Order Lines" (readOnly: true): role ${s.targetRole} lacks the TRIGGER privilege on it`,
    );
    await s.dst.cluster.query(`grant trigger on "Order Lines" to ${ident(s.targetRole)}`, [], s.dst.name);
    const install = await trigsync('install', '--config', file);
    expect(install.code, install.text).toBe(0);
    expect((await guards(s)).map((g) => g.args)).toEqual([
      `trigsync\\000${s.targetRole}\\000`,
      `trigsync\\000${s.targetRole}\\000`,
    ]);

    const config = makeConfig(raw);
    const daemon = await startDaemon(config);
    expect(
      await writeAs(s.writerUrl, 'trigsync', `insert into archive.orders values (9000, 'x', 1)`),
    ).toMatchObject(refused('archive.orders', 'INSERT', byRole));
    expect(await writeAs(s.writerUrl, 'trigsync', `truncate "Order Lines"`)).toMatchObject(
      refused('public."Order Lines"', 'TRUNCATE', byRole),
    );
    await writeSource(s, 1);
    await withClient(s.sourceUrl, (db) => db.query(`truncate orders`));
    await writeSource(s, 2);
    await expectReplicated(s, config);
    await daemon.stop();

    const uninstall = await trigsync('uninstall', '--yes', '--config', file);
    expect(uninstall.code, uninstall.text).toBe(0);
    expect(await guards(s)).toEqual([]);
  });

  it('loses its guards when readOnly is turned off; without ownership of the tables the target parks saying what to run', async () => {
    const s = await setup();
    const first = await startDaemon(makeConfig(s.raw()));
    await waitFor(async () => (await guards(s)).length === 2, { what: 'the guards' });
    await first.stop();

    const config = makeConfig(s.raw({ readOnly: false }));
    const daemon = await startDaemon(config);
    const status = await waitFor(
      async () => {
        const found = await withClient(s.sourceUrl, (client) => readStatus(client, config));
        const target = found.targets.find((t) => t.name === 'replica');
        return target?.state === 'parked' && target.lastError !== null ? target : undefined;
      },
      { what: 'the target to park' },
    );
    expect(status.lastError).toContain(
      `targets.replica: cannot remove the guard from table archive.orders (readOnly: false): DROP TRIGGER needs ` +
        `ownership of the table, which role ${s.targetRole} lacks; as the table's owner run: ` +
        `drop trigger trigsync_guard on archive.orders`,
    );
    expect(await guards(s)).toHaveLength(2);

    // Given the tables, trigsync removes the guards at its next retry and carries on.
    const owner = ident(s.targetRole);
    await s.dst.cluster.query(
      `alter table archive.orders owner to ${owner}; alter table "Order Lines" owner to ${owner}`,
      [],
      s.dst.name,
    );
    await waitFor(async () => (await guards(s)).length === 0, { what: 'the guards to go' });
    await writeSource(s, 1);
    await expectReplicated(s, config);
    expect(
      await writeAs(s.writerUrl, 'psql', `insert into archive.orders values (9000, 'x', 1)`),
    ).toBeUndefined();
    await daemon.stop();
  });
});
