/**
 * The captured tables a config does not list. Several configs may capture on one source (the groups of
 * daemons, each with its own tables; a table removed from a config to be added back), and each leader
 * installs only its own: the capture of a table it does not know stays, so that no change goes unlogged.
 * Each group's install records the tables its config lists (sql/source/013): what is captured is at
 * least their union, and a table another group lists is neither reported as not in the config nor
 * uncaptured. Only `uninstall`, whole or naming the table, removes capture.
 */
import type pg from 'pg';

import { formatQualifiedName, ident, qualifiedIdent } from '../config/identifiers.js';
import type { CapturedTable, Config, QualifiedName, TableMapping } from '../config/types.js';
import { inTransactionGivingWay } from '../db/giving-way.js';
import { ConfigError } from '../failure/errors.js';
import { forgetInstallDigests } from './install-digest.js';
import { dropCaptureTriggers } from './triggers.js';
import { relationExists } from '../db/relation-exists.js';

/**
 * Captured tables (display names) that are neither among the config's tables nor listed by another
 * group; none before install.
 */
export async function capturedNotInConfig(client: pg.ClientBase, config: Config): Promise<string[]> {
  const s = ident(config.schema);
  const installed = await relationExists(client, `${s}.captured_table`);
  if (!installed) return [];
  const others = await otherGroupsTables(client, config);
  const result = await client.query<{ schema: string; name: string }>(
    `select schema_name as schema, table_name as name from ${s}.captured_table
      where relid <> all(array(select to_regclass(n)::oid from unnest($1::text[]) n where to_regclass(n) is not null))
        and relid <> all($2::oid[])
        -- A table dropped since is captured no more (its name may be a new table's).
        and exists (select from pg_class k where k.oid = relid)
      order by schema_name, table_name`,
    [config.tables.map(qualifiedIdent), [...others.keys()]],
  );
  return result.rows.map(formatQualifiedName);
}

/** Record the tables a group's config lists now (by oid), in place of what its last install listed. */
export async function recordGroupTables(
  client: pg.ClientBase,
  schema: string,
  group: string,
  relids: readonly number[],
): Promise<void> {
  const s = ident(schema);
  await client.query(`delete from ${s}.group_table where group_name = $1 and relid <> all($2::oid[])`, [
    group,
    relids,
  ]);
  await client.query(
    `insert into ${s}.group_table (group_name, relid) select $1, r from unnest($2::oid[]) r
     on conflict (group_name, relid) do nothing`,
    [group, relids],
  );
}

/** Whether the source has the record of each group's tables (sql/source/013). */
async function groupTablesRecorded(client: pg.ClientBase, schema: string): Promise<boolean> {
  return relationExists(client, `${ident(schema)}.group_table`);
}

/**
 * The captured tables that groups other than the config's list, by oid, with those groups' names; none
 * before the record exists (sql/source/013).
 */
export async function otherGroupsTables(
  client: pg.ClientBase,
  config: Pick<Config, 'schema' | 'group'>,
): Promise<Map<number, string[]>> {
  if (!(await groupTablesRecorded(client, config.schema))) return new Map();
  const s = ident(config.schema);
  const result = await client.query<{ relid: string; groups: string[] }>(
    `select relid::int8 as relid, array_agg(group_name order by group_name) as groups
       from ${s}.group_table where group_name <> $1 group by relid`,
    [config.group],
  );
  return new Map(result.rows.map((r) => [Number(r.relid), r.groups]));
}

/** What to say about captured tables a config does not list: whence they may come, how to let them go. */
export function notInConfigAdvice(tables: readonly string[]): string {
  const options = tables.map((t) => `--table ${t}`).join(' ');
  return (
    `captured, not in this config: ${tables.join(', ')} (captured by another config or removed from ` +
    `this one; triggers kept; \`trigsync uninstall ${options} --yes\` removes them)`
  );
}

/**
 * Stop capturing the named tables: their capture triggers (their partitions' too) and their rows in the
 * registry go, nothing else. Refuses a table the config lists (its leader would capture it again), one
 * that another group's config lists (its targets take it), and one that is not captured. Returns the
 * display names.
 */
export async function uncaptureTables(
  client: pg.ClientBase,
  config: Config,
  names: readonly QualifiedName[],
): Promise<string[]> {
  const listed = new Set(config.tables.map(formatQualifiedName));
  const displays = names.map(formatQualifiedName);
  const inConfig = displays.filter((d) => listed.has(d));
  if (inConfig.length > 0) {
    throw new ConfigError(
      `${inConfig.join(', ')}: in this config's tables, so its leader captures them again; ` +
        'remove them from the config first',
    );
  }
  const s = ident(config.schema);
  const installed = await client.query<{ captured: boolean; targets: boolean }>(
    `select to_regclass($1) is not null as captured, to_regclass($2) is not null as targets`,
    [`${s}.captured_table`, `${s}.target_table`],
  );
  if (installed.rows[0]?.captured !== true)
    throw new ConfigError(`schema ${config.schema}: trigsync is not installed on this source`);
  const others = await otherGroupsTables(client, config);
  const grouped = await groupTablesRecorded(client, config.schema);
  await inTransactionGivingWay(client, async () => {
    await forgetInstallDigests(client, config.schema, 'all');
    for (const [i, name] of names.entries()) {
      // By the table's oid (it may have been renamed since install), or by the name it was installed
      // under (it may have been dropped since).
      const found = await client.query<{ relid: string }>(
        `select relid::int8 as relid from ${s}.captured_table
          where relid = to_regclass($1)::oid or (schema_name = $2 and table_name = $3)`,
        [qualifiedIdent(name), name.schema, name.name],
      );
      const relid = found.rows[0]?.relid;
      if (relid === undefined)
        throw new ConfigError(
          `${displays[i]}: not captured by trigsync (schema ${config.schema}) on this source`,
        );
      const groups = others.get(Number(relid));
      if (groups !== undefined)
        throw new ConfigError(
          `${displays[i]}: in the tables of group ${groups.join(', group ')}, whose daemons capture it ` +
            'again; remove it from that config first and restart its daemons',
        );
      await dropCaptureTriggers(client, config.schema, Number(relid));
      await client.query(`delete from ${s}.captured_table where relid = $1`, [relid]);
      // Only this group's install can have listed it (the others' refuse above): listed no longer.
      if (grouped) await client.query(`delete from ${s}.group_table where relid = $1`, [relid]);
      // Taken again later, the table is new to every target: its gap is reported then.
      if (installed.rows[0]?.targets === true)
        await client.query(`delete from ${s}.target_table where relid = $1`, [relid]);
    }
  });
  return displays;
}

/** A table a target may lack rows or changes of, since when: a copy of it (`sync`) is what helps. */
export interface TableToCopy {
  target: string;
  table: string;
  since: string;
  /** What stopped the table's capture before `since`; null: the target did not take it all along. */
  why: string | null;
}

/** What to say about a table a target may lack rows or changes of, and the command that fixes it. */
export function copyAdvice(gap: TableToCopy): string {
  return (
    `target ${gap.target} may lack rows or changes of ${gap.table} from before ${gap.since} ` +
    `(${gap.why ?? 'it did not take that table all along'}); copy it with ` +
    `\`trigsync sync ${gap.target} --table ${gap.table}\``
  );
}

/** Why a target that copies what it lacks (initialSync: copy) copies `gap`'s table. */
export function copyingReason(gap: TableToCopy): string {
  return gap.why === null ? 'which it takes anew' : `which it may lack writes of (${gap.why})`;
}

/**
 * Of `tables`, those created again under the name of a captured table that was dropped: what trigsync
 * captured of the name is the old table's. By oid.
 */
export async function recreatedTables(
  client: pg.ClientBase,
  schema: string,
  tables: readonly { relid: number; name: QualifiedName }[],
): Promise<number[]> {
  const result = await client.query<{ relid: string }>(
    `select t.relid::int8 as relid from unnest($1::oid[], $2::text[], $3::text[]) as t(relid, schema_name, table_name)
      where exists (select from ${ident(schema)}.captured_table c
                     where c.schema_name = t.schema_name and c.table_name = t.table_name and c.relid <> t.relid
                       and not exists (select from pg_class k where k.oid = c.relid))`,
    [tables.map((t) => t.relid), tables.map((t) => t.name.schema), tables.map((t) => t.name.name)],
  );
  return result.rows.map((r) => Number(r.relid));
}

/**
 * The capture of a table was off (`why`: src/capture/triggers.ts): every target that takes it may lack
 * the writes made meanwhile, as `tablesToCopy` then says, until a copy of it. Returns those targets.
 */
export async function noteCaptureGap(
  client: pg.ClientBase,
  schema: string,
  relid: number,
  why: string,
): Promise<string[]> {
  const result = await client.query<{ target: string }>(
    `update ${ident(schema)}.target_table
        set needs_sync_why = coalesce(needs_sync_why, $2),
            needs_sync_since = coalesce(needs_sync_since, now())
      where relid = $1 and left_from is null
      returning target`,
    [relid, why],
  );
  return result.rows.map((r) => r.target);
}

/** A table a target takes: its relid on the source and how the target takes it. */
export interface TakenTable {
  relid: number;
  mapping: TableMapping;
}

/**
 * Record which captured tables each target takes now (sql/source/009), and note each table a
 * target takes without having followed it all along: one it did not take when it was registered, or
 * one it takes again after its position moved on without it (its worker read past the table's changes).
 * `fresh` are the targets registered by this install (they follow from now, or copy first) and the
 * tables captured from now; a target registered before the record existed learns only about the latter.
 * A table a target no longer takes is drained: applied up to this install's snapshot (sql/source/012).
 */
export async function recordTargetTables(
  client: pg.ClientBase,
  schema: string,
  targets: readonly { name: string; tables: readonly TakenTable[] }[],
  fresh: { targets: readonly string[]; relids: readonly number[] },
): Promise<void> {
  const s = ident(schema);
  for (const { name, tables } of targets) {
    const relids = tables.map((t) => t.relid);
    const mappings = tables.map((t) => JSON.stringify(t.mapping));
    const known = await client.query(`select from ${s}.target_table where target = $1`, [name]);
    if (fresh.targets.includes(name) || known.rowCount === 0) {
      const gaps = fresh.targets.includes(name) ? [] : relids.filter((r) => fresh.relids.includes(r));
      await client.query(
        `insert into ${s}.target_table (target, relid, needs_sync_since, mapping)
           select $1, r, case when r = any($3::oid[]) then now() end, m
             from unnest($2::oid[], $4::jsonb[]) as x (r, m)
         on conflict (target, relid) do update set mapping = excluded.mapping`,
        [name, relids, gaps, mappings],
      );
      continue;
    }
    // Taken now: new to the target, or taken again; a gap unless its position is where it was when
    // the target stopped taking the table.
    await client.query(
      `insert into ${s}.target_table as tt (target, relid, needs_sync_since, mapping)
         select $1, r, now(), m from unnest($2::oid[], $3::jsonb[]) as x (r, m)
       on conflict (target, relid) do update set
         mapping = excluded.mapping, drain_until = null,
         needs_sync_since = case
           when tt.left_from is null
             or (tt.left_from::text, tt.left_applied_id)
                = (select t.from_snapshot::text, t.applied_id from ${s}.target t where t.name = $1)
           then tt.needs_sync_since
           else coalesce(tt.needs_sync_since, now()) end,
         left_from = null, left_applied_id = null`,
      [name, relids, mappings],
    );
    // No longer taken: remember where the target's position was, and drain what the log holds now.
    await client.query(
      `update ${s}.target_table tt set left_from = t.from_snapshot, left_applied_id = t.applied_id,
              drain_until = case when tt.mapping is not null then pg_current_snapshot() end
         from ${s}.target t
        where t.name = tt.target and tt.target = $1 and tt.left_from is null and tt.relid <> all($2::oid[])`,
      [name, relids],
    );
  }
}

/** The tables targets take and may lack rows or changes of; none before this record exists. */
export async function tablesToCopy(client: pg.ClientBase, schema: string): Promise<TableToCopy[]> {
  const s = ident(schema);
  const installed = await relationExists(client, `${s}.target_table`);
  if (!installed) return [];
  // needs_sync_why is read as a key of the row: a source installed before sql/source/018 has none.
  const result = await client.query<{
    target: string;
    schema: string;
    name: string;
    since: Date;
    why: string | null;
  }>(
    `select tt.target, c.schema_name as schema, c.table_name as name, tt.needs_sync_since as since,
            to_jsonb(tt) ->> 'needs_sync_why' as why
       from ${s}.target_table tt join ${s}.captured_table c on c.relid = tt.relid
      where tt.left_from is null and tt.needs_sync_since is not null
      order by tt.target, c.schema_name, c.table_name`,
  );
  return result.rows.map((r) => ({
    target: r.target,
    table: formatQualifiedName(r),
    since: r.since.toISOString(),
    why: r.why,
  }));
}

/**
 * A copy of these tables of a target (display names; none: all of them), asked at `requestedAt`, is
 * done: it lacks nothing noted before the copy was asked. A gap noted since (a capture found off while
 * it copied) may predate the copy's snapshot, and stays.
 */
export async function forgetCopied(
  client: pg.ClientBase,
  schema: string,
  target: string,
  tables: readonly string[],
  requestedAt: string,
): Promise<void> {
  await client.query(
    `update ${ident(schema)}.target_table set needs_sync_since = null, needs_sync_why = null
      where target = $1 and needs_sync_since is not null
        and (needs_sync_why is null or coalesce(needs_sync_since <= nullif($3::text, '')::timestamptz, true))
        and (cardinality($2::text[]) = 0 or relid = any(array(select to_regclass(n)::oid from unnest($2::text[]) n)))`,
    [target, tables, requestedAt],
  );
}

/** A table a target no longer takes, still applied to it up to `until` (a source snapshot, as text). */
export interface DrainingTable {
  target: string;
  relid: number;
  /** The captured table, as the config would name it (with the key install used). */
  table: CapturedTable;
  mapping: TableMapping;
  until: string;
}

/** Every table some target is draining; none before the record exists. */
export async function drainingTables(client: pg.ClientBase, schema: string): Promise<DrainingTable[]> {
  const s = ident(schema);
  const installed = await client.query<{ found: boolean }>(
    `select exists (select from pg_attribute where attrelid = to_regclass($1) and attname = 'drain_until') as found`,
    [`${s}.target_table`],
  );
  if (installed.rows[0]?.found !== true) return [];
  const result = await client.query<{
    target: string;
    relid: string;
    schema: string;
    name: string;
    key: string[];
    mapping: { target: QualifiedName; columns?: string[]; where?: string };
    until: string;
  }>(
    `select tt.target, tt.relid::int8 as relid, c.schema_name as schema, c.table_name as name,
            c.key_columns::text[] as key, tt.mapping, tt.drain_until::text as until
       from ${s}.target_table tt join ${s}.captured_table c on c.relid = tt.relid
      where tt.drain_until is not null and tt.mapping is not null
      order by tt.target, c.schema_name, c.table_name`,
  );
  return result.rows.map((r) => {
    const table = { schema: r.schema, name: r.name };
    return {
      target: r.target,
      relid: Number(r.relid),
      table: { ...table, key: r.key },
      mapping: { ...r.mapping, source: table },
      until: r.until,
    };
  });
}

/** The target's position has passed what it drains of the table: nothing of it is applied any more. */
export async function forgetDrained(
  client: pg.ClientBase,
  schema: string,
  target: string,
  relid: number,
): Promise<void> {
  await client.query(
    `update ${ident(schema)}.target_table set drain_until = null where target = $1 and relid = $2`,
    [target, relid],
  );
}
