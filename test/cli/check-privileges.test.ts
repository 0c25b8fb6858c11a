// `trigsync check` names each privilege a role lacks, with the GRANT that gives it, and exits 2 as for
// any config that does not fit its databases; run through the built binary against real servers, with
// roles that are no superusers and own none of the tables (docs/operations.md, "Roles and privileges").
import { readFile } from 'node:fs/promises';

import { describe, expect, it } from 'vitest';

import { createRole, freshDatabase, ident, sharedClusters, uniqueName } from '../support/fixtures.js';
import { configFile } from '../support/replication.js';
import { trigsync } from '../support/binary.js';

const tables = `
  create table orders (id bigint primary key, status text not null);
  create table "Order Lines" (order_id bigint, line int, qty int not null, primary key (order_id, line));`;

/**
 * A source whose role lacks SELECT on "Order Lines" and a target whose role lacks INSERT on orders; every
 * other privilege as docs/operations.md grants it. The tables belong to the admin.
 */
async function rig() {
  const { source, target1 } = sharedClusters();
  const password = 'privileges';
  const [capture, apply] = [uniqueName('capture'), uniqueName('apply')];
  await createRole(source, capture, password);
  await createRole(target1, apply, password);
  const src = await freshDatabase(source);
  await source.query(
    `${tables}
     grant usage on schema public to ${ident(capture)};
     grant trigger on orders, "Order Lines" to ${ident(capture)};
     grant select on orders to ${ident(capture)};
     create schema trigsync authorization ${ident(capture)};`,
    [],
    src.name,
  );
  await source.query(`grant connect on database ${ident(src.name)} to ${ident(capture)}`);
  const dst = await freshDatabase(target1);
  await target1.query(
    `${tables}
     grant usage on schema public to ${ident(apply)};
     grant select, update, delete, truncate on orders, "Order Lines" to ${ident(apply)};
     grant insert on "Order Lines" to ${ident(apply)};
     create schema trigsync authorization ${ident(apply)};`,
    [],
    dst.name,
  );
  await target1.query(`grant connect on database ${ident(dst.name)} to ${ident(apply)}`);
  const file = await configFile({
    source: { url: source.url(src.name, { user: capture, password }) },
    tables: ['orders', '"Order Lines"'],
    targets: [
      { name: 'analytics', url: target1.url(dst.name, { user: apply, password }), initialSync: 'copy' },
    ],
    metrics: { enabled: false },
  });
  return { src, dst, capture, apply, file };
}

describe('check: privileges', () => {
  it('names each privilege a role lacks with its GRANT, exits 2, and passes once the GRANTs ran', async () => {
    const { src, dst, capture, apply, file } = await rig();

    const lacking = await trigsync('check', '--config', file);
    expect(lacking.code).toBe(2);
    const sourceGrant = `GRANT SELECT ON public."Order Lines" TO ${capture};`;
    const targetGrant = `GRANT INSERT ON public.orders TO ${apply};`;
    expect(lacking.stdout).toContain(
      `source: role ${capture} lacks SELECT on public."Order Lines" (the initial copy, sync and verify read it) — ${sourceGrant}`,
    );
    expect(lacking.stdout).toContain(
      `target analytics: role ${apply} lacks INSERT on public.orders (apply inserts rows) — ${targetGrant}`,
    );
    // Only what is missing: nothing else of either role is named.
    expect(lacking.stdout.match(/PROBLEM/g)).toHaveLength(2);

    const json = await trigsync('check', '--config', file, '--json');
    expect(json.code).toBe(2);
    const report = JSON.parse(json.stdout) as {
      databases: {
        name: string;
        privileges: { privilege: string; on: string; object: string; grant: string }[];
      }[];
    };
    const privileges = Object.fromEntries(report.databases.map((d) => [d.name, d.privileges]));
    expect(privileges.source).toEqual([
      expect.objectContaining({
        privilege: 'SELECT',
        on: 'table',
        object: 'public."Order Lines"',
        grant: sourceGrant,
      }),
    ]);
    expect(privileges.analytics).toEqual([
      expect.objectContaining({
        privilege: 'INSERT',
        on: 'table',
        object: 'public.orders',
        grant: targetGrant,
      }),
    ]);

    // The GRANTs as printed, run by an admin, are all it takes.
    await src.cluster.query(sourceGrant, [], src.name);
    await dst.cluster.query(targetGrant, [], dst.name);
    const granted = await trigsync('check', '--config', file);
    expect(granted.stdout).not.toContain('PROBLEM');
    expect(granted.code).toBe(0);
  });

  it('without trigsync schema, asks CREATE on the database, or the schema made by an admin', async () => {
    const { src, capture, file } = await rig();
    await src.cluster.query(
      `grant select on "Order Lines" to ${ident(capture)}; drop schema trigsync`,
      [],
      src.name,
    );
    const { code, stdout } = await trigsync('check', '--config', file);
    expect(code).toBe(2);
    expect(stdout).toContain(
      `source: role ${capture} lacks CREATE on database ${src.name} (install creates trigsync's schema trigsync) — ` +
        `GRANT CREATE ON DATABASE ${src.name} TO ${capture}; (or, as an admin: CREATE SCHEMA trigsync AUTHORIZATION ${capture};)`,
    );
  });

  it('asks TRIGGER on each partition of a captured table, which install needs', async () => {
    const { src, capture, file } = await rig();
    await src.cluster.query(
      `grant select on "Order Lines" to ${ident(capture)};
       create table events (id int primary key, at date not null) partition by range (id);
       create table events_low partition of events for values from (0) to (100);
       grant select, trigger on events to ${ident(capture)}`,
      [],
      src.name,
    );
    const withEvents = await configFile({
      ...(JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>),
      tables: ['orders', '"Order Lines"', 'events'],
      targets: [],
    });
    const grant = `GRANT TRIGGER ON public.events_low TO ${capture};`;
    const lacking = await trigsync('check', '--config', withEvents);
    expect(lacking.code).toBe(2);
    expect(lacking.stdout).toContain(
      `source: role ${capture} lacks TRIGGER on public.events_low (a partition of public.events: install puts ` +
        `the capture triggers on it) — ${grant}`,
    );
    expect((await trigsync('install', '--config', withEvents)).code).not.toBe(0);
    await src.cluster.query(grant, [], src.name);
    expect((await trigsync('check', '--config', withEvents)).code).toBe(0);
    expect((await trigsync('install', '--config', withEvents)).code).toBe(0);
  });
});
