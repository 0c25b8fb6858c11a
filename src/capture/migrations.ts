/**
 * Numbered SQL migrations (sql/source, sql/target), each applied in its own transaction under an
 * advisory lock and recorded in `<schema>.schema_version`. A schema newer than this build knows is refused.
 */
import { readFileSync, readdirSync } from 'node:fs';

import type pg from 'pg';

import { ident, sqlLiteral } from '../config/identifiers.js';
import { ConfigError } from '../failure/errors.js';
import { relationExists } from '../db/relation-exists.js';

export type MigrationTrack = 'source' | 'target';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

const sqlRoot = new URL('../../sql/', import.meta.url);

/** The NOTIFY channel of a schema's doorbell. */
export function doorbellChannel(schema: string): string {
  return `${schema}_doorbell`;
}

/** The migrations of a track, in order, with the schema placeholders filled in. */
export function loadMigrations(track: MigrationTrack, schema: string): Migration[] {
  const dir = new URL(`${track}/`, sqlRoot);
  return readdirSync(dir)
    .filter((file) => /^\d{3}_[\w-]+\.sql$/.test(file))
    .sort()
    .map((file) => ({
      version: Number(file.slice(0, 3)),
      name: file.slice(4, -4),
      sql: readFileSync(new URL(file, dir), 'utf8')
        .replaceAll('{{schema_in_literal}}', ident(schema).replaceAll("'", "''"))
        .replaceAll('{{schema}}', ident(schema))
        .replaceAll('{{schema_literal}}', sqlLiteral(schema))
        .replaceAll('{{channel}}', sqlLiteral(doorbellChannel(schema))),
    }));
}

/** One advisory lock key per schema, shared by every trigsync process that installs into it. */
function lockKey(schema: string): string {
  return `select pg_advisory_xact_lock(hashtextextended(${sqlLiteral(`trigsync migrate ${schema}`)}, 0))`;
}

/**
 * The installed version of a track, 0 if none. Its two statements are sent at once: in pipeline mode
 * (src/db/pipeline.ts) they share a round trip with each other and with whatever the caller sends
 * alongside. The second fails where the version table does not exist yet, which the first tells.
 */
export function readInstalledVersion(
  client: pg.ClientBase,
  schema: string,
  track: MigrationTrack,
): Promise<number> {
  const table = `${ident(schema)}.schema_version`;
  const exists = relationExists(client, table);
  const highest = client
    .query<{ version: number | null }>(`select max(version) as version from ${table} where track = $1`, [
      track,
    ])
    .then(
      (result) => result.rows[0]?.version ?? 0,
      (thrown: unknown) => ({ thrown }),
    );
  return exists.then(async (found) => {
    const version = await highest;
    if (!found) return 0;
    if (typeof version !== 'number') throw version.thrown;
    return version;
  });
}

export interface MigrateResult {
  from: number;
  to: number;
}

/**
 * Bring one track up to date; returns the versions before and after. `installed` is the version the
 * caller read already (readInstalledVersion), if it did.
 */
export async function migrate(
  client: pg.Client,
  schema: string,
  track: MigrationTrack,
  installed?: number,
): Promise<MigrateResult> {
  const migrations = loadMigrations(track, schema);
  const latest = migrations.at(-1)?.version ?? 0;
  const from = installed ?? (await readInstalledVersion(client, schema, track));
  if (from > latest) throw newerSchemaError(schema, track, from, latest);

  // Only the missing ones, each in a transaction of its own: on a target across a slow link, a connect
  // that found every migration applied costs two round trips, not seven per migration.
  for (const migration of migrations.filter((m) => m.version > from)) {
    await client.query('begin');
    try {
      await client.query(lockKey(schema));
      // Not `create schema if not exists` alone: that needs CREATE on the database even when the schema
      // exists, and a role that owns a schema an admin created for it may lack that privilege.
      const found = await client.query('select 1 from pg_namespace where nspname = $1', [schema]);
      if (found.rowCount === 0) await client.query(`create schema if not exists ${ident(schema)}`);
      await client.query(
        `create table if not exists ${ident(schema)}.schema_version (
           track text not null,
           version int not null,
           name text not null,
           applied_at timestamptz not null default now(),
           primary key (track, version))`,
      );
      // Read again under the lock: another process may have migrated meanwhile.
      const current = await readInstalledVersion(client, schema, track);
      if (current > latest) throw newerSchemaError(schema, track, current, latest);
      if (current < migration.version) {
        await client.query(migration.sql);
        await client.query(
          `insert into ${ident(schema)}.schema_version (track, version, name) values ($1, $2, $3)`,
          [track, migration.version, migration.name],
        );
      }
      await client.query('commit');
    } catch (thrown) {
      await client.query('rollback').catch(() => undefined);
      throw thrown;
    }
  }
  return { from, to: Math.max(from, latest) };
}

/** The version this build brings a track to. */
export function latestVersion(track: MigrationTrack, schema: string): number {
  return loadMigrations(track, schema).at(-1)?.version ?? 0;
}

/** Refuse to run against a schema that a newer trigsync installed. */
export async function assertSchemaKnown(
  client: pg.Client,
  schema: string,
  track: MigrationTrack,
): Promise<number> {
  const latest = latestVersion(track, schema);
  const current = await readInstalledVersion(client, schema, track);
  if (current > latest) throw newerSchemaError(schema, track, current, latest);
  return current;
}

function newerSchemaError(schema: string, track: string, installed: number, known: number): ConfigError {
  return new ConfigError(
    `schema ${schema}: ${track} version ${installed} is newer than this trigsync knows (${known}); upgrade trigsync`,
  );
}
