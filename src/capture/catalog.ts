/** What the catalogs say about a table: its columns and primary key. Used on sources and targets. */
import type pg from 'pg';

import { prepared } from '../db/prepared.js';

import type { QualifiedName } from '../config/types.js';

export interface ColumnInfo {
  name: string;
  /** pg_attribute.attnum: a column keeps it when renamed. */
  attnum: number;
  /** format_type() of the column, for messages. */
  type: string;
  /** A generated column is computed by its own server and never written. */
  generated: boolean;
  /**
   * GENERATED ALWAYS AS IDENTITY: an INSERT writes it only with OVERRIDING SYSTEM VALUE, and an UPDATE
   * not at all ("can only be updated to DEFAULT").
   */
  identityAlways: boolean;
  /**
   * A virtual generated column (PostgreSQL 18): its expression, which no row holds. A trigger's
   * transition table, and so a row image, has NULL for it; a row filter computes it from the image.
   */
  virtualExpression: string | null;
  notNull: boolean;
  /** An INSERT that leaves the column out gives it a value: a default, an identity, or generated. */
  defaulted: boolean;
  /**
   * The value that rows older than the column hold, as its text output: a column added with a default
   * that is not volatile gives it to the rows already there without writing them (attmissingval). A row
   * image captured before the column was added lacks it, and stands for this value. Null when the
   * table was written anew since, or the column came with the table. A partitioned table's is its
   * partitions'.
   */
  missing: string | null;
  /**
   * Capture writes the column's text, under its own settings (sql/source/020): to_json() would write it
   * through a cast to json (hstore, PostGIS types), which the type's own input cannot read back, or in
   * the writer's search_path (regclass and the other reg* types, which name an object unqualified where
   * the writer's path finds it: another table of that name on the target's path would be taken). Also
   * an array, domain or composite of such a type.
   */
  textForm: boolean;
  /** An array type (or a domain over one): `= any(array(...))` does not compare it. */
  array: boolean;
  /** json or jsonb (or a domain over one): json_populate_record takes a JSON value for it as it is. */
  json: boolean;
  /** A composite type (or a domain over one): to_json() writes it as a JSON object. */
  composite: boolean;
  /**
   * Values that the column's `=` finds equal may be written differently in row images: a
   * nondeterministic collation ('Bob' and 'bob'), citext, timestamptz (its text follows the writer's
   * TimeZone), bytea (and its bytea_output), intervals, floats, or any type not known to print equal
   * values alike (looseEquality).
   */
  looseEquality: boolean;
}

export interface TableInfo {
  relid: number;
  columns: ColumnInfo[];
  /** Primary key columns in key order; empty when the table has none. */
  primaryKey: string[];
  /**
   * Every set of columns that identifies a row: the primary key and each unique index over NOT NULL
   * columns (no expression, no predicate, not deferrable), the primary key first, then the narrowest.
   */
  uniqueKeys: string[][];
  /** A partitioned table: its rows live in its partitions. */
  partitioned: boolean;
  /**
   * The table inherits from another or another from it (INHERITS, not a partition): a statement on a
   * parent changes its children's rows too, which its capture must log as theirs (sql/source/017).
   */
  inherits: boolean;
  /** The table has rules, which INSERT obeys and COPY does not. */
  rules: boolean;
  /** Row-level security is enabled on it (rowsHiddenFrom tells whether it hides rows from a role). */
  rowSecurity: boolean;
  /**
   * The session's role when row-level security applies to its statements on the table (enabled, and
   * the role neither BYPASSRLS nor the owner of a table without FORCE ROW LEVEL SECURITY); else null.
   */
  rowSecurityFor: string | null;
  /** Its catalog rows' version when described (catalogVersion): equal versions, equal descriptions. */
  version: string;
}

/**
 * Whether column `a`'s type, or a type it is made of (a domain's base, an array's element, a composite's
 * attributes), has a cast to json or jsonb other than json's and jsonb's own, or is a reg* type
 * (ColumnInfo.textForm).
 */
const textFormType = `exists (
     with recursive reach (typ) as (
       select a.atttypid
       union
       select m.part from reach r join pg_type t on t.oid = r.typ
        cross join lateral (
          select t.typbasetype where t.typtype = 'd'
          union all select e.oid from pg_type e where e.typarray = t.oid
          union all select x.atttypid from pg_attribute x
                     where t.typrelid <> 0 and x.attrelid = t.typrelid and x.attnum > 0 and not x.attisdropped
        ) as m (part))
     select from reach r
      where r.typ in ('regclass'::regtype, 'regtype'::regtype, 'regproc'::regtype, 'regprocedure'::regtype,
                      'regoper'::regtype, 'regoperator'::regtype, 'regconfig'::regtype,
                      'regdictionary'::regtype, 'regnamespace'::regtype, 'regrole'::regtype,
                      'regcollation'::regtype)
         or exists (select from pg_cast k
                     where k.castsource = r.typ and k.casttarget in ('json'::regtype, 'jsonb'::regtype)
                       and r.typ not in ('json'::regtype, 'jsonb'::regtype)))`;

/** pg_attribute `a`'s expression when it is a virtual generated column ('v', PostgreSQL 18), else NULL. */
const virtualExpression = `(select pg_get_expr(d.adbin, d.adrelid) from pg_attrdef d
   where d.adrelid = a.attrelid and d.adnum = a.attnum and a.attgenerated = 'v')`;

/** Whether column `a` is of an array type, or a domain over one. */
const arrayType = `(select coalesce(b.typcategory, t.typcategory) = 'A'
                      from pg_type t left join pg_type b on t.typtype = 'd' and b.oid = t.typbasetype
                     where t.oid = a.atttypid)`;

/** Whether column `a` is of a composite type, or a domain over one. */
const compositeType = `(select coalesce(b.typtype, t.typtype) = 'c'
                          from pg_type t left join pg_type b on t.typtype = 'd' and b.oid = t.typbasetype
                         where t.oid = a.atttypid)`;

/** Whether column `a` is json or jsonb, or a domain over one. */
const jsonType = `(select coalesce(b.oid, t.oid) in ('json'::regtype, 'jsonb'::regtype)
                     from pg_type t left join pg_type b on t.typtype = 'd' and b.oid = t.typbasetype
                    where t.oid = a.atttypid)`;

/**
 * Whether two values that column `a`'s `=` finds equal may have different texts in row images. Exact:
 * the types below (a domain over one too, numeric as the apply side compares its text, enums), under a
 * deterministic collation. Any other type counts as loose, which costs the apply some batching
 * (src/apply/batch.ts), never a row.
 */
const looseEquality = `(select coalesce((select not l.collisdeterministic from pg_collation l
                                          where l.oid = a.attcollation), false)
                          or (coalesce(b.oid, t.oid) not in
                                ('int2'::regtype, 'int4'::regtype, 'int8'::regtype, 'oid'::regtype,
                                 'numeric'::regtype, 'bool'::regtype, 'text'::regtype, 'varchar'::regtype,
                                 'bpchar'::regtype, 'name'::regtype, '"char"'::regtype, 'uuid'::regtype,
                                 'date'::regtype, 'timestamp'::regtype, 'time'::regtype)
                              and coalesce(b.typtype, t.typtype) <> 'e')
                         from pg_type t left join pg_type b on t.typtype = 'd' and b.oid = t.typbasetype
                        where t.oid = a.atttypid)`;

/**
 * The version of table `c`'s catalog rows: the xids that wrote its pg_class row, its columns' rows
 * (dropped ones too) and its indexes' rows, the index flags that are changed in place, and the casts.
 * Any ALTER TABLE that changes a description writes one of these rows anew, so an unchanged version
 * means an unchanged description. A change that does not (a grant, new statistics targets) only makes
 * a description be read again. A tenth of a description's cost: it does not test each column's casts.
 */
const catalogVersion = `concat_ws('/', c.xmin, c.relhasrules,
   (select string_agg(concat(a.attnum, ':', a.xmin), ',' order by a.attnum)
      from pg_attribute a where a.attrelid = c.oid and a.attnum > 0),
   (select string_agg(concat(i.indexrelid, ':', i.xmin, i.indisvalid, i.indisready, i.indimmediate), ','
                      order by i.indexrelid)
      from pg_index i where i.indrelid = c.oid),
   (select concat(count(*), ':', sum(k.xmin::text::int8)) from pg_cast k))`;

/**
 * The value rows older than column `a` hold (ColumnInfo.missing). A partitioned table keeps none itself:
 * its partitions do, each its own (one ALTER gives them all the same).
 */
const missingValue = `case when a.atthasmissing then (a.attmissingval::text::text[])[1]
        when c.relkind = 'p' then
          (select (p.attmissingval::text::text[])[1]
             from pg_partition_tree(c.oid) t
             join pg_attribute p on p.attrelid = t.relid and p.attname = a.attname and p.atthasmissing
            limit 1)
   end`;

/** One row per table of `pg_class c`; the caller adds the FROM and WHERE that pick the tables. */
const describeColumns = `select c.oid::int8 as relid, c.relkind = 'p' as partitioned, c.relhasrules as rules,
   c.relrowsecurity as row_security,
   case when row_security_active(c.oid) then current_user::text end as row_security_for,
   c.relkind = 'r' and not c.relispartition
     and exists (select from pg_inherits h where c.oid in (h.inhrelid, h.inhparent)) as inherits,
   ${catalogVersion} as version,
   (select json_agg(json_build_object('name', a.attname,
                                      'attnum', a.attnum,
                                      'type', format_type(a.atttypid, a.atttypmod),
                                      'generated', a.attgenerated <> '',
                                      'identityAlways', a.attidentity = 'a',
                                      'virtualExpression', ${virtualExpression},
                                      'notNull', a.attnotnull,
                                      'defaulted', a.atthasdef or a.attidentity <> '' or a.attgenerated <> '',
                                      'missing', ${missingValue},
                                      'textForm', ${textFormType},
                                      'array', ${arrayType},
                                      'json', ${jsonType},
                                      'composite', ${compositeType},
                                      'looseEquality', ${looseEquality}) order by a.attnum)
      from pg_attribute a
     where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped) as columns,
   (select json_agg(a.attname order by k.ord)
      from pg_index i
      cross join unnest(i.indkey) with ordinality k(attnum, ord)
      join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
     where i.indrelid = c.oid and i.indisprimary and k.ord <= i.indnkeyatts) as key,
   (select json_agg(u.columns order by u.primary desc, u.width, u.name)
      from (select i.indisprimary as primary, i.indnkeyatts as width, x.relname as name,
                   (select json_agg(a.attname order by k.ord)
                      from unnest(i.indkey) with ordinality k(attnum, ord)
                      join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
                     where k.ord <= i.indnkeyatts) as columns
              from pg_index i join pg_class x on x.oid = i.indexrelid
             where i.indrelid = c.oid and i.indisunique and i.indisvalid and i.indimmediate
               and i.indpred is null and i.indexprs is null
               and not exists (select from unnest(i.indkey) with ordinality k(attnum, ord)
                                 left join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
                                where k.ord <= i.indnkeyatts and not coalesce(a.attnotnull, false))) u)
     as unique_keys`;

interface DescribedRow {
  relid: string;
  partitioned: boolean;
  inherits: boolean;
  rules: boolean;
  row_security: boolean;
  row_security_for: string | null;
  version: string;
  columns: ColumnInfo[] | null;
  key: string[] | null;
  unique_keys: string[][] | null;
}

function tableInfo(row: DescribedRow): TableInfo {
  return {
    relid: Number(row.relid),
    columns: row.columns ?? [],
    primaryKey: row.key ?? [],
    uniqueKeys: row.unique_keys ?? [],
    partitioned: row.partitioned,
    inherits: row.inherits,
    rules: row.rules,
    rowSecurity: row.row_security,
    rowSecurityFor: row.row_security_for,
    version: row.version,
  };
}

/** Describe a table, or undefined when there is no table of that name. */
export async function describeTable(
  client: pg.ClientBase,
  table: QualifiedName,
): Promise<TableInfo | undefined> {
  return (await describeTables(client, [table]))[0];
}

/**
 * Describe tables by name, in one round trip however many (a target across a slow link is planned at
 * every connect); undefined where there is no table of that name.
 */
export async function describeTables(
  client: pg.ClientBase,
  tables: readonly QualifiedName[],
): Promise<(TableInfo | undefined)[]> {
  if (tables.length === 0) return [];
  const result = await client.query<DescribedRow & { i: number }>(
    `${describeColumns}, t.i::int4 as i
       from unnest($1::text[], $2::text[]) with ordinality as t(schema_name, table_name, i)
       join pg_namespace n on n.nspname = t.schema_name
       join pg_class c on c.relnamespace = n.oid and c.relname = t.table_name and c.relkind in ('r', 'p')`,
    [tables.map((t) => t.schema), tables.map((t) => t.name)],
  );
  const found = new Map(result.rows.map((row) => [row.i, tableInfo(row)]));
  return tables.map((_, i) => found.get(i + 1));
}

/**
 * Of tables `relids`, those whose row-level security may hide rows from this session's role: it is
 * active for the role (not the owner, not BYPASSRLS, or FORCE ROW LEVEL SECURITY), and no permissive
 * policy of the role's shows it every row for SELECT, or a restrictive one holds some back. A read of
 * such a table (a copy, verify) sees only what the policies show; triggers see every row.
 */
export async function rowsHiddenFrom(client: pg.ClientBase, relids: readonly number[]): Promise<Set<number>> {
  if (relids.length === 0) return new Set();
  const applies = `p.polrelid = c.oid and p.polcmd in ('r', '*')
       and (0 = any(p.polroles) or exists (select from unnest(p.polroles) r where pg_has_role(r, 'MEMBER')))`;
  const result = await client.query<{ relid: string }>(
    `select c.oid::int8 as relid from pg_class c
      where c.oid = any($1::oid[]) and row_security_active(c.oid)
        and not (exists (select from pg_policy p
                          where ${applies} and p.polpermissive and pg_get_expr(p.polqual, p.polrelid) = 'true')
                 and not exists (select from pg_policy p
                                  where ${applies} and not p.polpermissive
                                    and coalesce(pg_get_expr(p.polqual, p.polrelid), 'true') <> 'true'))`,
    [relids],
  );
  return new Set(result.rows.map((r) => Number(r.relid)));
}

/**
 * A json or jsonb column (by its own type, not a domain over one): its SQL NULL and JSON null look alike
 * in a row image, so capture notes which are SQL NULL, and the apply and verify read the note.
 */
export function isJsonColumn(column: ColumnInfo): boolean {
  return column.type === 'json' || column.type === 'jsonb';
}

/** Of `relids`, each that is a partition (at any depth) of another of them: the partition's relid to that table's. */
export async function partitionsAmong(
  client: pg.ClientBase,
  relids: readonly number[],
): Promise<Map<number, number>> {
  if (relids.length < 2) return new Map();
  const result = await client.query<{ relid: string; ancestor: string }>(
    `select t.relid::int8 as relid, a.relid::int8 as ancestor
       from unnest($1::oid[]) as t(relid)
      cross join lateral pg_partition_ancestors(t.relid) as a
      where a.relid <> t.relid and a.relid = any($1::oid[])`,
    [relids],
  );
  return new Map(result.rows.map((r) => [Number(r.relid), Number(r.ancestor)]));
}

/**
 * Of `relids`, each that is a partition: its relid to the root of its partition tree (the partitioned
 * table that writes may name instead of it).
 */
export async function partitionRoots(
  client: pg.ClientBase,
  relids: readonly number[],
): Promise<Map<number, QualifiedName>> {
  if (relids.length === 0) return new Map();
  const result = await client.query<{ relid: string; schema: string; name: string }>(
    `select t.relid::int8 as relid, n.nspname as schema, r.relname as name
       from unnest($1::oid[]) as t(relid)
       join pg_class c on c.oid = t.relid and c.relispartition
       join pg_class r on r.oid = pg_partition_root(t.relid)
       join pg_namespace n on n.oid = r.relnamespace`,
    [relids],
  );
  return new Map(result.rows.map((r) => [Number(r.relid), { schema: r.schema, name: r.name }]));
}

/** What each name is, where it is not a table: 'view', 'sequence' and so on; undefined where nothing is. */
export async function relationKinds(
  client: pg.ClientBase,
  names: readonly QualifiedName[],
): Promise<(string | undefined)[]> {
  if (names.length === 0) return [];
  const result = await client.query<{ i: number; kind: string }>(
    `select t.i::int4 as i,
            case c.relkind when 'v' then 'view' when 'm' then 'materialized view' when 'f' then 'foreign table'
                           when 'S' then 'sequence' when 'i' then 'index' when 'I' then 'index'
                           when 'c' then 'composite type' else 'table' end as kind
       from unnest($1::text[], $2::text[]) with ordinality as t(schema_name, table_name, i)
       join pg_namespace n on n.nspname = t.schema_name
       join pg_class c on c.relnamespace = n.oid and c.relname = t.table_name`,
    [names.map((t) => t.schema), names.map((t) => t.name)],
  );
  const found = new Map(result.rows.map((row) => [row.i, row.kind]));
  return names.map((_, i) => found.get(i + 1));
}

/** Describe tables by oid, whatever they are named now; a dropped table is absent from the map. */
export async function describeRelids(
  client: pg.ClientBase,
  relids: readonly number[],
): Promise<Map<number, TableInfo>> {
  const result = await client.query<DescribedRow>(
    `${describeColumns} from pg_class c where c.oid = any($1::oid[]) and c.relkind in ('r', 'p')`,
    [relids],
  );
  return new Map(result.rows.map((row) => [Number(row.relid), tableInfo(row)]));
}

/**
 * The catalog versions of tables by oid (catalogVersion), whatever they are named now; a dropped table
 * is absent. Run before each chunk a worker applies (plan-keeper.ts, sourceChanged), so prepared.
 */
export async function catalogVersions(
  client: pg.ClientBase,
  relids: readonly number[],
): Promise<Map<number, string>> {
  const result = await client.query<{ relid: string; version: string }>(
    prepared(
      `select c.oid::int8 as relid, ${catalogVersion} as version
         from pg_class c where c.oid = any($1::oid[]) and c.relkind in ('r', 'p')`,
      [relids],
    ),
  );
  return new Map(result.rows.map((row) => [Number(row.relid), row.version]));
}

/** Whether two descriptions of a table have the same columns (names, types, nullability) and keys. */
export function sameShape(a: TableInfo, b: TableInfo): boolean {
  return (
    JSON.stringify([a.columns, a.uniqueKeys]) === JSON.stringify([b.columns, b.uniqueKeys]) &&
    a.relid === b.relid
  );
}

/**
 * The foreign keys among the tables of these names (a partition's stands for its partitioned table):
 * each referencing table's oid with the referenced one's. Self-references are left out.
 */
export async function foreignKeyEdges(
  client: pg.ClientBase,
  tables: readonly QualifiedName[],
): Promise<{ child: number; parent: number }[]> {
  if (tables.length === 0) return [];
  const result = await client.query<{ child: string; parent: string }>(
    `with named as (select c.oid
                      from unnest($1::text[], $2::text[]) as t(schema_name, table_name)
                      join pg_namespace n on n.nspname = t.schema_name
                      join pg_class c on c.relnamespace = n.oid and c.relname = t.table_name)
     select distinct f.child::int8 as child, f.parent::int8 as parent
       from pg_constraint c
       cross join lateral (select coalesce(pg_partition_root(c.conrelid), c.conrelid) as child,
                                  coalesce(pg_partition_root(c.confrelid), c.confrelid) as parent) f
      where c.contype = 'f' and f.child in (select oid from named) and f.parent in (select oid from named)
        and f.child <> f.parent`,
    [tables.map((t) => t.schema), tables.map((t) => t.name)],
  );
  return result.rows.map((r) => ({ child: Number(r.child), parent: Number(r.parent) }));
}

/** A foreign key of the target that references one of a copy's tables (catalog.ts referencesInto). */
export interface ForeignKeyInto {
  /** The referencing table (its partitioned table for a partition's key), oid and display name. */
  child: number;
  childName: string;
  /** The referenced table (likewise). */
  parent: number;
  constraint: string;
  /** A deferrable key: SET CONSTRAINTS ALL DEFERRED moves its check to the commit. */
  deferrable: boolean;
}

/** Every foreign key that references one of `relids`, from any table (a partition's stands for its root). */
export async function referencesInto(
  client: pg.ClientBase,
  relids: readonly number[],
): Promise<ForeignKeyInto[]> {
  const result = await client.query<{
    child: string;
    child_name: string;
    parent: string;
    constraint: string;
    deferrable: boolean;
  }>(
    `select distinct f.child::int8 as child, f.child::regclass::text as child_name, f.parent::int8 as parent,
            c.conname as constraint, c.condeferrable as deferrable
       from pg_constraint c
       cross join lateral (select coalesce(pg_partition_root(c.conrelid), c.conrelid) as child,
                                  coalesce(pg_partition_root(c.confrelid), c.confrelid) as parent) f
      where c.contype = 'f' and c.conparentid = 0 and f.parent = any($1::oid[])`,
    [relids],
  );
  return result.rows.map((r) => ({
    child: Number(r.child),
    childName: r.child_name,
    parent: Number(r.parent),
    constraint: r.constraint,
    deferrable: r.deferrable,
  }));
}
