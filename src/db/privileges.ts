/**
 * The privileges trigsync's roles need (docs/operations.md, "Roles and privileges"), and which of them a
 * role lacks, each with the GRANT that gives it. `trigsync check` reports them; one query per database.
 *
 * On the source: USAGE on each schema of a captured table; SELECT on each captured table (the initial
 * copy, `sync` and `verify` read it); TRIGGER on it and on each of its partitions (install puts the
 * capture triggers on them; ownership holds every privilege); and trigsync's schema: USAGE and CREATE on
 * it, or CREATE on the database while it does not exist yet (install creates it).
 *
 * On a target: USAGE on each schema of a mapped table; SELECT, INSERT, UPDATE and DELETE on each mapped
 * table (apply finds rows by key, inserts, updates in place and deletes); TRUNCATE where the target
 * copies (initialSync: copy empties the tables first), else only where the source truncates: a warning;
 * TRIGGER where the target is readOnly (the guard); trigsync's schema as on the source; and UPDATE and
 * SELECT on each replicated sequence, whose lack is a warning, as it never parks the target.
 *
 * SELECT, INSERT and UPDATE granted on the columns written count as well as on the table. Objects are
 * found through the catalog, not to_regclass(), which fails on a schema the role may not use.
 */
import type pg from 'pg';

import {
  formatIdentifier,
  formatQualifiedName,
  sameName,
  type QualifiedName,
} from '../config/identifiers.js';

type Kind = 'table' | 'sequence' | 'schema' | 'trigsync-schema';

/** One privilege a role needs on one object. */
export interface Need {
  kind: Kind;
  /** A table or sequence; a schema's name is `name.name`. */
  name: QualifiedName;
  /** As shown and granted, e.g. `INSERT`. */
  privilege: string;
  /** As has_*_privilege() tests it, when it differs: `SELECT,USAGE` holds if either is held. */
  test?: string;
  /** The columns written or read; absent: every column. For SELECT, INSERT and UPDATE only. */
  columns?: readonly string[];
  /** TRIGGER on each partition too. */
  partitions?: boolean;
  /** What needs it. */
  why: string;
  /** Missing, it stops trigsync (a problem); else it stops only what `why` says (a warning). */
  required: boolean;
}

/** A privilege the role lacks, with what fixes it. */
export interface MissingPrivilege {
  role: string;
  privilege: string;
  on: 'table' | 'sequence' | 'schema' | 'database';
  /** Its name, as SQL takes it: `public.orders`, `public."Order Lines"`. */
  object: string;
  grant: string;
  why: string;
  required: boolean;
  /** `role app lacks INSERT on public.orders (why) — GRANT INSERT ON public.orders TO app;` */
  message: string;
}

export interface SourceNeeds {
  /** trigsync's own schema. */
  schema: string;
  tables: readonly QualifiedName[];
}

export interface TargetNeeds {
  schema: string;
  /** The mapped target tables, with the columns trigsync writes when known. */
  tables: readonly { name: QualifiedName; columns?: readonly string[] }[];
  readOnly: boolean;
  /** initialSync: copy: the copy empties its tables with TRUNCATE. */
  copies: boolean;
  /** The target's replicated sequences. */
  sequences: readonly QualifiedName[];
}

function schemaNeeds(tables: readonly QualifiedName[], why: string): Need[] {
  const schemas = [...new Set(tables.map((t) => t.schema))];
  return schemas.map((s) => ({
    kind: 'schema',
    name: { schema: s, name: s },
    privilege: 'USAGE',
    why,
    required: true,
  }));
}

function ownSchemaNeeds(schema: string): Need[] {
  const name = { schema, name: schema };
  const why = "trigsync's own objects live there";
  return [
    { kind: 'trigsync-schema', name, privilege: 'USAGE', why, required: true },
    { kind: 'trigsync-schema', name, privilege: 'CREATE', why, required: true },
  ];
}

/** What the source role needs. */
export function sourceNeeds(needs: SourceNeeds): Need[] {
  return [
    ...schemaNeeds(needs.tables, 'its captured tables are there'),
    ...needs.tables.flatMap((name): Need[] => [
      {
        kind: 'table',
        name,
        privilege: 'SELECT',
        why: 'the initial copy, sync and verify read it',
        required: true,
      },
      {
        kind: 'table',
        name,
        privilege: 'TRIGGER',
        partitions: true,
        why: 'install puts the capture triggers on it',
        required: true,
      },
    ]),
    ...ownSchemaNeeds(needs.schema),
  ];
}

/** What the source role needs of the sequences it carries to targets: to read them. */
export function sourceSequenceNeeds(sequences: readonly QualifiedName[]): Need[] {
  return sequences.map((name) => ({
    kind: 'sequence',
    name,
    privilege: 'SELECT',
    test: 'SELECT,USAGE',
    why: 'it is not carried to the targets without it',
    required: false,
  }));
}

/** What a target role needs. */
export function targetNeeds(needs: TargetNeeds): Need[] {
  const table = (
    t: TargetNeeds['tables'][number],
    privilege: string,
    why: string,
    required = true,
  ): Need => ({
    kind: 'table',
    name: t.name,
    privilege,
    ...(t.columns !== undefined && ['SELECT', 'INSERT', 'UPDATE'].includes(privilege)
      ? { columns: t.columns }
      : {}),
    why,
    required,
  });
  return [
    ...schemaNeeds(
      needs.tables.map((t) => t.name),
      'its target tables are there',
    ),
    ...needs.tables.flatMap((t) => [
      table(t, 'SELECT', 'apply finds rows by key'),
      table(t, 'INSERT', 'apply inserts rows'),
      table(t, 'UPDATE', 'apply updates rows in place'),
      table(t, 'DELETE', 'apply deletes rows'),
      needs.copies
        ? table(t, 'TRUNCATE', 'initialSync: copy empties it before copying')
        : table(t, 'TRUNCATE', 'needed when the source truncates it, and by sync', false),
      ...(needs.readOnly ? [table(t, 'TRIGGER', 'readOnly: trigsync puts its guard on it')] : []),
    ]),
    ...ownSchemaNeeds(needs.schema),
    ...needs.sequences.flatMap((name): Need[] => [
      {
        kind: 'sequence',
        name,
        privilege: 'SELECT',
        test: 'SELECT,USAGE',
        why: 'it is not carried without it',
        required: false,
      },
      { kind: 'sequence', name, privilege: 'UPDATE', why: 'it is not carried without it', required: false },
    ]),
  ];
}

interface Row {
  i: number;
  schema: string;
  name: string;
  /** trigsync's schema exists. */
  present: boolean;
  granted: boolean | null;
  role: string;
  database: string;
}

/**
 * Which of `needs` the session's role lacks, in one query. An object that does not exist is not
 * reported here: the checks of tables and columns report it.
 */
export async function missingPrivileges(
  client: pg.ClientBase,
  needs: readonly Need[],
): Promise<MissingPrivilege[]> {
  if (needs.length === 0) return [];
  const checks = needs.map((n, i) => ({
    i,
    kind: n.kind,
    schema: n.name.schema,
    name: n.name.name,
    privilege: n.test ?? n.privilege,
    columns: n.columns ?? null,
    partitions: n.partitions === true,
  }));
  const result = await client.query<Row>(
    `with c as (
       select * from json_to_recordset($1::json)
         as c (i int, kind text, schema text, name text, privilege text, columns text[], partitions boolean)
     ),
     rel as (
       select c.*, k.oid, k.relkind from c
         join pg_namespace n on n.nspname = c.schema
         join pg_class k on k.relnamespace = n.oid and k.relname = c.name
        where c.kind in ('table', 'sequence')
     ),
     tables as (
       select r.i, r.schema, r.name, r.oid, r.privilege, r.columns from rel r where r.kind = 'table'
       union all
       select r.i, pn.nspname, pk.relname, pk.oid, r.privilege, r.columns
         from rel r cross join lateral pg_partition_tree(r.oid) p
         join pg_class pk on pk.oid = p.relid join pg_namespace pn on pn.oid = pk.relnamespace
        where r.kind = 'table' and r.partitions and p.level > 0
     )
     select x.*, current_user as role, current_database() as database from (
       select t.i, t.schema, t.name, true as present,
              case when t.privilege in ('SELECT', 'INSERT', 'UPDATE')
                   then coalesce((select bool_and(has_column_privilege(t.oid, a.attnum, t.privilege))
                                    from pg_attribute a
                                   where a.attrelid = t.oid and a.attnum > 0 and not a.attisdropped
                                     and (t.columns is null or a.attname = any(t.columns))),
                                 has_table_privilege(t.oid, t.privilege))
                   else has_table_privilege(t.oid, t.privilege) end as granted
         from tables t
       union all
       -- has_sequence_privilege() fails on another relation: CASE, as the planner may call it before a filter.
       select r.i, r.schema, r.name, true,
              case when r.relkind = 'S' then has_sequence_privilege(r.oid, r.privilege) end
         from rel r where r.kind = 'sequence'
       union all
       select c.i, c.schema, c.name, true, has_schema_privilege(n.oid, c.privilege)
         from c join pg_namespace n on n.nspname = c.name where c.kind = 'schema'
       union all
       select c.i, c.schema, c.name, n.oid is not null,
              case when n.oid is null then has_database_privilege(current_database(), 'CREATE')
                   else has_schema_privilege(n.oid, c.privilege) end
         from c left join pg_namespace n on n.nspname = c.name where c.kind = 'trigsync-schema'
     ) x
     where x.granted is false
     order by x.i, x.schema, x.name`,
    [JSON.stringify(checks)],
  );
  const missing: MissingPrivilege[] = [];
  const seen = new Set<string>();
  for (const row of result.rows) {
    const need = needs[row.i];
    if (need === undefined) continue;
    const found = lacking(need, row);
    // Without the schema, USAGE and CREATE both come down to CREATE on the database: said once.
    if (seen.has(found.message)) continue;
    seen.add(found.message);
    missing.push(found);
  }
  return missing;
}

function lacking(need: Need, row: Row): MissingPrivilege {
  const role = formatIdentifier(row.role);
  const name = { schema: row.schema, name: row.name };
  let privilege = need.privilege;
  let on: MissingPrivilege['on'];
  let object: string;
  let why = need.why;
  let alternative = '';
  switch (need.kind) {
    case 'table':
    case 'sequence':
      on = need.kind;
      object = formatQualifiedName(name);
      if (!sameName(name, need.name)) why = `a partition of ${formatQualifiedName(need.name)}: ${why}`;
      break;
    case 'schema':
      on = 'schema';
      object = formatIdentifier(row.name);
      break;
    case 'trigsync-schema':
      if (row.present) {
        on = 'schema';
        object = formatIdentifier(row.name);
        alternative = ` (or make the role its owner: ALTER SCHEMA ${object} OWNER TO ${role};)`;
      } else {
        on = 'database';
        privilege = 'CREATE';
        object = formatIdentifier(row.database);
        why = `install creates trigsync's schema ${formatIdentifier(row.name)}`;
        alternative = ` (or, as an admin: CREATE SCHEMA ${formatIdentifier(row.name)} AUTHORIZATION ${role};)`;
      }
      break;
  }
  const grant = `GRANT ${privilege} ON ${on === 'table' ? '' : `${on.toUpperCase()} `}${object} TO ${role};`;
  const shown = on === 'table' ? object : `${on} ${object}`;
  return {
    role: row.role,
    privilege,
    on,
    object,
    grant,
    why,
    required: need.required,
    message: `role ${role} lacks ${privilege} on ${shown} (${why}) — ${grant}${alternative}`,
  };
}
