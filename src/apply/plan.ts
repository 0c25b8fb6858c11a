/**
 * A target's plan: for each captured table it takes, the target table, the columns written, the key,
 * and the read query that selects its changes. Built from the config and both servers' catalogs;
 * every mismatch is reported by name.
 */
import type pg from 'pg';

import { describeTable, type ColumnInfo, type TableInfo } from '../capture/catalog.js';
import { formatQualifiedName, qualifiedIdent } from '../config/identifiers.js';
import type { Config, QualifiedName, TargetConfig } from '../config/types.js';
import { ConfigError } from '../failure/errors.js';
import { windowQuery, type ReadTable } from '../log/window.js';

export interface TablePlan {
  relid: number;
  source: QualifiedName;
  target: QualifiedName;
  /** Display names, for logs and metrics. */
  sourceName: string;
  targetName: string;
  /** Columns written on insert: the selected ones, less what the target generates itself. */
  columns: string[];
  /** The source's primary key; deletes go by it. */
  key: string[];
  /** The source's json and jsonb columns: cut out of row images before json_populate_record sees them. */
  imageJsonColumns: string[];
  /** Those of `columns` that are json or jsonb in the image, with their target type: passed as they are. */
  jsonColumns: { name: string; type: string }[];
}

/** The source's captured tables as described, by display name. */
export type SourceTables = Map<string, TableInfo & { name: QualifiedName }>;

export interface TargetPlan {
  target: string;
  tables: Map<number, TablePlan>;
  readQuery: string;
  /** What the plan leaves out on purpose and an operator should hear of: nullable columns the target lacks. */
  warnings: string[];
}

/**
 * The row filter, evaluated over the row image typed as the source table. json_populate_record cannot
 * de-escape `\u0000` (a json column may hold it), so for tables with json columns the filter sees it
 * as U+2400 (␀); the image itself is never changed.
 */
function filterExpression(source: QualifiedName, columns: ColumnInfo[], where: string): string {
  const row =
    jsonColumnsOf(columns).length === 0 ? 'c.row' : `replace(c.row::text, '\\u0000', '\\u2400')::json`;
  return `(select (${where}) from json_populate_record(null::${qualifiedIdent(source)}, ${row}) as t)`;
}

/** json and jsonb columns: their SQL NULL and JSON null look alike in a row image, and json's \u0000 too. */
function jsonColumnsOf(columns: readonly ColumnInfo[]): string[] {
  return columns.filter((c) => c.type === 'json' || c.type === 'jsonb').map((c) => c.name);
}

/** Describe every source table of the config; problems name the table. */
export async function describeSourceTables(
  source: pg.ClientBase,
  config: Config,
): Promise<{ tables: SourceTables; problems: string[] }> {
  const tables: SourceTables = new Map();
  const problems: string[] = [];
  for (const name of config.tables) {
    const info = await describeTable(source, name);
    const display = formatQualifiedName(name);
    if (info === undefined) {
      problems.push(`tables: ${display} does not exist on the source`);
    } else if (info.primaryKey.length === 0) {
      problems.push(`tables: ${display} has no primary key; trigsync needs one to apply updates and deletes`);
    } else {
      tables.set(display, { ...info, name });
    }
  }
  return { tables, problems };
}

/** Build a target's plan against its server; throws one ConfigError listing every problem. */
export async function buildTargetPlan(
  config: Config,
  target: TargetConfig,
  sourceTables: SourceTables,
  targetClient: pg.ClientBase,
): Promise<TargetPlan> {
  const problems: string[] = [];
  const warnings: string[] = [];
  const tables = new Map<number, TablePlan>();
  for (const mapping of target.tables) {
    const sourceName = formatQualifiedName(mapping.source);
    const targetName = formatQualifiedName(mapping.target);
    const where = `targets.${target.name}: ${sourceName} -> ${targetName}`;
    const source = sourceTables.get(sourceName);
    if (source === undefined) continue; // reported once for the source
    const info = await describeTable(targetClient, mapping.target);
    if (info === undefined) {
      problems.push(`${where}: table ${targetName} does not exist on target ${target.name}`);
      continue;
    }
    const sourceColumns = source.columns.filter((c) => !c.generated).map((c) => c.name);
    const selected = mapping.columns ?? sourceColumns;
    for (const column of selected) {
      if (!source.columns.some((c) => c.name === column)) {
        problems.push(`${where}: column ${column} does not exist on the source table`);
      }
    }
    for (const key of source.primaryKey) {
      if (!selected.includes(key))
        problems.push(`${where}: columns must include the primary key column ${key}`);
    }
    const targetColumns = new Map(info.columns.map((c) => [c.name, c]));
    const missing = selected.filter((c) => !targetColumns.has(c));
    // A nullable column that the config does not name, missing on the target (typically just added on
    // the source): the target can do without its values, so it is skipped with a warning. Anything else
    // missing would drop values the target needs: the target is refused until it has the column.
    const skippable = missing.filter(
      (c) =>
        mapping.columns === undefined &&
        !source.primaryKey.includes(c) &&
        source.columns.some((s) => s.name === c && !s.notNull),
    );
    const refused = missing.filter((c) => !skippable.includes(c));
    if (refused.length > 0) {
      problems.push(
        `${where}: target table lacks column(s) ${refused.join(', ')}; ` +
          'add them to the target table, or list the columns to replicate in the config',
      );
    }
    if (skippable.length > 0) {
      warnings.push(
        `${where}: target table lacks nullable column(s) ${skippable.join(', ')} of the source; ` +
          'their values are not replicated until it has them (then run sync for this table)',
      );
    }
    tables.set(source.relid, {
      relid: source.relid,
      source: mapping.source,
      target: mapping.target,
      sourceName,
      targetName,
      columns: selected.filter((c) => targetColumns.get(c)?.generated === false),
      key: source.primaryKey,
      imageJsonColumns: jsonColumnsOf(source.columns),
      jsonColumns: jsonColumnsOf(source.columns)
        .filter((c) => selected.includes(c) && targetColumns.get(c)?.generated === false)
        .map((name) => ({ name, type: targetColumns.get(name)!.type })),
    });
  }
  if (problems.length > 0) throw new ConfigError(problems);
  const readTables: ReadTable[] = [...tables.values()].map((t) => {
    const mapping = target.tables.find((m) => formatQualifiedName(m.source) === t.sourceName);
    return {
      relid: t.relid,
      filterExpression:
        mapping?.where === undefined
          ? undefined
          : filterExpression(t.source, sourceTables.get(t.sourceName)!.columns, mapping.where),
    };
  });
  return { target: target.name, tables, readQuery: windowQuery(config.schema, readTables), warnings };
}
