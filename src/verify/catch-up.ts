/**
 * Comparing while replication runs. The source is read in one snapshot S (a REPEATABLE READ
 * transaction); the target is compared once its own recorded position holds every change of S that
 * concerns it, so that nothing still in flight towards the target looks like a difference. The rows
 * of changes applied after S may rightly differ from S: `keysInFlight` names them, the caller compares
 * them by key and re-checks them later.
 */
import type pg from 'pg';

import { loadAppliedPosition } from '../apply/applied-position.js';
import { sourceOrigin } from '../capture/install.js';
import type { Renames } from '../capture/renamed-columns.js';
import { ident, qualifiedIdent } from '../config/identifiers.js';
import type { QualifiedName } from '../config/types.js';
import { sleep } from '../lib/runnable.js';
import { appliedBySql, pendingSql, visibleSql, type PositionSql } from '../changelog/applied-by.js';
import { loadRegisteredPosition } from '../changelog/targets.js';
import { underCurrentNames } from '../changelog/renamed-images.js';
import type { Position } from '../changelog/window.js';
import type { Key } from './table-side.js';
import { relationExists } from '../db/relation-exists.js';

/** A source session held in one snapshot. */
export interface SourceSnapshot {
  client: pg.ClientBase;
  /** pg_snapshot in text form. */
  snapshot: string;
  /** The source's clock when the snapshot was taken. */
  at: Date;
}

/** Open a read-only REPEATABLE READ transaction on the source and note its snapshot. */
export async function beginSnapshot(client: pg.ClientBase): Promise<SourceSnapshot> {
  await client.query('begin isolation level repeatable read read only');
  // The first statement fixes the transaction's snapshot; pg_current_snapshot() returns it.
  const result = await client.query<{ snapshot: string; at: Date }>(
    'select pg_current_snapshot()::text as snapshot, clock_timestamp() as at',
  );
  const row = result.rows[0]!;
  return { client, snapshot: row.snapshot, at: row.at };
}

/** Read-only transactions end the same way whichever way they went. */
export async function endTransaction(client: pg.ClientBase): Promise<void> {
  await client.query('rollback');
}

/** This source's origin, or undefined when trigsync is not installed on it (nothing replicates). */
export async function installedOrigin(source: pg.ClientBase, schema: string): Promise<string | undefined> {
  const found = await relationExists(source, `${ident(schema)}.node`);
  return found ? sourceOrigin(source, schema) : undefined;
}

export interface Follower {
  schema: string;
  origin: string;
  target: string;
  /** The source's relids of the tables compared: only their changes matter. */
  relids: number[];
}

/**
 * The target's position in this source's stream: its own record (the truth, committed with each
 * batch), else the source's registry (a target that has applied nothing yet). Undefined when the
 * target is not replicated to from this source at all. `forUpdate`: the record stays locked until the
 * target's transaction ends, so that no batch commits meanwhile (repair).
 */
export async function targetPosition(
  target: pg.ClientBase,
  source: pg.ClientBase,
  follower: Follower,
  forUpdate = false,
): Promise<Position | undefined> {
  const table = await relationExists(target, `${ident(follower.schema)}.applied_position`);
  if (table) {
    const own = await loadAppliedPosition(
      target,
      follower.schema,
      follower.origin,
      follower.target,
      forUpdate,
    );
    if (own !== undefined) return own;
  }
  return (await loadRegisteredPosition(source, follower.schema, follower.target))?.position;
}

/** A position bound as three parameters from $n on: from's snapshot, to's (null: none) and appliedId. */
function positionParams(n: number): PositionSql {
  return { fromSnapshot: `$${n}::pg_snapshot`, toSnapshot: `$${n + 1}::pg_snapshot`, appliedId: `$${n + 2}` };
}

export interface Pending {
  /** Changes of the snapshot the position has not applied. */
  changes: number;
  /** Age of the oldest of them, in seconds; null when none. */
  oldestSeconds: number | null;
  /** Seconds since the snapshot was taken, by the source's clock. */
  sinceSnapshotSeconds: number;
}

/**
 * The changes visible in the snapshot that the position has not applied (src/changelog/applied-by.ts).
 * Changes older than from's xmin are all visible in `from`; the (txid, id) index finds the rest.
 * A change removed by the pruner was applied by every target, so none is missed.
 */
export async function pendingChanges(
  snapshot: SourceSnapshot,
  follower: Follower,
  position: Position,
): Promise<Pending> {
  const result = await snapshot.client.query<{
    changes: number;
    oldest: number | null;
    since: number;
  }>(
    `select count(*) as changes,
            extract(epoch from clock_timestamp() - min(c.captured_at))::float8 as oldest,
            extract(epoch from clock_timestamp() - $6::timestamptz)::float8 as since
       from ${ident(follower.schema)}.change_log c
      where c.txid >= pg_snapshot_xmin($2::pg_snapshot)
        and c.txid < pg_snapshot_xmax($1::pg_snapshot)
        and ${pendingSql('$1::pg_snapshot', positionParams(2))}
        and c.relid = any($5::oid[])`,
    [
      snapshot.snapshot,
      position.from.snapshot,
      position.to?.snapshot ?? null,
      position.appliedId,
      follower.relids,
      snapshot.at,
    ],
  );
  const row = result.rows[0]!;
  return { changes: row.changes, oldestSeconds: row.oldest, sinceSnapshotSeconds: row.since };
}

export interface CatchUp {
  /** False when trigsync does not replicate this target from this source: compared as it is. */
  replicating: boolean;
  /** The target's position in its comparing transaction; undefined when not replicating. */
  position: Position | undefined;
  /** Whether the target held every change of the snapshot when it was compared. */
  caughtUp: boolean;
  /**
   * Caught up: seconds from the snapshot until the target was seen holding all of it (so about the
   * replication lag, within the poll interval). Not caught up: the age of the oldest change of the
   * snapshot the target still lacked.
   */
  lagSeconds: number;
}

const pollIntervalMs = 200;

/**
 * Wait, up to `waitMs`, until the target's position holds every change of the snapshot. Returns
 * without waiting when nothing replicates to the target. The caller then opens the target's own
 * snapshot and measures with `measureCatchUp`, at the position it actually compares.
 */
export async function waitForTarget(
  snapshot: SourceSnapshot,
  target: pg.ClientBase,
  follower: Follower | undefined,
  waitMs: number,
): Promise<void> {
  if (follower === undefined) return;
  const deadline = Date.now() + waitMs;
  for (;;) {
    const position = await targetPosition(target, snapshot.client, follower);
    if (position === undefined) return;
    const pending = await pendingChanges(snapshot, follower, position);
    if (pending.changes === 0 || Date.now() >= deadline) return;
    await sleep(Math.min(pollIntervalMs, Math.max(0, deadline - Date.now())));
  }
}

/** Where the target stands against the snapshot; call inside the target's comparing transaction. */
export async function measureCatchUp(
  snapshot: SourceSnapshot,
  target: pg.ClientBase,
  follower: Follower | undefined,
): Promise<CatchUp> {
  const position =
    follower === undefined ? undefined : await targetPosition(target, snapshot.client, follower);
  if (follower === undefined || position === undefined) {
    return { replicating: false, position: undefined, caughtUp: true, lagSeconds: 0 };
  }
  const pending = await pendingChanges(snapshot, follower, position);
  return pending.changes === 0
    ? { replicating: true, position, caughtUp: true, lagSeconds: pending.sinceSnapshotSeconds }
    : { replicating: true, position, caughtUp: false, lagSeconds: pending.oldestSeconds ?? 0 };
}

/**
 * The keys of a table that changes touch which one side of the comparison has and the other has not:
 * visible in the source snapshot but not applied at the target's position, or the other way round
 * (applied changes newer than the snapshot, the usual case). Only those rows may rightly differ; they
 * are compared by key rather than inside the ranges, and again later if they differ. Undefined when a
 * TRUNCATE is among those changes (every key is then touched) or more than `max` keys are.
 *
 * `client` must be in a snapshot taken after the target's, with the pruner paused since before the
 * source snapshot (verify.ts, openComparison, says why).
 */
export async function keysInFlight(
  client: pg.ClientBase,
  snapshot: string,
  follower: Follower,
  position: Position,
  table: { relid: number; relation: QualifiedName; key: readonly string[]; renamed?: Renames | undefined },
  max: number,
): Promise<Key[] | undefined> {
  // Images captured before a column was renamed, under its current name, as the daemon reads them.
  const current = (column: string) =>
    underCurrentNames(follower.schema, [{ relid: table.relid, renamed: table.renamed }], column, 'image');
  // The image typed as the source table, as the daemon's row filter reads it (src/apply/plan.ts): a json
  // column's \u0000, which json_populate_record cannot de-escape, is read as U+2400; keys are not json.
  const image = `json_populate_record(null::${qualifiedIdent(table.relation)},
                                      replace(i.image::text, '\\u0000', '\\u2400')::json)`;
  const result = await client.query<Record<string, string | boolean>>(
    `select distinct c.op in ('T', 'P') as truncated, ${table.key.map((k, i) => `(p.${ident(k)})::text as k${i}`).join(', ')}
       from ${ident(follower.schema)}.change_log c
       -- An update's old row and new row: both keys are in flight.
       cross join lateral (values (${current('c.row')}), (${current('c.old_row')})) as i(image)
       cross join lateral ${image} as p
      where c.relid = $1 and (i.image is not null or c.op in ('T', 'P'))
        and c.txid >= least(pg_snapshot_xmin($2::pg_snapshot), pg_snapshot_xmin($3::pg_snapshot))
        and ${visibleSql('$2::pg_snapshot')} <> ${appliedBySql(positionParams(3))}
      limit $6`,
    [
      table.relid,
      snapshot,
      position.from.snapshot,
      position.to?.snapshot ?? null,
      position.appliedId,
      max + 1,
    ],
  );
  if (result.rows.length > max || result.rows.some((r) => r.truncated === true)) return undefined;
  return result.rows.map((r) => table.key.map((_, i) => String(r[`k${i}`])));
}
