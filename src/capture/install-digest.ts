/**
 * What a group's last install installed, as a digest of its inputs (sql/source/016). The install is a
 * function of the config and the tables' descriptions: where the last one of the group had the same
 * inputs, the registry the workers read (the group's targets, the tables they take, the syncs it asked
 * for, the drains) is as a new install would leave it, and the daemon starts its workers beside the
 * install instead of after it (src/daemon/daemon.ts). Whatever changes the registry outside an install
 * forgets the digests it touches (forgetInstallDigests), so that a digest found is the registry's state.
 */
import { createHash } from 'node:crypto';

import type pg from 'pg';

import { ident } from '../config/identifiers.js';
import type { Config } from '../config/types.js';
import { latestVersion } from './migrations.js';
import type { SourceTables } from './source-tables.js';
import { relationExists } from '../db/relation-exists.js';

/**
 * The install's inputs: the schema's version, the group, the capture's application name, what each
 * target takes, and each table as described (its oid: a table made anew is new to every target).
 */
export function installDigest(config: Config, tables: SourceTables): string {
  const inputs = {
    version: latestVersion('source', config.schema),
    group: config.group,
    applicationName: config.applicationName,
    targets: config.targets.map((t) => ({ name: t.name, initialSync: t.initialSync, tables: t.tables })),
    tables: [...tables].map(([display, t]) => ({
      display,
      relid: t.relid,
      key: t.key,
      partitioned: t.partitioned,
      columns: t.columns.map((c) => [c.name, c.type, c.generated, c.textForm]),
    })),
  };
  return createHash('sha256').update(JSON.stringify(inputs)).digest('hex');
}

/** Recorded by the install, in its transaction. */
export async function recordInstallDigest(
  client: pg.ClientBase,
  schema: string,
  group: string,
  digest: string,
): Promise<void> {
  await client.query(
    `insert into ${ident(schema)}.group_install (group_name, digest) values ($1, $2)
     on conflict (group_name) do update set digest = excluded.digest, installed_at = now()`,
    [group, digest],
  );
}

/**
 * Whether the group's last install had these inputs, and its targets are still its own and not
 * removed. Only where the schema is at this build's version (the table exists).
 */
export async function installedAsConfigured(
  client: pg.ClientBase,
  config: Config,
  tables: SourceTables,
): Promise<boolean> {
  const s = ident(config.schema);
  const result = await client.query<{ current: boolean }>(
    `select coalesce((select digest = $2 from ${s}.group_install where group_name = $1), false)
            and (select count(*) from ${s}.target
                  where name = any($3::text[]) and group_name = $1 and state <> 'removed')
                = cardinality($3::text[]) as current`,
    [config.group, installDigest(config, tables), config.targets.map((t) => t.name)],
  );
  return result.rows[0]?.current === true;
}

/** The registry changed outside an install: the groups' next installs must finish before their workers start. */
export async function forgetInstallDigests(
  client: pg.ClientBase,
  schema: string,
  groups: readonly string[] | 'all',
): Promise<void> {
  const s = ident(schema);
  // A schema of an earlier version has none to forget.
  const found = await relationExists(client, `${s}.group_install`);
  if (!found) return;
  if (groups === 'all') await client.query(`delete from ${s}.group_install`);
  else await client.query(`delete from ${s}.group_install where group_name = any($1::text[])`, [groups]);
}
