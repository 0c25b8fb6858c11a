/**
 * Whether two window starts see the same changes of the log (src/changelog/window.ts): the test by which
 * targets at different stored positions share their reads of it (src/apply/shared-log.ts).
 */
import type pg from 'pg';

import { ident } from '../config/identifiers.js';
import { visibleSql } from './applied-by.js';
import type { Position } from './window.js';

type WindowStart = Position['from'];

/** sameChanges() reads at most this many changes: past that, two starts are taken as different. */
const sameChangesProbe = 1_000;

/**
 * Whether the log holds the same changes visible in `a` as in `b`. Then a window from either to a tick
 * holds the same changes (those visible in the tick and not in its start), and a chunk from one is the
 * other's. A change visible in one and not the other has a txid at or above the lower xmin (below it,
 * both see it) and below the higher xmax (at or above it, neither does): a range of the txid index, often
 * empty, and read no further than sameChangesProbe. A transaction that commits later is in neither; one
 * that `a` or `b` does not see is not pruned (src/changelog/pruner.ts keeps what a position has not applied).
 */
export async function sameChanges(
  client: pg.ClientBase,
  schema: string,
  a: WindowStart,
  b: WindowStart,
): Promise<boolean> {
  const inRange = `from ${ident(schema)}.change_log c
     where c.txid >= least(pg_snapshot_xmin($1::pg_snapshot), pg_snapshot_xmin($2::pg_snapshot))
       and c.txid < greatest(pg_snapshot_xmax($1::pg_snapshot), pg_snapshot_xmax($2::pg_snapshot))`;
  // The first change that differs ends the look; only when none does are the range's changes counted.
  // Starts a window apart differ at its first change, and seeing the same mostly means an empty range.
  const result = await client.query<{ same: boolean }>(
    `select case when exists (select 1 from (select c.txid ${inRange} order by c.txid limit $3) c
                               where ${visibleSql('$1::pg_snapshot')} <> ${visibleSql('$2::pg_snapshot')})
                 then false
                 else (select count(*) from (select 1 ${inRange} limit $3) c) < $3 end as same`,
    [a.snapshot, b.snapshot, sameChangesProbe],
  );
  return result.rows[0]!.same;
}
