/**
 * A target's plan: for each captured table it takes, the target table, the columns written, the key,
 * and the read query that selects its changes. Built from the config and both servers' catalogs;
 * every mismatch is reported by name.
 */
import type pg from 'pg';

import { describeTables, foreignKeyEdges, isJsonColumn, type ColumnInfo } from '../capture/catalog.js';
import type { Renames } from '../capture/renamed-columns.js';
import type { SourceTables } from '../capture/source-tables.js';
import {
  formatIdentifier,
  formatQualifiedName,
  ident,
  qualifiedIdent,
  sqlLiteral,
} from '../config/identifiers.js';
import type { Config, QualifiedName, TargetConfig } from '../config/types.js';
import { sendPipelined } from '../db/pipeline.js';
import { ConfigError } from '../failure/errors.js';
import { windowQuery, type ReadTable } from '../changelog/window.js';
import { tableFit } from './table-fit.js';

export interface TablePlan {
  relid: number;
  /** Columns renamed on the source whose former names images captured before may hold. */
  renamed?: Renames;
  source: QualifiedName;
  target: QualifiedName;
  /** Display names, for logs and metrics. */
  sourceName: string;
  targetName: string;
  /** Columns written on insert: the selected ones, less what the target generates itself. */
  columns: string[];
  /**
   * Of `columns`, those GENERATED ALWAYS AS IDENTITY on the target: inserts write them (OVERRIDING
   * SYSTEM VALUE), an UPDATE cannot. They are left out of updates in place, and a row whose key is one
   * moves by a delete and an insert.
   */
  identityAlways: string[];
  /** The source's replica key (its primary key, or a unique index over NOT NULL columns): rows are found by it. */
  key: string[];
  /** The source's json and jsonb columns: cut out of row images before json_populate_record sees them. */
  imageJsonColumns: string[];
  /** Those of `columns` that are json or jsonb in the image, with their target type: passed as they are. */
  jsonColumns: { name: string; type: string }[];
  /** A one-column key of a type that `= any(array(...))` compares (not an array): see statements.ts. */
  keyScan: boolean;
  /** The target table's oid on the target. */
  targetRelid: number;
  /** The target table is partitioned: TRUNCATE takes its partitions too. */
  partitioned: boolean;
  /**
   * On the source it inherits or is inherited from (TableInfo.inherits): the initial copy and `verify`
   * read its own rows (ONLY), as its capture logs them (sql/source/017).
   */
  inherits: boolean;
  /**
   * Of the written columns, those added to the source table after some of its rows (ColumnInfo.missing):
   * the value those rows hold, as text. A row image captured before the column was added lacks it and
   * stands for this value, not for NULL. json columns are not among them: their images are cut apart.
   */
  missingValues: ReadonlyMap<string, string>;
  /**
   * Rows may go in by COPY (src/apply/copy-in.ts), which writes what json_populate_recordset would: the
   * target has no rules (which COPY ignores), and no json column on either side (taken as JSON, not text).
   */
  copyable: boolean;
  /**
   * A run of its inserts may go from the source's log to the target by COPY without the daemon reading
   * the rows (src/apply/copy-through.ts): copyable, no row filter, and every written column one that a
   * row image holds as a JSON string, number or boolean (not an array, composite or json value).
   */
  copyThrough: boolean;
  /**
   * Two keys that differ in their row images' text may be one key to the target (looseEquality of a
   * key column on either side: 'Bob' and 'bob' under a case-insensitive collation, say): a batch then
   * never lets such a table's new keys go in before the keys removed ahead of them go (src/apply/batch.ts).
   */
  looseKey: boolean;
  /**
   * Place in the target's foreign-key order: a table referenced by another comes first (src/apply/batch.ts
   * writes parents first and deletes children first). Tables in a cycle keep the config's order.
   */
  rank: number;
}

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
 * as U+2400 (␀); the image itself is never changed. An image holds NULL for a virtual generated column
 * (PostgreSQL 18), which a filter reads on the source table as its expression's value: the filter
 * sees the expression computed from the image's other columns, as a copy's filter on the table does.
 */
function filterOf(source: QualifiedName, columns: ColumnInfo[], where: string): (image: string) => string {
  const base = imageBase(
    source,
    missingValuesOf(
      columns,
      columns.map((c) => c.name),
    ),
  );
  return (image) => {
    const row =
      jsonColumnsOf(columns).length === 0 ? image : `replace(${image}::text, '\\u0000', '\\u2400')::json`;
    const typed = `json_populate_record(${base}, ${row}) as t`;
    if (!columns.some((c) => c.virtualExpression !== null)) return `(select (${where}) from ${typed})`;
    // The expression names the table's columns unqualified, and `t` holds every one of them.
    const computed = columns
      .map((c) =>
        c.virtualExpression === null
          ? `t.${ident(c.name)}`
          : `(${c.virtualExpression})::${c.type} as ${ident(c.name)}`,
      )
      .join(', ');
    return `(select (${where}) from (select ${computed} from ${typed}) as t)`;
  };
}

/**
 * The record json_populate_record(set) fills the columns an image lacks from, typed as `relation`: NULL,
 * or the values of columns added since the image was captured (TablePlan.missingValues).
 */
export function imageBase(relation: QualifiedName, missing: ReadonlyMap<string, string>): string {
  const type = qualifiedIdent(relation);
  if (missing.size === 0) return `null::${type}`;
  return `json_populate_record(null::${type}, ${sqlLiteral(JSON.stringify(Object.fromEntries(missing)))}::json)`;
}

/** The missing values (ColumnInfo.missing) of the columns `written`, json columns aside. */
function missingValuesOf(columns: readonly ColumnInfo[], written: readonly string[]): Map<string, string> {
  return new Map(
    columns
      .filter((c) => c.missing !== null && !c.json && written.includes(c.name))
      .map((c) => [c.name, c.missing!]),
  );
}

/** json and jsonb columns: their SQL NULL and JSON null look alike in a row image, and json's \u0000 too. */
function jsonColumnsOf(columns: readonly ColumnInfo[]): string[] {
  return columns.filter(isJsonColumn).map((c) => c.name);
}

/** to_json() writes the column's values as JSON scalars, or capture writes their text (textForm). */
function scalarInImage(column: ColumnInfo): boolean {
  return column.textForm || !(column.array || column.json || column.composite);
}

/**
 * What a plan reads of the target's catalog: its tables by name and the foreign keys among them, each
 * statement's outcome as answered. Read where the plan is built, or sent ahead (targetCatalogReads).
 */
export interface TargetCatalog {
  names: readonly QualifiedName[];
  described: PromiseSettledResult<unknown>;
  edges: PromiseSettledResult<unknown>;
}

/** The catalog read's two statements on `client`, for one round trip with others (src/db/pipeline.ts). */
export function targetCatalogReads(
  client: pg.ClientBase,
  names: readonly QualifiedName[],
): [Promise<unknown>, Promise<unknown>] {
  return [describeTables(client, names), foreignKeyEdges(client, names)];
}

/** Build a target's plan against its server; throws one ConfigError listing every problem. */
export async function buildTargetPlan(
  config: Config,
  target: TargetConfig,
  sourceTables: SourceTables,
  targetClient: pg.ClientBase,
): Promise<TargetPlan> {
  const names = target.tables.map((m) => m.target);
  const [described, edges] = await sendPipelined<unknown>(targetClient, () =>
    targetCatalogReads(targetClient, names),
  );
  return planFromCatalog(config, target, sourceTables, { names, described: described!, edges: edges! });
}

/**
 * A target's plan from its catalog as read (`catalog`, of `target`'s tables); throws one ConfigError
 * listing every problem.
 */
export function planFromCatalog(
  config: Config,
  target: TargetConfig,
  sourceTables: SourceTables,
  catalog: TargetCatalog,
): TargetPlan {
  const problems: string[] = [];
  const warnings: string[] = [];
  const tables = new Map<number, TablePlan>();
  /** Source relid -> the target table's relid. */
  const targetRelids = new Map<number, number>();
  // The foreign keys' failure is thrown after the config's problems.
  const { described: describing, edges } = catalog;
  if (describing.status === 'rejected') throw describing.reason;
  const described = describing.value as Awaited<ReturnType<typeof describeTables>>;
  for (const [m, mapping] of target.tables.entries()) {
    const sourceName = formatQualifiedName(mapping.source);
    const targetName = formatQualifiedName(mapping.target);
    const where = `targets.${target.name}: ${sourceName} -> ${targetName}`;
    const source = sourceTables.get(sourceName);
    if (source === undefined) continue; // reported once for the source
    const info = described[m];
    if (info === undefined) {
      problems.push(
        `${where}: table ${targetName} does not exist on target ${target.name} (trigsync writes tables, not views or foreign tables)`,
      );
      continue;
    }
    const sourceColumns = source.columns.filter((c) => !c.generated).map((c) => c.name);
    const selected = mapping.columns ?? sourceColumns;
    for (const column of selected) {
      const described = source.columns.find((c) => c.name === column);
      if (described === undefined) {
        problems.push(`${where}: column ${column} does not exist on the source table`);
      } else if (described.virtualExpression !== null) {
        // Its value is in no row image: written, it would arrive as NULL.
        problems.push(
          `${where}: column ${column} is a virtual generated column on the source, whose value trigsync ` +
            'cannot read; leave it out of columns (a target may compute it), or make it STORED',
        );
      }
    }
    for (const key of source.key) {
      if (!selected.includes(key)) problems.push(`${where}: columns must include the key column ${key}`);
    }
    const targetColumns = new Map(info.columns.map((c) => [c.name, c]));
    const missing = selected.filter((c) => !targetColumns.has(c));
    // A nullable column that the config does not name, missing on the target (typically just added on
    // the source): the target can do without its values, so it is skipped with a warning. Anything else
    // missing would drop values the target needs: the target is refused until it has the column.
    // A column renamed on the source that the target still has under a former name is refused too: the
    // target waits for its own rename, after which every change applies with the values (changes
    // captured before the rename are read under the new name, window.ts).
    const renamedFrom = (c: string): string | undefined =>
      source.renamed?.former.find((f, at) => source.renamed!.current[at] === c && targetColumns.has(f));
    const renamed = missing.filter((c) => renamedFrom(c) !== undefined);
    const skippable = missing.filter(
      (c) =>
        mapping.columns === undefined &&
        !source.key.includes(c) &&
        !renamed.includes(c) &&
        source.columns.some((s) => s.name === c && !s.notNull),
    );
    const refused = missing.filter((c) => !skippable.includes(c) && !renamed.includes(c));
    for (const c of renamed) {
      const former = renamedFrom(c)!;
      problems.push(
        `${where}: column ${former} was renamed ${c} on the source; rename it on the target too ` +
          `(ALTER TABLE ${targetName} RENAME COLUMN ${formatIdentifier(former)} TO ${formatIdentifier(c)}): the changes wait, values and all`,
      );
    }
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
    const written = selected.filter((c) => targetColumns.get(c)?.generated === false);
    const fit = tableFit({ where, targetName, source, target: info, selected, written });
    problems.push(...fit.problems);
    warnings.push(...fit.warnings);
    for (const key of source.key) {
      if (targetColumns.get(key)?.generated === true)
        problems.push(`${where}: key column ${key} is generated on the target; trigsync must write it`);
    }
    targetRelids.set(source.relid, info.relid);
    const copyable =
      !info.rules &&
      jsonColumnsOf(source.columns).length === 0 &&
      written.every((c) => targetColumns.get(c)?.json === false);
    tables.set(source.relid, {
      relid: source.relid,
      source: mapping.source,
      target: mapping.target,
      sourceName,
      targetName,
      columns: written,
      identityAlways: written.filter((c) => targetColumns.get(c)?.identityAlways === true),
      key: source.key,
      imageJsonColumns: jsonColumnsOf(source.columns),
      jsonColumns: jsonColumnsOf(source.columns)
        .filter((c) => selected.includes(c) && targetColumns.get(c)?.generated === false)
        .map((name) => ({ name, type: targetColumns.get(name)!.type })),
      keyScan: source.key.length === 1 && targetColumns.get(source.key[0]!)?.array === false,
      looseKey: source.key.some(
        (k) =>
          targetColumns.get(k)?.looseEquality !== false ||
          source.columns.some((c) => c.name === k && c.looseEquality),
      ),
      targetRelid: info.relid,
      partitioned: info.partitioned,
      inherits: source.inherits,
      missingValues: missingValuesOf(source.columns, written),
      copyable,
      copyThrough:
        copyable &&
        mapping.where === undefined &&
        written.every((c) => source.columns.some((s) => s.name === c && scalarInImage(s))),
      rank: 0,
      ...(source.renamed === undefined ? {} : { renamed: source.renamed }),
    });
  }
  if (problems.length > 0) throw new ConfigError(problems);
  if (edges.status === 'rejected') throw edges.reason;
  rankByForeignKeys(edges.value as Awaited<ReturnType<typeof foreignKeyEdges>>, tables, targetRelids);
  const readTables: ReadTable[] = [...tables.values()].map((t) => {
    const mapping = target.tables.find((m) => formatQualifiedName(m.source) === t.sourceName);
    return {
      relid: t.relid,
      ...(t.renamed === undefined ? {} : { renamed: t.renamed }),
      filter:
        mapping?.where === undefined
          ? undefined
          : filterOf(t.source, sourceTables.get(t.sourceName)!.columns, mapping.where),
    };
  });
  return { target: target.name, tables, readQuery: windowQuery(config.schema, readTables), warnings };
}

/**
 * Rank the plan's tables parents first by the target's foreign keys (Kahn's algorithm; ties and cycles
 * in the plan's order).
 */
function rankByForeignKeys(
  edges: readonly { child: number; parent: number }[],
  tables: Map<number, TablePlan>,
  targetRelids: Map<number, number>,
): void {
  const bySourceRelid = new Map([...targetRelids].map(([source, target]) => [target, source]));
  const parents = new Map<number, Set<number>>([...tables.keys()].map((relid) => [relid, new Set()]));
  for (const { child, parent } of edges) {
    const [from, to] = [bySourceRelid.get(child), bySourceRelid.get(parent)];
    // Keys of a table the plan leaves out (missing on the source, reported there) rank nothing.
    if (from !== undefined && to !== undefined) parents.get(from)?.add(to);
  }
  const order: number[] = [];
  const placed = new Set<number>();
  while (placed.size < tables.size) {
    const ready = [...tables.keys()].filter(
      (relid) => !placed.has(relid) && [...parents.get(relid)!].every((p) => placed.has(p)),
    );
    // A cycle: take the first unplaced table as it comes.
    const next = ready.length > 0 ? ready : [[...tables.keys()].find((relid) => !placed.has(relid))!];
    for (const relid of next) {
      order.push(relid);
      placed.add(relid);
    }
  }
  order.forEach((relid, rank) => (tables.get(relid)!.rank = rank));
}
