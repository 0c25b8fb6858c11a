/**
 * Bulk runs copied through: where a window's next changes are all inserts, the source makes their
 * values as COPY text, a table at a time (src/changelog/bulk-window.ts), and the daemon passes the
 * bytes on to the target's COPY FROM, parents first, in one target transaction with the position they
 * reach. The daemon's one thread was what limited a bulk apply: reading each change through
 * node-postgres, cutting chunks into steps, making the COPY text of each image, about 4 µs a change;
 * here it reads no row at all, and the source's making of the text overlaps the target's COPY.
 *
 * It writes the very rows that the row path's COPY would (src/apply/copy-in.ts), on the same bet of no
 * conflict: a key that holds a row fails the COPY, and so does any error of either side; the
 * transaction is then rolled back and the changes take the row path, which reads them as it always
 * did, resolves conflicts by the target's policy and names a change the target refuses. Taken only for
 * tables whose every written column is a JSON scalar in the image (TablePlan.copyThrough).
 */
import type { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';

import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';

import { coerceError } from '../failure/errors.js';
import { holdAlone } from '../db/shared-connection.js';
import { runCopyOutSql, type BulkRun } from '../changelog/bulk-window.js';
import type { LogChange, Position } from '../changelog/window.js';
import { commitWaits, relaxedCommit, type PositionKey } from './chunk.js';
import { copyIntoStream } from './copy-in.js';
import type { TablePlan } from './plan.js';
import { savePositionStatement } from './applied-position.js';

/** A chunk that was all inserts, as many as `fromRows`, into tables whose runs may be copied through. */
export function runOfInserts(
  changes: readonly LogChange[],
  tables: ReadonlyMap<number, TablePlan>,
  fromRows: number,
): boolean {
  if (changes.length < fromRows) return false;
  let relid: number | undefined;
  for (const change of changes) {
    if (change.op !== 'I') return false;
    if (change.relid === relid) continue;
    relid = change.relid;
    if (tables.get(relid)?.copyThrough !== true) return false;
  }
  return true;
}

/**
 * The plan's tables of a run, in the order their rows go in (parents first: TablePlan.rank); undefined
 * when the run is not all inserts, or a table of it may not be copied through.
 */
export function tablesOfRun(run: BulkRun, tables: ReadonlyMap<number, TablePlan>): TablePlan[] | undefined {
  if (!run.inserts || run.tables.length === 0) return undefined;
  const planned = run.tables.map((t) => tables.get(t.relid));
  if (planned.some((t) => t?.copyThrough !== true)) return undefined;
  return (planned as TablePlan[]).sort((a, b) => a.rank - b.rank);
}

/**
 * The source connections of a run's COPYs: the worker's lease, and a connection of its session's own
 * beside it where there is one. The source's making of the COPY text is what a run waits on (2 µs a row
 * of parsing images), so two tables' rows are made at once, one on each. A run of one table keeps to the
 * lease, the look at the next run after its rows: taken beside them at once, the look made a backlog of
 * 1M single-row inserts 12% slower (4.5 s where 4.0), the two cores being busy already.
 */
export interface RunSources {
  lease: pg.ClientBase;
  beside: pg.ClientBase | undefined;
}

/**
 * Copy `run` (the next changes of the window at `position`, all inserts into `tables`, in that order)
 * from the source's log into the target tables and record `next`, in one target transaction. False
 * when either side refused it: the target's transaction is rolled back, and the changes take the row
 * path; a connection beside the lease may then hold a COPY unread, and is to be closed. `leaseDone` is
 * called when the lease has sent the last rows it makes for the run, and is free again.
 */
export async function copyRunThrough(
  sources: RunSources,
  target: pg.Client,
  schema: string,
  run: BulkRun,
  tables: readonly TablePlan[],
  key: PositionKey,
  position: Position,
  next: Position,
  relaxed: boolean,
  leaseDone?: () => void,
): Promise<boolean> {
  const { lease, beside } = sources;
  const copyOut = (source: pg.ClientBase, table: TablePlan): Readable =>
    source.query(
      copyTo(
        runCopyOutSql(schema, position, run, table.relid, table.columns, table.missingValues, table.renamed),
      ),
    );
  // The rows made beside the lease, not yet passed on: a run refused before them leaves them unread, and
  // their connection is closed (the caller's), which their stream hears as an error.
  let besideOut: Readable | undefined;
  try {
    await target.query('begin');
    if (!commitWaits(relaxed, next)) await target.query(relaxedCommit);
    // Beside the lease, where there is a connection for it: every table after the first, the next begun
    // once the target took the one before (a connection holds one COPY at a time), the first of them at
    // once, its rows made while the lease's are.
    const besides = beside === undefined ? [] : tables.slice(1);
    const onLease = tables.slice(0, tables.length - besides.length);
    besideOut = beside !== undefined && besides.length > 0 ? copyOut(beside, besides[0]!) : undefined;
    besideOut?.on('error', () => undefined);
    for (const [i, table] of onLease.entries()) {
      const done = i === onLease.length - 1 ? leaseDone : undefined;
      const refused = await holdAlone(lease, (connection) =>
        pump(copyOut(connection, table), copyIntoStream(target, table), done),
      );
      if (refused !== undefined) throw coerceError(refused);
    }
    if (beside !== undefined) {
      for (const table of besides) {
        const out = besideOut ?? copyOut(beside, table);
        besideOut = undefined;
        const refused = await pump(out, copyIntoStream(target, table));
        if (refused !== undefined) throw coerceError(refused);
      }
    }
    await target.query(savePositionStatement(key.schema, key.origin, key.target, next));
    const commit = await target.query('commit');
    return commit.command === 'COMMIT';
  } catch {
    await target.query('rollback').catch(() => undefined);
    return false;
  }
}

/**
 * Pass the source's COPY TO stream into the target's COPY FROM; resolves once both have ended, to the
 * first failure of either (undefined: none). The source's failure aborts the target's COPY (CopyFail);
 * the target's leaves the source's COPY to run out unread, so that its connection is ready for the next
 * statement.
 */
async function pump(out: Readable, into: Writable, sourceDone?: () => void): Promise<unknown> {
  const outEnded = finished(out).then(
    () => void sourceDone?.(),
    (thrown: unknown) => thrown,
  );
  const intoEnded = finished(into).then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  into.once('error', () => {
    out.unpipe(into);
    out.resume();
  });
  out.once('error', (thrown: Error) => into.destroy(thrown));
  out.pipe(into);
  const [outFailure, intoFailure] = await Promise.all([outEnded, intoEnded]);
  return outFailure ?? intoFailure;
}
