/**
 * The capture side of `install` and `uninstall` on the source: the capture triggers of a table and its
 * partitions, this source's identity, and the removal of trigsync's objects from the source and the
 * targets. `installSource` (src/operator/install-source.ts) installs them with the target registry.
 */
import type pg from 'pg';

import { formatQualifiedName, ident } from '../config/identifiers.js';
import type { Config, QualifiedName, TargetConfig } from '../config/types.js';
import { inTransactionGivingWay } from '../db/giving-way.js';
import { ConfigError } from '../failure/errors.js';
import { dropGuards } from './guard.js';
import { isJsonColumn, type TableInfo } from './catalog.js';
import {
  dropCaptureTriggers,
  ensureCaptureTriggers,
  originOnlyTables,
  partitionsOf,
  type CaptureBefore,
  type CaptureImage,
  type TriggersEnsured,
} from './triggers.js';
import { relationExists } from '../db/relation-exists.js';

/**
 * Serialise the changes of capture triggers on this source for the rest of the transaction: the leaders
 * of several groups install and watch the capture of the tables they share, and two transactions that
 * make one table's triggers at once would fail or deadlock. Taken again in one transaction, it is held
 * once.
 */
export async function lockCapture(client: pg.ClientBase, schema: string): Promise<void> {
  await client.query(`select pg_advisory_xact_lock(hashtext('trigsync capture'), hashtext($1))`, [schema]);
}

/** How a table's rows are written into the log (src/capture/triggers.ts). */
export function captureImage(table: TableInfo): CaptureImage {
  return {
    loggedRelid: table.relid,
    columns: table.columns.map((c) => c.attnum),
    textColumns: table.columns.filter((c) => c.textForm).map((c) => c.attnum),
    jsonColumns: table.columns.filter(isJsonColumn).map((c) => c.attnum),
    byRow: table.inherits,
  };
}

/**
 * The capture triggers of a table, and of each of its partitions if it is partitioned (a statement that
 * names a partition fires only the partition's triggers), as ensureCaptureTriggers makes them.
 * `before`: the table's capture as known before (a partition's missing triggers are those of one
 * attached since, not a gap).
 */
export async function ensureTableCapture(
  client: pg.ClientBase,
  config: Config,
  table: TableInfo & { name: QualifiedName },
  before: CaptureBefore,
): Promise<TriggersEnsured> {
  const image = captureImage(table);
  const { schema, applicationName } = config;
  await lockCapture(client, schema);
  const tables = [{ relid: table.relid, name: table.name, made: before.made }];
  if (table.partitioned)
    for (const partition of await partitionsOf(client, table.relid))
      tables.push({ ...partition, made: false });
  const ensured: TriggersEnsured = { changed: false, stopped: [] };
  for (const { relid, name, made } of tables) {
    const own = await ensureCaptureTriggers(client, schema, applicationName, relid, name, image, {
      ...before,
      made,
    });
    ensured.changed ||= own.changed;
    ensured.stopped.push(...own.stopped);
  }
  return ensured;
}

/**
 * How the capture of each captured table was made (captured_table; sql/source/018): whether its
 * triggers fired ALWAYS. A table not there is captured anew.
 */
export async function capturedBefore(
  client: pg.ClientBase,
  schema: string,
): Promise<Map<number, CaptureBefore>> {
  const result = await client.query<{ relid: string; always: boolean }>(
    `select relid::int8 as relid, coalesce(fires = 'A', false) as always from ${ident(schema)}.captured_table`,
  );
  return new Map(result.rows.map((r) => [Number(r.relid), { made: true, always: r.always }]));
}

/**
 * Record whether the capture of each of `tables` fires ALWAYS now (originOnlyTables); returns those
 * whose capture fires on origin only.
 */
export async function recordCaptureFires(
  client: pg.ClientBase,
  schema: string,
  tables: readonly { relid: number; name: QualifiedName }[],
): Promise<string[]> {
  const originOnly = await originOnlyTables(
    client,
    schema,
    tables.map((t) => t.name),
  );
  await client.query(
    `update ${ident(schema)}.captured_table c set fires = case when t.origin_only then 'O' else 'A' end
       from unnest($1::oid[], $2::boolean[]) as t(relid, origin_only) where c.relid = t.relid`,
    [tables.map((t) => t.relid), tables.map((t) => originOnly.includes(formatQualifiedName(t.name)))],
  );
  return originOnly;
}

/** This source's identity, as targets know it. */
export async function sourceOrigin(client: pg.ClientBase, schema: string): Promise<string> {
  const result = await client.query<{ origin: string }>(
    `select origin from ${ident(schema)}.node where id = 1`,
  );
  const origin = result.rows[0]?.origin;
  if (origin === undefined)
    throw new ConfigError(`schema ${schema}: not installed on the source; run install`);
  return origin;
}

/**
 * Remove the capture triggers and trigsync's source objects. `removed`: the schema, or only the source's
 * objects where the database is also another source's target (a multi-master node), whose schema stays.
 */
export async function uninstallSource(
  client: pg.ClientBase,
  config: Config,
): Promise<{ tables: string[]; removed: 'schema' | 'objects' }> {
  const s = ident(config.schema);
  const exists = await relationExists(client, `${s}.captured_table`);
  let dropped: string[] = [];
  let removed: 'schema' | 'objects' = 'schema';
  await inTransactionGivingWay(client, async () => {
    dropped = [];
    if (exists) {
      const captured = await client.query<{ relid: number; name: string }>(
        `select relid::int8 as relid, format('%I.%I', schema_name, table_name) as name from ${s}.captured_table`,
      );
      for (const row of captured.rows) {
        await dropCaptureTriggers(client, config.schema, row.relid);
        dropped.push(row.name);
      }
    }
    // Tables of the config that were captured under another registry (a half-done install).
    for (const table of config.tables) {
      const found = await client.query<{ relid: number | null }>(
        `select to_regclass($1)::oid::int8 as relid`,
        [`${ident(table.schema)}.${ident(table.name)}`],
      );
      const relid = found.rows[0]?.relid;
      if (relid !== null && relid !== undefined) await dropCaptureTriggers(client, config.schema, relid);
    }
    removed = await dropSourceObjects(client, config.schema);
  });
  return { tables: dropped.length > 0 ? dropped : config.tables.map(formatQualifiedName), removed };
}

/**
 * Drop the source's objects: the whole schema, unless this database is also another source's target
 * (a multi-master node), whose positions live in the same schema and stay.
 */
async function dropSourceObjects(client: pg.ClientBase, schema: string): Promise<'schema' | 'objects'> {
  const s = ident(schema);
  const targetTrack = await relationExists(client, `${s}.applied_position`);
  if (!targetTrack) {
    await client.query(`drop schema if exists ${s} cascade`);
    return 'schema';
  }
  // Every object of the source's migrations (sql/source), or a later install fails on one left behind.
  await client.query(`drop function if exists ${s}.capture() cascade`);
  await client.query(`drop function if exists ${s}.capture_rows() cascade`);
  await client.query(`drop function if exists ${s}.capture_row() cascade`);
  await client.query(
    `drop function if exists ${s}.ring(), ${s}.still_partition_of(oid, oid),
       ${s}.image_columns(oid, int2[], int2[], int2[]), ${s}.renamed_image(json, text[], text[]),
       ${s}.renamed_names(text[], text[], text[])`,
  );
  await client.query(
    `drop table if exists ${s}.target_table, ${s}.error_queue, ${s}.target, ${s}.change_log, ${s}.captured_table,
       ${s}.node, ${s}.tick, ${s}.log_horizon, ${s}.leader, ${s}.group_table, ${s}.group_install,
       ${s}.skipped_change, ${s}.repaired_key, ${s}.seen_column`,
  );
  await client.query(
    `drop sequence if exists ${s}.doorbell, ${s}.doorbell_rings, ${s}.doorbell_armed, ${s}.tick_flush, ${s}.update_statement_seq`,
  );
  await client.query(`delete from ${s}.schema_version where track = 'source'`);
  return 'objects';
}

/**
 * Remove this source's traces from a target: its position rows and the guards of the target's tables,
 * then the target objects if no other source uses them, and the schema if nothing else of trigsync's
 * lives there (a multi-master node keeps its own capture objects).
 */
export async function uninstallTarget(
  client: pg.ClientBase,
  schema: string,
  origin: string | undefined,
  target: Pick<TargetConfig, 'name' | 'tables'>,
): Promise<void> {
  const s = ident(schema);
  const found = await relationExists(client, `${s}.applied_position`);
  if (!found) return;
  await inTransactionGivingWay(client, async () => {
    if (origin !== undefined)
      await client.query(`delete from ${s}.applied_position where origin = $1`, [origin]);
    const others = await client.query<{ n: number }>(`select count(*) as n from ${s}.applied_position`);
    const sourceTrack = await client.query<{ n: number }>(
      `select count(*) as n from ${s}.schema_version where track = 'source'`,
    );
    if (others.rows[0]?.n !== 0) {
      // The guard function stays for the other sources: drop our guards one by one (needs ownership).
      await dropGuards(client, schema, target);
    } else {
      // Every guard goes with the guard function, also on tables trigsync does not own (DROP TRIGGER
      // would need ownership; a dependent object dropped by CASCADE does not).
      await client.query(`drop function if exists ${s}.guard() cascade`);
      if (sourceTrack.rows[0]?.n === 0) {
        await client.query(`drop schema ${s} cascade`);
      } else {
        // Every object of the target's migrations (sql/target), or a later install fails on one left.
        await client.query(`drop table ${s}.applied_position, ${s}.table_floor`);
        await client.query(`drop function if exists ${s}.apply_conflicts_found(bigint)`);
        await client.query(`delete from ${s}.schema_version where track = 'target'`);
      }
    }
  });
}
