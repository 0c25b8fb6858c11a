/**
 * A bulk run of a window: its next changes when they are all inserts, which go from the source's log to
 * the target tables as COPY text that the source makes, without the daemon reading a row
 * (src/apply/copy-through.ts says when and why). Statements over the window's changes
 * (window-changes.ts): a look at the next changes (how many, up to which id, of which tables, whether
 * all inserts, when captured) that reads no image, then a COPY TO of each table's values among them.
 */
import type pg from 'pg';

import { ident, sqlLiteral } from '../config/identifiers.js';
import { sendPipelined, valuesOrFirstFailure } from '../db/pipeline.js';
import { windowChangesSql, windowParameters, type WindowSql } from './window-changes.js';
import { underCurrentNames } from './renamed-images.js';
import { txidsOfA, windowValues, type Position } from './window.js';
import type { Renames } from '../capture/renamed-columns.js';

/** The next changes of a window, looked at. */
export interface BulkRun {
  changes: number;
  /** The last change's id: the window's applied id once the run applies. */
  lastId: number;
  /** They are all inserts. */
  inserts: boolean;
  /** The tables they are of, with how many each. */
  tables: { relid: number; changes: number }[];
  /** When they were captured, and how many at each time (the metrics' latencies). */
  captured: { ms: number; changes: number }[];
}

/** An id or count as a literal. */
function integer(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`bulk run: ${n} is not an id`);
  return String(n);
}

/**
 * The window of `position` as literals, for a COPY, which takes no parameters, up to a run's changes:
 * its ids end at the run's last (`lastId`). The run is the window's first changes up to there, so the
 * window cut there holds the same; a table's COPY so reads its log up to the run's end, not on past it
 * looking for as many of its own changes as the run holds of every table.
 */
function literals(position: Position, changes: number, lastId: number): WindowSql {
  const to = position.to;
  if (to === undefined) throw new Error('bulk run: no open window');
  return {
    fromSnapshot: `${sqlLiteral(position.from.snapshot)}::pg_snapshot`,
    fromIdBound: integer(position.from.idBound),
    txidsOfA: `${sqlLiteral(`{${txidsOfA(position.from).join(',')}}`)}::xid8[]`,
    toSnapshot: `${sqlLiteral(to.snapshot)}::pg_snapshot`,
    toIdCeiling: integer(Math.min(to.idCeiling, lastId)),
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
  // Per table, captured times grouped by the millisecond: a transaction's changes share one (the log's
  // default, its start), and a busy source's transactions many a millisecond. One number per change cost
  // the look more than its reading of the log; one per transaction (2,500 in a run of 5,000 changes of
  // orders with 3 lines each) 5-6 ms, by the millisecond 3.5-4. A latency so counts from its capture's
  // millisecond, half a millisecond from the instant at most.
  const sql = `select g.relid::int8::text as relid, sum(g.n)::int as changes, max(g.last_id)::text as last_id,
            bool_and(g.inserts) as inserts, array_agg(g.ms) as captured, array_agg(g.n) as counts
       from (select c.relid, round(date_part('epoch', c.captured_at) * 1000)::float8 as ms, count(*)::int as n,
                    max(c.id) as last_id, bool_and(c.op = 'I') as inserts
               from (select c.id, c.relid, c.op, c.captured_at
                       from ${windowChangesSql(schema, relids, windowParameters)} c
                      order by c.id limit $7) c
              group by c.relid, ms) g
      group by g.relid`;
  // windowValues' parameters but its last, the most bytes, which the look does not bound.
  const values = windowValues(position, { changes, bytes: 0 }).slice(0, 7);
  // The planner cannot estimate the window's visibility filters, and on a log of tens of thousands of
  // changes it chose a sequential scan of the whole log and a sort over walking its key and stopping at
  // `changes`: a look at 5,000 changes of a 20,000-change backlog read all 20,000 (10-12 ms; 4 walking
  // the key). A transaction of its own, in the same round trip, lets the look alone do without sorts;
  // the session's other reads, a live window's first of all, are best planned as they are.
  const [, , looked] = valuesOrFirstFailure(
    await sendPipelined<pg.QueryResult>(client, () => [
      client.query('begin'),
      client.query('set local enable_sort = off'),
      client.query(sql, values),
      client.query('commit'),
    ]),
  );
  const rows = looked!.rows as {
    relid: string;
    changes: number;
    last_id: string;
    inserts: boolean;
    captured: number[];
    counts: number[];
  }[];
  const run: BulkRun = { changes: 0, lastId: position.appliedId, inserts: true, tables: [], captured: [] };
  for (const row of rows) {
    run.changes += row.changes;
    run.lastId = Math.max(run.lastId, Number(row.last_id));
    run.inserts &&= row.inserts;
    run.tables.push({ relid: Number(row.relid), changes: row.changes });
    row.captured.forEach((ms, i) => run.captured.push({ ms, changes: row.counts[i]! }));
  }
  return run;
}

/**
 * The COPY TO statement of the values a run inserts into table `relid`: each image's fields `columns`
 * as text, in id order, as that table's COPY FROM reads them. json_to_record gives a column declared
 * text the text of a JSON scalar (a string de-escaped, a number or boolean as written), which is what
 * the target's input function gets from the row path too (src/apply/copy-in.ts); a field the image
 * lacks is NULL, or the text of `missing` for a column added since (TablePlan.missingValues: `->` tells a
 * lacking field, SQL NULL, from a JSON null). Any failure of it (a value that is not what the table's
 * plan expects) sends the run to the row path. Images captured before a column of the table was renamed
 * (`renamed`) are read under its current name.
 */
export function runCopyOutSql(
  schema: string,
  position: Position,
  run: BulkRun,
  relid: number,
  columns: readonly string[],
  missing: ReadonlyMap<string, string>,
  renamed?: Renames,
): string {
  const w = literals(position, run.changes, run.lastId);
  const image = underCurrentNames(schema, [{ relid, renamed }], 'c.row', 'image');
  const fields = columns
    .map((c) => {
      const value = missing.get(c);
      return value === undefined
        ? `r.${ident(c)}`
        : `case when c.row -> ${sqlLiteral(c)} is null then ${sqlLiteral(value)} else r.${ident(c)} end`;
    })
    .join(', ');
  const declared = columns.map((c) => `${ident(c)} text`).join(', ');
  return `copy (
    select ${fields}
      from (select c.id, ${image} as row from ${windowChangesSql(schema, [relid], w)} c
             order by c.id limit ${w.changes}) c
     cross join lateral json_to_record(c.row) as r (${declared})
     where c.id <= ${integer(run.lastId)}
     order by c.id) to stdout`;
}
