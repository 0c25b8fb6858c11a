// Through the built binary against real servers: `uninstall --yes` names the trigsync schema it leaves on
// a target the config no longer lists, with the SQL that removes it; `start` that finds its metrics port
// taken says whether a trigsync daemon holds it.
import { createServer, type Server } from 'node:net';

import { describe, expect, it } from 'vitest';

import { withClient } from '../support/cluster.js';
import { sourceAndTwoTargets, waitFor } from '../support/fixtures.js';
import { ChildDaemon, configFile, makeConfig, startDaemon, waitCaughtUp } from '../support/replication.js';
import { trigsync } from '../support/binary.js';

async function trigsyncSchemas(url: string): Promise<number> {
  return withClient(url, async (client) => {
    const result = await client.query<{ n: number }>(
      `select count(*)::int as n from pg_namespace where nspname = 'trigsync'`,
    );
    return result.rows[0]!.n;
  });
}

/** A TCP server on a free port of 127.0.0.1, as any other program might hold it. */
async function holdPort(): Promise<Server> {
  // It reads (and never answers), so that it sees its clients leave and can close.
  const server = createServer((socket) => socket.on('error', () => undefined).resume());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

function portOf(server: Server): number {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('not listening on a port');
  return address.port;
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

describe('uninstall on a multi-master node', () => {
  it("removes every object of the source's and keeps the target's; install works again", async () => {
    const { src: a, one: b } = await sourceAndTwoTargets('create table t (id int primary key, v text)');
    const node = (from: typeof a, to: typeof b, name: string) => ({
      source: { url: from.url },
      tables: ['t'],
      targets: [{ name, url: to.url, initialSync: 'none' }],
      metrics: { enabled: false },
    });
    const [fromA, fromB] = [await configFile(node(a, b, 'to_b')), await configFile(node(b, a, 'to_a'))];
    for (const file of [fromA, fromB]) expect((await trigsync('install', '--config', file)).code).toBe(0);
    const objects = () =>
      withClient(a.url, async (client) => {
        const result = await client.query<{ name: string }>(
          `select c.relname as name from pg_class c where c.relnamespace = 'trigsync'::regnamespace
                                                       and c.relkind in ('r', 'S', 'p')
           union all
           select p.proname || '()' from pg_proc p where p.pronamespace = 'trigsync'::regnamespace
           order by 1`,
        );
        return result.rows.map((r) => r.name);
      });

    const { code, stdout } = await trigsync('uninstall', '--yes', '--config', fromA);
    expect(code, stdout).toBe(0);
    expect(stdout).toContain(
      "source: removed trigsync's capture objects and the triggers on public.t; schema trigsync stays, as " +
        "this database is another source's target",
    );
    // What B's target track made on A, no more: the source track's version gone with its objects.
    expect(await objects()).toEqual([
      'applied_position',
      'apply_conflicts_found()',
      'guard()',
      'schema_version',
      'table_floor',
    ]);
    const install = await trigsync('install', '--config', fromA);
    expect(install.code, `${install.stdout}\n${install.stderr}`).toBe(0);
  });
});

describe('uninstall with a removed target', () => {
  it("removes what it reaches and names the removed target's schema with the SQL that removes it", async () => {
    const { src, one, two } = await sourceAndTwoTargets(
      'create table orders (id int primary key, total int)',
    );
    const both = {
      source: { url: src.url },
      tables: ['orders'],
      targets: [
        { name: 'one', url: one.url, initialSync: 'none' },
        { name: 'two', url: two.url, initialSync: 'none' },
      ],
      metrics: { enabled: false },
    };
    // Both targets have applied something: each holds this source's position.
    const daemon = await startDaemon(makeConfig(both));
    await withClient(src.url, (db) => db.query('insert into orders values (1, 10), (2, 20)'));
    await waitCaughtUp(makeConfig(both));
    await daemon.stop();

    // Target two leaves the config; install marks it removed in the source's registry.
    const file = await configFile({ ...both, targets: [both.targets[0]] });
    expect((await trigsync('install', '--config', file)).code).toBe(0);

    const { code, stdout } = await trigsync('uninstall', '--yes', '--config', file);
    expect(code).toBe(0);
    expect(stdout).toContain('target one: ok');
    expect(stdout).toMatch(
      /^target two: removed from the config, so not reached: its database keeps trigsync's schema trigsync /m,
    );
    expect(await trigsyncSchemas(src.url)).toBe(0);
    expect(await trigsyncSchemas(one.url)).toBe(0);
    expect(await trigsyncSchemas(two.url)).toBe(1);

    // The SQL as printed removes it.
    const sql = stdout
      .split('\n')
      .filter((line) => line.startsWith('  ') && !line.trimStart().startsWith('--'))
      .join('\n');
    expect(sql).toMatch(
      /^ {2}delete from trigsync\.applied_position where origin = '[^']+';\n {2}drop schema trigsync cascade;$/,
    );
    await withClient(two.url, async (db) => {
      const position = await db.query('select from trigsync.applied_position');
      expect(position.rowCount).toBe(1);
      await db.query(sql);
    });
    expect(await trigsyncSchemas(two.url)).toBe(0);
  });
});

describe('start with its metrics port taken', () => {
  it('names the trigsync daemon that holds it, or another program', async () => {
    const { src, one } = await sourceAndTwoTargets('create table orders (id int primary key, total int)');
    const raw = {
      source: { url: src.url },
      tables: ['orders'],
      targets: [{ name: 'one', url: one.url, initialSync: 'none' }],
    };

    // A port of its own: held by a plain server first, then free for the daemon.
    const plain = await holdPort();
    const port = portOf(plain);
    const config = await configFile({ ...raw, metrics: { host: '127.0.0.1', port } });
    const taken = await trigsync('start', '--config', config);
    expect(taken.code).toBe(3);
    expect(taken.stderr).toContain(
      `metrics port ${port} on 127.0.0.1 is taken by another program: free the port, or set another metrics.port`,
    );
    await close(plain);

    const first = await ChildDaemon.create({ ...raw, metrics: { host: '127.0.0.1', port } });
    await first.start();
    await waitFor(
      async () => /^trigsync_leader 1$/m.test(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()),
      { what: 'the first daemon to lead' },
    );
    const second = await trigsync('start', '--config', first.configFile);
    expect(second.code).toBe(3);
    expect(second.stderr).toContain(
      `metrics port ${port} on 127.0.0.1 is taken by another trigsync daemon (the leader, applying to targets one): ` +
        'stop that daemon, or give this one another metrics.port',
    );
    expect(first.running).toBe(true);
    expect(await first.stop()).toBe(0);
  });
});
