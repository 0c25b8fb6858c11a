/**
 * The SQL a worker runs on a target, one operation per function. Rows travel as one JSON array
 * parameter and are typed by the target table itself (json_populate_recordset), never string-built.
 */
import type pg from 'pg';

import { ident, qualifiedIdent } from '../config/identifiers.js';
import type { RowImages } from './batch.js';
import { imageBase, type TablePlan } from './plan.js';

/** The JSON array text of JSON value texts: no parsing, no re-encoding. */
export function jsonArray(items: readonly string[]): string {
  return `[${items.join(',')}]`;
}

/**
 * Row images typed as the target table: a FROM clause (alias `p`, numbered by `p.ordinality`) and the
 * expression of each written column. The images are parameter `rowsParam`, their json columns the
 * text arrays from `jsonParam` on, zipped with the rows by position (a text cast to json keeps it byte
 * for byte).
 */
function typedImages(
  table: TablePlan,
  rowsParam: number,
  jsonParam: number,
): { from: string; columns: string[] } {
  const populate = `json_populate_recordset(${imageBase(table.target, table.missingValues)}, $${rowsParam}::json) with ordinality as p`;
  const joins = table.jsonColumns.map(
    (_, i) =>
      `join unnest($${jsonParam + i}::text[]) with ordinality as j${i}(value, n) on j${i}.n = p.ordinality`,
  );
  const columns = table.columns.map((c) => {
    const i = table.jsonColumns.findIndex((j) => j.name === c);
    return i < 0 ? `p.${ident(c)}` : `j${i}.value::${table.jsonColumns[i]!.type}`;
  });
  return { from: [populate, ...joins].join(' '), columns };
}

export function imageParams(images: RowImages): unknown[] {
  return [jsonArray(images.rows), ...images.json];
}

/** The text of a row of the written columns: what two rows are compared by (any type has a text). */
function rowText(expressions: readonly string[]): string {
  return `row(${expressions.join(', ')})::text`;
}

/**
 * A CTE `name (n, c1, c2, ...)` of images typed as the target table, numbered from 1; its columns are
 * named by position, so no user column name can collide. Parameters from `param` on (imageParams).
 */
export function imagesCte(table: TablePlan, name: string, param: number, materialized = true): string {
  const typed = typedImages(table, param, param + 1);
  const columns = table.columns.map((_, i) => `c${i + 1}`);
  return `${name} (n, ${columns.join(', ')}) as ${materialized ? '' : 'not '}materialized (
     select p.ordinality, ${typed.columns.join(', ')} from ${typed.from})`;
}

/** How many parameters an image set takes: the rows and one text array per json column. */
function paramCount(table: TablePlan): number {
  return 1 + table.jsonColumns.length;
}

/** `alias`'s columns (c1, ..., or `prefix`1, ...) in plan order. */
export function positional(table: TablePlan, alias: string, prefix = 'c'): string[] {
  return table.columns.map((_, i) => `${alias}.${prefix}${i + 1}`);
}

/** The target's row `t` has the key of image `alias` (a CTE of imagesCte; its columns `prefix`1, ...). */
function keyMatch(table: TablePlan, alias: string, prefix = 'c'): string {
  return table.key
    .map((k) => `t.${ident(k)} = ${alias}.${prefix}${table.columns.indexOf(k) + 1}`)
    .join(' and ');
}

/**
 * The row `values` (the target's, column by column) holds in each column either the old row's value
 * (`olds`) or the new row's (`news`), compared as texts in the target's types: a row on its way from the
 * one to the other. The target's own ON UPDATE CASCADE leaves a child so: its key moved with its
 * parent's, without what else the source's change wrote (a last_update its trigger set). Not a conflict:
 * nothing but the change's own values is there, and the change brings the rest.
 */
function onTheWay(values: readonly string[], olds: readonly string[], news: readonly string[]): string {
  return values
    .map((v, i) => {
      const value = `${v}::text`;
      return `(${value} is not distinct from ${olds[i]}::text or ${value} is not distinct from ${news[i]}::text)`;
    })
    .join(' and ');
}

/**
 * For a one-column key, `t`'s key is among `alias`'s: the planner then reads the target's rows in one
 * index scan over the sorted keys (ScalarArrayOp) rather than one probe per key, 10% of a bulk apply.
 */
function anyKey(table: TablePlan, alias: string): string {
  if (!table.keyScan) return 'true';
  const key = table.key[0]!;
  return `t.${ident(key)} = any (array(select ${alias}.c${table.columns.indexOf(key) + 1} from ${alias}))`;
}

function targetRowText(table: TablePlan): string {
  return rowText(table.columns.map((c) => `t.${ident(c)}`));
}

/**
 * A key whose target row was not as its change expects: its 1-based position in the step, whether a row
 * was found, and whether the change expects one before it. A row that is already the very row the change
 * brings (a writer on each side did the same) is not reported. Rows are compared on the target, as texts
 * in its own types: they never travel back, however large.
 */
export interface KeyMismatch {
  n: number;
  found: boolean;
  expected: boolean;
}

/** A statement to run as it is or in a pipeline (src/db/pipeline.ts). */
export type Statement = pg.QueryConfig<unknown[]>;

/** The SQLSTATE of apply_conflicts_found (sql/target/004): a guarded statement found mismatches. */
export const mismatchesFoundCode = 'TS001';

/**
 * How a statement that writes a step reports its mismatches: as rows (`report`), or, `guarded` by
 * trigsync's schema on the target, by failing with mismatchesFoundCode when there is any, so that the
 * statements after it in a pipelined transaction need not wait for its answer.
 */
export type MismatchReport = { report: true } | { guarded: string };

export const reportMismatches: MismatchReport = { report: true };

/** The statement of the CTEs `ctes` and the select of mismatches `select`, reported as `how` says. */
function mismatchStatement(
  ctes: readonly string[],
  select: string,
  values: unknown[],
  how: MismatchReport,
): Statement {
  const text =
    'report' in how
      ? `with ${ctes.join(',\n     ')}\n     ${select}`
      : `with ${ctes.join(',\n     ')},\n     mismatch as (${select})
     select ${ident(how.guarded)}.apply_conflicts_found(count(*)) from mismatch`;
  return { text, values };
}

/** Run a statement that reports key mismatches; none to run: none found. */
export async function runMismatches(
  client: pg.ClientBase,
  statement: Statement | undefined,
): Promise<KeyMismatch[]> {
  if (statement === undefined) return [];
  return (await client.query<KeyMismatch>(statement)).rows;
}

/** Insert the images whose key is free; it reports the keys that held another row. None: nothing to run. */
export function insertStatement(
  table: TablePlan,
  images: RowImages,
  how: MismatchReport = reportMismatches,
): Statement | undefined {
  if (images.rows.length === 0) return undefined;
  const target = qualifiedIdent(table.target);
  return mismatchStatement(
    [
      imagesCte(table, 'a', 1),
      `found as materialized (select a.n, ${targetRowText(table)} as image from a join ${ownRowsOf(table)} t on ${keyMatch(table, 'a')}
                             where ${anyKey(table, 'a')})`,
      `ins as (insert into ${target} (${table.columns.map(ident).join(', ')}) overriding system value
             select ${positional(table, 'a').join(', ')} from a where a.n not in (select f.n from found f))`,
    ],
    `select f.n::int4 as n, true as found, false as expected
       from found f join a on a.n = f.n
      where f.image is distinct from ${rowText(positional(table, 'a'))}`,
    imageParams(images),
    how,
  );
}

export function insertRows(
  client: pg.ClientBase,
  table: TablePlan,
  images: RowImages,
): Promise<KeyMismatch[]> {
  return runMismatches(client, insertStatement(table, images));
}

/**
 * The CTE `ba`: each old row image (c1, ...) beside its new one (d1, ...), by position; parameters
 * imageParams(before) then imageParams(after). The two image sets are read once, by `ba`: not kept apart.
 */
function pairedImages(table: TablePlan): string[] {
  return [
    imagesCte(table, 'b', 1, false),
    imagesCte(table, 'a', 1 + paramCount(table), false),
    `ba as materialized (select b.*, ${positional(table, 'a')
      .map((c, i) => `${c} as d${i + 1}`)
      .join(', ')}
                          from b join a on a.n = b.n)`,
  ];
}

/** An UPDATE's SET list: each written column from `alias`'s new row (d1, ...); the key only where `moving`. */
function assignments(table: TablePlan, moving: boolean, alias: string): string[] {
  return table.columns
    .map((c, i) => ({ c, i }))
    .filter(({ c }) => (moving || !table.key.includes(c)) && !table.identityAlways.includes(c))
    .map(({ c, i }) => `${ident(c)} = ${alias}.d${i + 1}`);
}

/**
 * Update rows in place: the row under each key of `before` becomes `after` (aligned images); `moving`
 * also writes the key (a row whose key changed), else only the other columns. It reports the keys whose
 * row was not `before`, except those whose row was on its way to `after` (onTheWay; `after` itself: the
 * target's own ON UPDATE CASCADE did what the source's did, or another node).
 */
export function updateStatement(
  table: TablePlan,
  before: RowImages,
  after: RowImages,
  moving: boolean,
  how: MismatchReport = reportMismatches,
): Statement | undefined {
  if (before.rows.length === 0) return undefined;
  const target = ownRowsOf(table);
  const written = assignments(table, moving, 'cur');
  // Each image with its row now, found by key: the update and the report read it, and join nothing by
  // position. The planner takes the images for 100 rows and the keys' index scan for 10: where a step's
  // statement joined them by position besides, it chose a nested loop, and 5,000 updates took 5 s on
  // PostgreSQL 15 (25 million comparisons), 17 ms as here.
  const ctes = [
    ...pairedImages(table),
    `cur as materialized (select ba.*, t.ctid is not null as found, ${table.columns
      .map((c, i) => `t.${ident(c)} as t${i + 1}`)
      .join(', ')}
                            from ba left join ${target} t on ${keyMatch(table, 'ba')} and ${anyKey(table, 'ba')})`,
  ];
  if (written.length > 0) {
    ctes.push(`upd as (update ${target} t set ${written.join(', ')} from cur
                    where cur.found and ${keyMatch(table, 'cur')} and ${anyKey(table, 'cur')})`);
  }
  const found = positional(table, 'cur', 't');
  return mismatchStatement(
    ctes,
    `select cur.n::int4 as n, cur.found, true as expected
       from cur
      where (not cur.found or ${rowText(found)} is distinct from ${rowText(positional(table, 'cur'))})
        and not (cur.found and ${onTheWay(found, positional(table, 'cur'), positional(table, 'cur', 'd'))})`,
    [...imageParams(before), ...imageParams(after)],
    how,
  );
}

/**
 * Of changes whose row the target's own ON UPDATE CASCADE may have moved to their new key (a move that
 * found its old key missing; an insert whose row came from another key of the batch): those whose new
 * key holds a row on its way from `before` to `after` (onTheWay) become `after`. Returns their 1-based
 * positions; the others are left as they are.
 */
export async function settleMovedRows(
  client: pg.ClientBase,
  table: TablePlan,
  before: RowImages,
  after: RowImages,
): Promise<number[]> {
  if (before.rows.length === 0) return [];
  const target = ownRowsOf(table);
  const written = assignments(table, false, 'way');
  const ctes = [
    ...pairedImages(table),
    `way as materialized (select ba.* from ba join ${target} t on ${keyMatch(table, 'ba', 'd')}
                           where ${onTheWay(
                             table.columns.map((c) => `t.${ident(c)}`),
                             positional(table, 'ba'),
                             positional(table, 'ba', 'd'),
                           )})`,
  ];
  if (written.length > 0) {
    ctes.push(
      `upd as (update ${target} t set ${written.join(', ')} from way where ${keyMatch(table, 'way', 'd')})`,
    );
  }
  const settled = await client.query<{ n: number }>({
    text: `with ${ctes.join(',\n')} select way.n::int4 as n from way`,
    values: [...imageParams(before), ...imageParams(after)],
  });
  return settled.rows.map((r) => r.n);
}

export function updateRows(
  client: pg.ClientBase,
  table: TablePlan,
  before: RowImages,
  after: RowImages,
  moving: boolean,
): Promise<KeyMismatch[]> {
  return runMismatches(client, updateStatement(table, before, after, moving));
}

/**
 * Delete the row under each key of `expected`, each key expecting its old row there, and report those
 * whose row was not: those images alone, parsed once (parsing the keys apart besides was a quarter of a
 * bulk delete's time on the target: 2,048 rows, 13 ms where 9.7). `last`, where given, is each key's
 * row as the batch last had it before the delete (changed since `expected` in the same batch): a row
 * on its way between the two (onTheWay: the target's own cascade wrote some of those changes) is no
 * conflict either.
 */
export function deleteExpectedStatement(
  table: TablePlan,
  expected: RowImages,
  last: RowImages | undefined,
  how: MismatchReport = reportMismatches,
): Statement | undefined {
  if (expected.rows.length === 0) return undefined;
  const target = ownRowsOf(table);
  const using = `delete from ${target} t using e where ${keyMatch(table, 'e')} and ${anyKey(table, 'e')}`;
  const old = positional(table, 'e');
  if (last === undefined) {
    return mismatchStatement(
      [imagesCte(table, 'e', 1), `gone (n, image) as (${using} returning e.n, ${targetRowText(table)})`],
      `select e.n::int4 as n, g.image is not null as found, true as expected
         from e left join gone g on g.n = e.n
        where g.image is distinct from ${rowText(old)}`,
      imageParams(expected),
      how,
    );
  }
  const found = positional(table, 'g', 'g');
  return mismatchStatement(
    [
      imagesCte(table, 'e', 1),
      imagesCte(table, 'l', 1 + paramCount(table)),
      `gone (n, ${found.map((_, i) => `g${i + 1}`).join(', ')}) as (${using}
                           returning e.n, ${table.columns.map((c) => `t.${ident(c)}`).join(', ')})`,
    ],
    `select e.n::int4 as n, g.n is not null as found, true as expected
       from e join l on l.n = e.n left join gone g on g.n = e.n
      where g.n is null
         or (${rowText(found)} is distinct from ${rowText(old)}
             and not ${onTheWay(found, old, positional(table, 'l'))})`,
    [...imageParams(expected), ...imageParams(last)],
    how,
  );
}

/**
 * Delete the row under each key of `keys` (images holding at least the key), and compare it with the
 * row expected there: `expected` holds the images of the keys at 1-based positions `expectedAt`; the
 * other keys expect no row. It reports the keys whose row was not as expected. Where every key expects
 * its old row, deleteExpectedStatement reads those images alone.
 */
export function deleteStatement(
  table: TablePlan,
  keys: RowImages,
  expected: RowImages,
  expectedAt: number[],
  how: MismatchReport = reportMismatches,
): Statement | undefined {
  if (keys.rows.length === 0) return undefined;
  const target = ownRowsOf(table);
  const count = paramCount(table);
  return mismatchStatement(
    [
      imagesCte(table, 'k', 1),
      imagesCte(table, 'e', 1 + count),
      `at (n, i) as (select a.n, a.i from unnest($${1 + 2 * count}::int4[]) with ordinality as a(n, i))`,
      `gone (n, image) as (delete from ${target} t using k where ${keyMatch(table, 'k')} and ${anyKey(table, 'k')}
                         returning k.n, ${targetRowText(table)})`,
      `want (n, image) as (select at.n, ${rowText(positional(table, 'e'))} from e join at on at.i = e.n)`,
    ],
    `select k.n::int4 as n, g.image is not null as found, w.image is not null as expected
       from k left join gone g on g.n = k.n left join want w on w.n = k.n
      where g.image is distinct from w.image`,
    [...imageParams(keys), ...imageParams(expected), expectedAt],
    how,
  );
}

export function deleteRows(
  client: pg.ClientBase,
  table: TablePlan,
  keys: RowImages,
  expected: RowImages,
  expectedAt: number[],
): Promise<KeyMismatch[]> {
  return runMismatches(client, deleteStatement(table, keys, expected, expectedAt));
}

/**
 * The target table's own rows: ONLY, so that a statement leaves the tables that inherit from it alone
 * (the source logs each row as the table it is in: sql/source/017); a partitioned table's rows are its
 * partitions', which ONLY would leave out.
 */
export function ownRowsOf(table: TablePlan): string {
  return `${table.partitioned ? '' : 'only '}${qualifiedIdent(table.target)}`;
}

/**
 * TRUNCATE tables together (a partitioned table with its partitions, any other alone: ONLY), then delete
 * the rows of partitions truncated alone, by their source bounds, from their tables.
 */
export function truncateStatements(
  tables: readonly TablePlan[],
  partitions: readonly { table: TablePlan; where: string }[],
): Statement[] {
  const statements: Statement[] = [];
  if (tables.length > 0) {
    statements.push({ text: `truncate ${tables.map(ownRowsOf).join(', ')}` });
  }
  for (const { table, where } of partitions) {
    statements.push({ text: `delete from ${ownRowsOf(table)} where ${where}` });
  }
  return statements;
}
