/**
 * The source's side of a plan: each configured table as the source's catalog describes it, with its
 * replica key. Install reads it before it captures; each target's plan (src/apply/plan.ts) is built on it.
 */
import type pg from 'pg';

import { formatQualifiedName } from '../config/identifiers.js';
import type { CapturedTable, Config, QualifiedName } from '../config/types.js';
import { describeTables, relationKinds, type TableInfo } from './catalog.js';

/** The source's captured tables as described, by display name, with their replica key. */
export type SourceTables = Map<string, TableInfo & { name: QualifiedName; key: string[] }>;

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
