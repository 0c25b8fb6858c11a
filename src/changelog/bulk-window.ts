/**
 * A bulk run of a window: its next changes when they are all inserts into one table, which go from the
 * source's log to the target table as COPY text that the source makes, without the daemon reading a
 * row (src/apply/copy-through.ts says when and why). Two statements over the window's changes
 * (window-changes.ts): a look at the next changes (how many, up to which id, of which table, whether all
 * inserts, when captured) that reads no image, then a COPY TO of those very changes' values.
 */
import type pg from 'pg';

import { ident, sqlLiteral } from '../config/identifiers.js';
import { windowChangesSql, windowParameters, type WindowSql } from './window-changes.js';
import { txidsOfA, windowValues, type Position } from './window.js';

/** The next changes of a window, looked at: all inserts into one table, or not. */
export interface BulkRun {
  changes: number;
  /** The last change's id: the window's applied id once the run applies. */
  lastId: number;
  /** The one table whose rows they all insert; undefined if they are not that (or there are none). */
  relid: number | undefined;
  /** When they were captured, and how many at each time (the metrics' latencies). */
  captured: { ms: number; changes: number }[];
}

/** An id or count as a literal. */
function integer(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`bulk run: ${n} is not an id`);
  return String(n);
}

/** The window of `position` as literals, for a COPY, which takes no parameters. */
function literals(position: Position, changes: number): WindowSql {
  const to = position.to;
  if (to === undefined) throw new Error('bulk run: no open window');
  return {
    fromSnapshot: `${sqlLiteral(position.from.snapshot)}::pg_snapshot`,
    fromIdBound: integer(position.from.idBound),
    txidsOfA: `${sqlLiteral(`{${txidsOfA(position.from).join(',')}}`)}::xid8[]`,
    toSnapshot: `${sqlLiteral(to.snapshot)}::pg_snapshot`,
    toIdCeiling: integer(to.idCeiling),
    appliedId: integer(position.appliedId),
    changes: integer(changes),
  };
}

/**
 * Look at the next `changes` changes of the open window at `position`, of the tables `relids`: the
 * source reads their log rows but not their images.
 */
export async function lookAtRun(
  client: pg.ClientBase,
  schema: string,
  relids: readonly number[],
  position: Position,
  changes: number,
): Promise<BulkRun> {
  // Captured times grouped: a transaction's changes share one (the log's default, its start), and an
  // array of one number per change cost the look more than its reading of the log.
  const { rows } = await client.query<{
    changes: number;
    last_id: string | null;
    relid: string | null;
    captured: number[] | null;
    counts: number[] | null;
  }>(
    `select coalesce(sum(g.n), 0)::int as changes, max(g.last_id)::text as last_id,
            case when min(g.first_relid) = max(g.last_relid) and bool_and(g.inserts)
                 then min(g.first_relid)::int8::text end as relid,
            array_agg(g.ms) as captured, array_agg(g.n) as counts
       from (select (date_part('epoch', c.captured_at) * 1000)::float8 as ms, count(*)::int as n,
                    max(c.id) as last_id, min(c.relid) as first_relid, max(c.relid) as last_relid,
                    bool_and(c.op = 'I') as inserts
               from (select c.id, c.relid, c.op, c.captured_at
                       from ${windowChangesSql(schema, relids, windowParameters)} c
                      order by c.id limit $7) c
              group by c.captured_at) g`,
    // windowValues' parameters but its last, the most bytes, which the look does not bound.
    windowValues(position, { changes, bytes: 0 }).slice(0, 7),
  );
  const row = rows[0]!;
  return {
    changes: row.changes,
    lastId: row.last_id === null ? position.appliedId : Number(row.last_id),
    relid: row.relid === null ? undefined : Number(row.relid),
    captured: (row.captured ?? []).map((ms, i) => ({ ms, changes: row.counts![i]! })),
  };
}

/**
 * The COPY TO statement of a run's values: each image's fields `columns` as text, in id order, as the
 * run's table's COPY FROM reads them. json_to_record gives a column declared text the text of a JSON
 * scalar (a string de-escaped, a number or boolean as written), which is what the target's input
 * function gets from the row path too (src/apply/copy-in.ts); a field the image lacks is NULL. Any
 * failure of it (a value that is not what the table's plan expects) sends the run to the row path.
 */
export function runCopyOutSql(
  schema: string,
  position: Position,
  run: BulkRun,
  columns: readonly string[],
): string {
  if (run.relid === undefined) throw new Error('bulk run: not one table');
  const w = literals(position, run.changes);
  const fields = columns.map((c) => `r.${ident(c)}`).join(', ');
  const declared = columns.map((c) => `${ident(c)} text`).join(', ');
  return `copy (
    select ${fields}
      from (select c.id, c.row from ${windowChangesSql(schema, [run.relid], w)} c
             order by c.id limit ${w.changes}) c
     cross join lateral json_to_record(c.row) as r (${declared})
     where c.id <= ${integer(run.lastId)}
     order by c.id) to stdout`;
}
