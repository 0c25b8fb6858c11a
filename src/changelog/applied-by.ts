/**
 * Which changes a position has applied: the rule behind "no change is lost", written once, in SQL for
 * the statements that read the change log and in TypeScript beside it (test/replication/applied-by.test.ts
 * holds the two to each other). A change is applied by a position when it is visible in `from`, or a
 * window is open and the change is visible in its `to` with an id at most `appliedId`
 * (src/changelog/window.ts says why). The window read, status and verify build their filters here.
 *
 * The SQL is text over the caller's expressions, not a function of the schema: it goes inline into the
 * caller's statement, so that the planner folds bound snapshots to constants and an absent `to` away, and
 * the caller's index conditions (ids, txids) stay its own, apart from the rule.
 */
import { parseSnapshot, visibleIn } from './snapshot.js';

/**
 * A position as SQL expressions over parameters or columns: `$1::pg_snapshot`, `t.from_snapshot`.
 * `toSnapshot` is SQL NULL while no window is open.
 */
export interface PositionSql {
  fromSnapshot: string;
  toSnapshot: string;
  appliedId: string;
}

/** SQL: the change (a change_log row by its alias) is visible in the snapshot (a pg_snapshot expression). */
export function visibleSql(snapshot: string, change = 'c'): string {
  return `pg_visible_in_snapshot(${change}.txid, ${snapshot})`;
}

/**
 * SQL: the position has applied the change. True or false, never NULL: a `to` that is NULL makes the
 * window's branch false, so that `not` of it counts the change (status and verify negate it).
 */
export function appliedBySql(position: PositionSql, change = 'c'): string {
  return `(${visibleSql(position.fromSnapshot, change)}
           or (${position.toSnapshot} is not null and ${visibleSql(position.toSnapshot, change)}
               and ${change}.id <= ${position.appliedId}))`;
}

/**
 * SQL: the change is visible in `snapshot` and the position has not applied it. With the window's end
 * for `snapshot`, the window's changes still to apply; with the source's snapshot now, the backlog.
 */
export function pendingSql(snapshot: string, position: PositionSql, change = 'c'): string {
  return `(${visibleSql(snapshot, change)} and not ${appliedBySql(position, change)})`;
}

/** What the rule reads of a position (src/changelog/window.ts's Position is one). */
export interface AppliedPosition {
  from: { snapshot: string };
  to: { snapshot: string } | undefined;
  appliedId: number;
}

/** What the rule reads of a change: its id and its transaction (xid8 in text). */
export interface LoggedChange {
  id: number;
  txid: string;
}

/** The rule in TypeScript: whether the position has applied a change. The snapshots are parsed once. */
export function appliedBy(position: AppliedPosition): (change: LoggedChange) => boolean {
  const from = parseSnapshot(position.from.snapshot);
  const to = position.to === undefined ? undefined : parseSnapshot(position.to.snapshot);
  return (change) =>
    visibleIn(change.txid, from) ||
    (to !== undefined && visibleIn(change.txid, to) && change.id <= position.appliedId);
}
