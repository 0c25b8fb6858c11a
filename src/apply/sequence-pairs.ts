/**
 * Which sequences a target's sequences are kept from (src/apply/sequences.ts keeps them): each sequence
 * a captured table owns, carried to the one the mapped target table owns in the column of the same name,
 * unless the target captures that table itself; then each sequence the config lists.
 */
import type pg from 'pg';

import { formatQualifiedName, ident, qualifiedIdent } from '../config/identifiers.js';
import type { QualifiedName, SequenceMapping } from '../config/types.js';
import type { TargetPlan } from './plan.js';
import { relationExists } from '../db/relation-exists.js';

export interface SequencePair {
  source: QualifiedName;
  /** Undefined when the target has no sequence to carry to (see `problem`). */
  target: QualifiedName | undefined;
  /** Owned by a captured table and not listed: not carried to a target that captures that table. */
  owned: boolean;
  /** Found when resolving, such as a target column without a sequence of its own. */
  problem: string | undefined;
}

/** The owned sequences of tables (SQL text for to_regclass), in one column each when `column` is given. */
async function ownedSequences(
  client: pg.ClientBase,
  tables: readonly { table: string; column: string | null }[],
): Promise<{ i: number; column: string; sequence: QualifiedName }[]> {
  // Tables without sequences cost no round trip (to a target across a slow link, between two batches).
  if (tables.length === 0) return [];
  const result = await client.query<{ i: string; column: string; schema: string; name: string }>(
    `select t.i, a.attname as column, n.nspname as schema, c.relname as name
       from unnest($1::text[], $2::text[]) with ordinality as t (tbl, col, i)
       join pg_depend d on d.classid = 'pg_class'::regclass and d.refclassid = 'pg_class'::regclass
                       and d.refobjid = to_regclass(t.tbl) and d.deptype in ('a', 'i')
       join pg_class c on c.oid = d.objid and c.relkind = 'S'
       join pg_namespace n on n.oid = c.relnamespace
       join pg_attribute a on a.attrelid = d.refobjid and a.attnum = d.refobjsubid
      where t.col is null or a.attname = t.col
      order by t.i, a.attnum`,
    [tables.map((t) => t.table), tables.map((t) => t.column)],
  );
  return result.rows.map((r) => ({
    i: Number(r.i) - 1,
    column: r.column,
    sequence: { schema: r.schema, name: r.name },
  }));
}

/** The target tables (by SQL text) that the target database captures itself, as a trigsync source. */
async function capturedOnTarget(
  target: pg.ClientBase,
  schema: string,
  tables: readonly string[],
): Promise<Set<string>> {
  if (tables.length === 0) return new Set();
  const registry = `${ident(schema)}.captured_table`;
  const found = await relationExists(target, registry);
  if (!found) return new Set();
  const captured = await target.query<{ tbl: string }>(
    `select t.tbl from unnest($1::text[]) as t (tbl) where to_regclass(t.tbl)::oid in (select relid from ${registry})`,
    [tables],
  );
  return new Set(captured.rows.map((r) => r.tbl));
}

/** What is carried to a target: the owned sequences of its tables, then the listed ones. */
export async function resolveSequences(
  source: pg.ClientBase,
  target: pg.ClientBase,
  schema: string,
  plan: TargetPlan,
  listed: readonly SequenceMapping[],
): Promise<SequencePair[]> {
  const tables = [...plan.tables.values()];
  const owned = await ownedSequences(
    source,
    tables.map((t) => ({ table: qualifiedIdent(t.source), column: null })),
  );
  const replicated = owned.filter((o) => tables[o.i]!.columns.includes(o.column));
  const onTarget = await ownedSequences(
    target,
    replicated.map((o) => ({ table: qualifiedIdent(tables[o.i]!.target), column: o.column })),
  );
  const captured = await capturedOnTarget(
    target,
    schema,
    replicated.map((o) => qualifiedIdent(tables[o.i]!.target)),
  );
  const pairs: SequencePair[] = [];
  replicated.forEach((o, i) => {
    const table = tables[o.i]!;
    if (captured.has(qualifiedIdent(table.target))) return;
    const to = onTarget.find((t) => t.i === i)?.sequence;
    const problem =
      to === undefined
        ? `target column ${table.targetName}.${o.column} has no sequence of its own (serial or identity)`
        : undefined;
    pairs.push({ source: o.sequence, target: to, owned: true, problem });
  });
  for (const entry of listed) {
    const name = formatQualifiedName(entry.source);
    const ownedPair = pairs.findIndex((p) => formatQualifiedName(p.source) === name);
    // A listed sequence is carried even to a target that captures its table (a mesh).
    const asOwned = replicated.findIndex((o) => formatQualifiedName(o.sequence) === name);
    const target =
      entry.target ??
      (ownedPair >= 0 ? pairs[ownedPair]!.target : undefined) ??
      (asOwned >= 0 ? onTarget.find((t) => t.i === asOwned)?.sequence : undefined) ??
      entry.source;
    const pair = { source: entry.source, target, owned: false, problem: undefined };
    if (ownedPair >= 0) pairs[ownedPair] = pair;
    else pairs.push(pair);
  }
  return pairs;
}
