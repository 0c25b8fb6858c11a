/**
 * What the change log can still serve. The pruner records how far it pruned (sql/source/008); a worker,
 * each time it connects, checks the position its target holds against that horizon and against the
 * source's transaction ids before it reads anything:
 * - behind the horizon: changes the target needs are gone (the target was restored from a backup, or a
 *   standby of it that lagged was promoted);
 * - not in the source's history: the target applied transactions the source no longer has (the source
 *   was restored, or failed over to a standby that lagged), and the source hands their ids out again, so
 *   the stored snapshots would take new transactions as seen. Told by the position's ticks: each tick
 *   records its transaction id on the source (sql/source/008), and a source without that row never took
 *   the tick, however far its transaction ids have gone since.
 * Either way the log cannot bring the target back: it is copied again (`sync`), never served silently.
 *
 * Both sides lock the horizon's row, so that the pruner never prunes what a worker has just claimed and
 * a worker never claims what the pruner has just pruned.
 */
import type pg from 'pg';

import { ident } from '../config/identifiers.js';
import { inTransaction } from '../db/connect.js';
import { TrigsyncError } from '../failure/errors.js';
import { positionColumns, positionValues, type Position } from './window.js';

/** The target's position cannot be served from this source's log; only a copy brings it back. */
export class PositionLost extends TrigsyncError {
  constructor(message: string) {
    super(message, 'data');
  }
}

/** The least of xid8 values: PostgreSQL 13 has no min(xid8); they fit in int8. */
function minXid(expression: string): string {
  return `min((${expression})::text::int8)::text::xid8`;
}

/** Raise the horizon to the oldest registered position; returns the xid (text) to prune below. */
export async function advanceHorizon(client: pg.ClientBase, schema: string): Promise<string> {
  const s = ident(schema);
  return inTransaction(client, async () => {
    await client.query(`select from ${s}.log_horizon for update`);
    // Never past the oldest running transaction: its changes are not visible to any position yet.
    // A tick's xid is older than its snapshot's xmin: ticks are kept from the oldest registered one on. A
    // target restored to an older position is told by the horizon, or not at all if the log covers it.
    const result = await client.query<{ below: string; ticks: string }>(
      `with oldest as (
         select least(coalesce((select ${minXid('pg_snapshot_xmin(from_snapshot)')} from ${s}.target), current),
                      current) as below,
                least(coalesce((select ${minXid('from_next_xid')} from ${s}.target), pg_current_xact_id()),
                      pg_current_xact_id()) as ticks
           from (select pg_snapshot_xmin(pg_current_snapshot()) as current) c)
       update ${s}.log_horizon set pruned_below = greatest(pruned_below, oldest.below),
                                   ticks_from = greatest(ticks_from, oldest.ticks)
         from oldest returning oldest.below::text as below, log_horizon.ticks_from::text as ticks`,
    );
    const { below, ticks } = result.rows[0]!;
    await client.query(`delete from ${s}.tick where xid < $1::xid8`, [ticks]);
    return below;
  });
}

/**
 * Check that the log can serve `position` and make it the registered one (so pruning keeps what it
 * needs from now on), or throw PositionLost naming what happened and what to do.
 */
export async function claimPosition(
  client: pg.ClientBase,
  schema: string,
  target: string,
  position: Position,
): Promise<void> {
  const s = ident(schema);
  const ticks = [position.from.nextXid, ...(position.to === undefined ? [] : [position.to.nextXid])];
  await inTransaction(client, async () => {
    const found = await client.query<{ pruned_below: string; needs: string; missing: string | null }>(
      `select h.pruned_below::text, pg_snapshot_xmin($1::pg_snapshot)::text as needs,
              (select ${minXid('t.xid')}::text from unnest($2::xid8[]) as t(xid)
                where (t.xid >= h.ticks_from and not exists (select from ${s}.tick k where k.xid = t.xid))
                   or t.xid >= pg_current_xact_id()) as missing
         from ${s}.log_horizon h for update`,
      [position.from.snapshot, ticks],
    );
    const { pruned_below: prunedBelow, needs, missing } = found.rows[0]!;
    const problem =
      missing !== null
        ? `its position was taken at source transaction ${missing}, which this source never ran: ` +
          'the source lost transactions the target has applied (restored from a backup, or failed over ' +
          'to a standby that lagged)'
        : BigInt(needs) < BigInt(prunedBelow)
          ? `it needs changes from source transaction ${needs} on, but the log was pruned up to ${prunedBelow}: ` +
            'the target went back in time (restored from a backup, or a standby of it that lagged was promoted)'
          : undefined;
    if (problem !== undefined) {
      throw new PositionLost(
        `target ${target}: ${problem}. The change log cannot bring it back; copy it again with ` +
          `\`trigsync sync ${target}\``,
      );
    }
    // Parameters: $1 target, then the position's columns in order.
    const assignments = positionColumns.map((c, i) => `${c} = $${i + 2}`).join(', ');
    await client.query(`update ${s}.target set ${assignments}, updated_at = now() where name = $1`, [
      target,
      ...positionValues(position),
    ]);
  });
}
