/**
 * The source's side of a plan: each configured table as the source's catalog describes it, with its
 * replica key. Install reads it before it captures; each target's plan (src/apply/plan.ts) is built on it.
 */
import type pg from 'pg';

import { formatIdentifier, formatQualifiedName } from '../config/identifiers.js';
import type { CapturedTable, Config, QualifiedName } from '../config/types.js';
import {
  describeTables,
  partitionRoots,
  partitionsAmong,
  relationKinds,
  rowsHiddenFrom,
  type TableInfo,
} from './catalog.js';
import { columnRenames, type Renames } from './renamed-columns.js';

/**
 * The source's captured tables as described, by display name, with their replica key and the columns
 * renamed since their former names were noted (renamed-columns.ts).
 */
export type SourceTables = Map<string, TableInfo & { name: QualifiedName; key: string[]; renamed?: Renames }>;

/**
 * The columns that identify a table's rows for trigsync (its replica key): those the config names, which
 * a unique index over NOT NULL columns must cover exactly; else the primary key; else the narrowest
 * such index. A problem names the table and the ways out.
 */
function replicaKey(info: TableInfo, table: CapturedTable): { key: string[] } | { problem: string } {
  const display = formatQualifiedName(table);
  if (table.key !== undefined) {
    const wanted = [...table.key].sort().join('\0');
    const found = info.uniqueKeys.find((k) => [...k].sort().join('\0') === wanted);
    if (found !== undefined) return { key: table.key };
    return {
      problem:
        `tables: ${display}: key (${table.key.join(', ')}) is not the primary key or a unique index over ` +
        'NOT NULL columns of the table; create one over exactly these columns, or name another key',
    };
  }
  const key = info.uniqueKeys[0];
  if (key !== undefined) return { key };
  return {
    problem:
      `tables: ${display} has no primary key and no unique index over NOT NULL columns, which trigsync ` +
      'needs to apply updates and deletes: add a primary key, or a unique index over NOT NULL columns ' +
      '(then name its columns with `key` in the config if the table has several)',
  };
}

/** Describe every source table of the config; problems name the table. */
export async function describeSourceTables(
  source: pg.ClientBase,
  config: Config,
): Promise<{ tables: SourceTables; problems: string[] }> {
  const tables: SourceTables = new Map();
  const problems: string[] = [];
  const described = await describeTables(source, config.tables);
  const missing = config.tables.filter((_, i) => described[i] === undefined);
  const kinds = new Map((await relationKinds(source, missing)).map((kind, i) => [missing[i], kind]));
  for (const [i, name] of config.tables.entries()) {
    const info = described[i];
    const display = formatQualifiedName(name);
    if (info === undefined) {
      problems.push(`tables: ${display} ${notATable(kinds.get(name))}`);
      continue;
    }
    const chosen = replicaKey(info, name);
    if ('problem' in chosen) problems.push(chosen.problem);
    else tables.set(display, { ...info, name, key: chosen.key });
  }
  // A partition's writes are captured as its partitioned table's: listed beside it, its triggers would be
  // made for each in turn.
  const listed = new Map([...tables].map(([display, t]) => [t.relid, display]));
  for (const [partition, table] of await partitionsAmong(source, [...listed.keys()])) {
    const display = listed.get(partition)!;
    problems.push(
      `tables: ${display} is a partition of ${listed.get(table)!}, which is listed too and captures its ` +
        `rows: list one of them`,
    );
    tables.delete(display);
  }
  // A partition listed without its partitioned table: its statement triggers do not fire for writes that
  // name the partitioned table, which would be lost to replication. Described all the same: a table that
  // a target still drains (removed from the config) applies what its log holds.
  const roots = await partitionRoots(
    source,
    [...tables.values()].map((t) => t.relid),
  );
  for (const [display, table] of tables) {
    const root = roots.get(table.relid);
    if (root === undefined) continue;
    const parent = formatQualifiedName(root);
    problems.push(
      `tables: ${display} is a partition of ${parent}, and writes through ${parent} would not be ` +
        `captured: list ${parent} (a where on its partition key keeps to this partition's rows)`,
    );
  }
  const renames = await columnRenames(
    source,
    config.schema,
    [...tables.values()].map((t) => t.relid),
  );
  for (const table of tables.values()) {
    const renamed = renames.get(table.relid);
    if (renamed !== undefined) table.renamed = renamed;
  }
  const secured = [...tables.values()].filter((t) => t.rowSecurity).map((t) => t.relid);
  const hidden = await rowsHiddenFrom(source, secured);
  const role = hidden.size > 0 ? await currentRole(source) : '';
  for (const [display, table] of tables) {
    if (hidden.has(table.relid)) problems.push(rowSecurityProblem(display, role));
  }
  return { tables, problems };
}

/** What to say of a configured name that is no table: what it is, and what trigsync captures instead. */
function notATable(kind: string | undefined): string {
  switch (kind) {
    case undefined:
      return 'does not exist on the source';
    case 'view':
    case 'materialized view':
      return `is a ${kind}, which no trigger captures: list the tables it reads (and make it on the targets)`;
    case 'foreign table':
      return 'is a foreign table: capture it on the server that holds its rows';
    case 'sequence':
      return 'is a sequence: list it under `sequences`, or it follows the table that owns it';
    default:
      return `is a ${kind}, not a table`;
  }
}

async function currentRole(client: pg.ClientBase): Promise<string> {
  const result = await client.query<{ role: string }>('select current_user as role');
  return result.rows[0]!.role;
}

/** A table whose row-level security hides rows from trigsync's role: what that breaks, and the ways out. */
function rowSecurityProblem(table: string, role: string): string {
  const r = formatIdentifier(role);
  return (
    `tables: ${table} has row-level security that may hide rows from trigsync's role ${r}: the initial ` +
    `copy, sync and verify would read only the rows its policies show, while capture logs every change. ` +
    `Give the role BYPASSRLS (ALTER ROLE ${r} BYPASSRLS), make it the table's owner, or show it every row ` +
    `(CREATE POLICY trigsync_reads ON ${table} FOR SELECT TO ${r} USING (true))`
  );
}
