/**
 * The SQL a worker runs on a target, one operation per function. Rows travel as one JSON array
 * parameter and are typed by the target table itself (json_populate_recordset), never string-built.
 */
import type pg from 'pg';

import { ident, qualifiedIdent } from '../config/identifiers.js';
import { sendPipelined, valuesOrFirstFailure } from '../db/pipeline.js';
import {
  fromStored,
  positionColumns,
  positionValues,
  type Position,
  type StoredPosition,
} from '../changelog/window.js';
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

function imageParams(images: RowImages): unknown[] {
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
function imagesCte(table: TablePlan, name: string, param: number, materialized = true): string {
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
function positional(table: TablePlan, alias: string, prefix = 'c'): string[] {
  return table.columns.map((_, i) => `${alias}.${prefix}${i + 1}`);
}

/** The target's row `t` has the key of image `alias` (a CTE of imagesCte). */
function keyMatch(table: TablePlan, alias: string): string {
  return table.key.map((k) => `t.${ident(k)} = ${alias}.c${table.columns.indexOf(k) + 1}`).join(' and ');
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
 * Update rows in place: the row under each key of `before` becomes `after` (aligned images); `moving`
 * also writes the key (a row whose key changed), else only the other columns. It reports the keys whose
 * row was not `before`, except, when not moving, those whose row already was `after` (the target's own
 * ON UPDATE CASCADE did what the source's did, or another node).
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
  const after_ = positional(table, 'cur', 'd');
  const written = table.columns
    .map((c, i) => ({ c, i }))
    .filter(({ c }) => (moving || !table.key.includes(c)) && !table.identityAlways.includes(c))
    .map(({ c, i }) => `${ident(c)} = ${after_[i]}`);
  // Each image with its row now, found by key: the update and the report read it, and join nothing by
  // position. The planner takes the images for 100 rows and the keys' index scan for 10: where a step's
  // statement joined them by position besides, it chose a nested loop, and 5,000 updates took 5 s on
  // PostgreSQL 15 (25 million comparisons), 17 ms as here.
  const ctes = [
    // Read once, by `ba`: not kept apart.
    imagesCte(table, 'b', 1, false),
    imagesCte(table, 'a', 1 + paramCount(table), false),
    `ba as materialized (select b.*, ${positional(table, 'a')
      .map((c, i) => `${c} as d${i + 1}`)
      .join(', ')}
                          from b join a on a.n = b.n)`,
    `cur as materialized (select ba.*, t.ctid is not null as found,
                                 case when t.ctid is not null then ${targetRowText(table)} end as image
                            from ba left join ${target} t on ${keyMatch(table, 'ba')} and ${anyKey(table, 'ba')})`,
  ];
  if (written.length > 0) {
    ctes.push(`upd as (update ${target} t set ${written.join(', ')} from cur
                    where cur.found and ${keyMatch(table, 'cur')} and ${anyKey(table, 'cur')})`);
  }
  const alreadyAfter = moving ? '' : ` and not (cur.found and cur.image = ${rowText(after_)})`;
  return mismatchStatement(
    ctes,
    `select cur.n::int4 as n, cur.found, true as expected
       from cur
      where cur.image is distinct from ${rowText(positional(table, 'cur'))}${alreadyAfter}`,
    [...imageParams(before), ...imageParams(after)],
    how,
  );
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
 * Delete the row under each key of `keys` (images holding at least the key), and compare it with the
 * row expected there: `expected` holds the images of the keys at 1-based positions `expectedAt`; the
 * other keys expect no row. It reports the keys whose row was not as expected.
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
  if (expectedAt.length === keys.rows.length) {
    // Every key expects its old row, which holds the key: those images alone, parsed once. Parsing the
    // keys apart was a quarter of a bulk delete's time on the target (2,048 rows: 13 ms, 9.7 so).
    return mismatchStatement(
      [
        imagesCte(table, 'e', 1),
        `gone (n, image) as (delete from ${target} t using e where ${keyMatch(table, 'e')} and ${anyKey(table, 'e')}
                           returning e.n, ${targetRowText(table)})`,
      ],
      `select e.n::int4 as n, g.image is not null as found, true as expected
         from e left join gone g on g.n = e.n
        where g.image is distinct from ${rowText(positional(table, 'e'))}`,
      imageParams(expected),
      how,
    );
  }
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

/** Record the position in the target, in the transaction of the batch it follows. */
export function savePositionStatement(
  schema: string,
  origin: string,
  target: string,
  position: Position,
): Statement {
  // Parameters: $1 origin, $2 target, then the position's columns in order.
  const columns = positionColumns.join(', ');
  const values = positionColumns.map((_, i) => `$${i + 3}`).join(', ');
  const updates = positionColumns.map((c) => `${c} = excluded.${c}`).join(', ');
  return {
    text: `insert into ${ident(schema)}.applied_position (origin, target, ${columns}, updated_at)
     values ($1, $2, ${values}, now())
     on conflict (origin, target) do update set ${updates}, updated_at = now()`,
    values: [origin, target, ...positionValues(position)],
  };
}

/**
 * Save the target's record of its position. `flushed`: wait for its flush, and so for that of every commit
 * of this session before it (a chunk's may not have waited: src/apply/chunk.ts).
 */
export async function saveAppliedPosition(
  client: pg.ClientBase,
  schema: string,
  origin: string,
  target: string,
  position: Position,
  flushed = false,
): Promise<void> {
  const save = savePositionStatement(schema, origin, target, position);
  if (!flushed) {
    await client.query(save);
    return;
  }
  // In a transaction that waits for its flush whatever the target's synchronous_commit: every commit of
  // this session before it is then on disk too. It must write: PostgreSQL flushes no commit of a
  // transaction that wrote no WAL.
  const settled = await sendPipelined(client, () => [
    client.query('begin'),
    client.query('set local synchronous_commit = on'),
    client.query(save),
    client.query('commit'),
  ]);
  try {
    valuesOrFirstFailure(settled);
  } catch (thrown) {
    await client.query('rollback').catch(() => undefined);
    throw thrown;
  }
}

/**
 * The position this target has applied, if it has applied anything from this origin. `forUpdate` locks
 * its row until the transaction ends: a batch's commit, which writes the row, waits meanwhile (repair).
 */
export async function loadAppliedPosition(
  client: pg.ClientBase,
  schema: string,
  origin: string,
  target: string,
  forUpdate = false,
): Promise<Position | undefined> {
  const result = await client.query<StoredPosition>(
    `select ${positionColumns.join(', ')}
       from ${ident(schema)}.applied_position where origin = $1 and target = $2${forUpdate ? ' for update' : ''}`,
    [origin, target],
  );
  const row = result.rows[0];
  return row === undefined ? undefined : fromStored(row);
}
