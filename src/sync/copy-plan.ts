/**
 * How a copy (src/sync/copy-tables.ts) empties and fills a set of target tables so that the target's own
 * foreign keys hold, without superuser. Tables that nothing outside the set references are emptied
 * together by one TRUNCATE, which a foreign key allows only when every referencing table is in the same
 * statement. A table that a table outside the set references (or that a merged table references) is
 * merged instead: the target rows the source lacks are deleted, differing rows updated, missing rows
 * inserted, so that the children the copy does not take keep their parents and ON DELETE CASCADE takes
 * nothing the source still has. Filling goes parents first, deleting children first.
 */
import type { ForeignKeyInto } from '../capture/catalog.js';
import { ident, qualifiedIdent } from '../config/identifiers.js';
import type { TablePlan } from '../apply/plan.js';
import { ownRowsOf } from '../apply/statements.js';

export interface CopyPlan {
  /** Emptied together by one TRUNCATE, then filled by COPY. */
  truncated: TablePlan[];
  /** Merged, by source relid, with the reason (for the log). */
  merged: Map<number, string>;
  /** Every table, parents first by the target's foreign keys (the plan's rank). */
  order: TablePlan[];
}

/** `references`: every foreign key into one of `tables` on the target (catalog.ts referencesInto). */
export function planCopy(tables: readonly TablePlan[], references: readonly ForeignKeyInto[]): CopyPlan {
  const byTarget = new Map(tables.map((t) => [t.targetRelid, t]));
  const merged = new Map<number, string>(); // target relid → why
  for (const fk of references) {
    if (fk.child === fk.parent || byTarget.has(fk.child) || merged.has(fk.parent)) continue;
    merged.set(
      fk.parent,
      `referenced by ${fk.childName} (foreign key ${fk.constraint}), which this copy does not take`,
    );
  }
  // TRUNCATE refuses a table whose referencing table it does not empty too: a merged child's parents merge.
  for (let grew = true; grew;) {
    grew = false;
    for (const fk of references) {
      if (fk.child === fk.parent || !merged.has(fk.child) || merged.has(fk.parent)) continue;
      const child = byTarget.get(fk.child)!;
      merged.set(
        fk.parent,
        `referenced by ${child.targetName} (foreign key ${fk.constraint}), which this copy merges`,
      );
      grew = true;
    }
  }
  const order = [...tables].sort((a, b) => a.rank - b.rank);
  return {
    truncated: order.filter((t) => !merged.has(t.targetRelid)),
    merged: new Map(
      order.filter((t) => merged.has(t.targetRelid)).map((t) => [t.relid, merged.get(t.targetRelid)!]),
    ),
    order,
  };
}

/** One TRUNCATE of the tables; a partitioned table with its partitions, any other one alone. */
export function truncateStatement(tables: readonly TablePlan[]): string {
  return `truncate ${tables.map(ownRowsOf).join(', ')}`;
}

/**
 * The statements that merge a table from its stage (a table in trigsync's target schema that holds the
 * source's rows of the copy). Rows are matched by the replica key and compared by their text, which
 * every type has (json and point have no equality).
 */
export function mergeStatements(
  table: TablePlan,
  schema: string,
): {
  stage: string;
  createStage: string;
  indexStage: string;
  deleteExtra: string;
  updateDifferent: string | undefined;
  insertMissing: string;
} {
  const target = qualifiedIdent(table.target);
  const own = ownRowsOf(table);
  const stage = `${ident(schema)}.${ident(`copy_${table.relid}`)}`;
  const columns = table.columns.map(ident);
  const key = table.key.map(ident);
  // An UPDATE cannot write a column GENERATED ALWAYS AS IDENTITY (TablePlan.identityAlways).
  const others = table.columns
    .filter((c) => !table.key.includes(c) && !table.identityAlways.includes(c))
    .map(ident);
  const match = key.map((k) => `t.${k} = s.${k}`).join(' and ');
  const updateDifferent =
    others.length === 0
      ? undefined
      : `update ${own} t set (${others.join(', ')}) = row(${others.map((c) => `s.${c}`).join(', ')})
           from ${stage} s
          where ${match} and row(${others.map((c) => `t.${c}`).join(', ')})::text
                is distinct from row(${others.map((c) => `s.${c}`).join(', ')})::text`;
  return {
    stage,
    // Unlogged, and dropped in the copy's own transaction: nothing of it outlives the copy.
    createStage: `create unlogged table ${stage} as select ${columns.join(', ')} from ${target} with no data`,
    indexStage: `create index on ${stage} (${key.join(', ')}); analyze ${stage}`,
    deleteExtra: `delete from ${own} t where not exists (select from ${stage} s where ${match})`,
    updateDifferent,
    insertMissing: `insert into ${target} (${columns.join(', ')}) overriding system value
       select ${columns.map((c) => `s.${c}`).join(', ')} from ${stage} s
        where not exists (select from ${own} t where ${match})`,
  };
}
