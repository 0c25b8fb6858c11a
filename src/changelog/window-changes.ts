/**
 * Which changes of the log a window still holds, as SQL: one definition for the statements that read
 * them (the window's read, src/changelog/window.ts; a bulk run's, src/changelog/bulk-window.ts).
 */
import { ident } from '../config/identifiers.js';
import { pendingSql } from './applied-by.js';

/** Where a window's values are in a statement: parameters, or literals (a COPY takes no parameters). */
export interface WindowSql {
  fromSnapshot: string;
  fromIdBound: string;
  /** An xid8[] of part A's txids (txidsOfA). */
  txidsOfA: string;
  toSnapshot: string;
  toIdCeiling: string;
  appliedId: string;
  /** The most changes taken. */
  changes: string;
}

/** The window as the parameters $1-$7 of windowValues (src/changelog/window.ts), in its order. */
export const windowParameters: WindowSql = {
  fromSnapshot: '$1::pg_snapshot',
  fromIdBound: '$2',
  txidsOfA: '$3::xid8[]',
  toSnapshot: '$4::pg_snapshot',
  toIdCeiling: '$5',
  appliedId: '$6',
  changes: '$7',
};

/**
 * The next `w.changes` changes of the window still to apply, of the tables `relids`, as a subquery of
 * change_log rows: parts A and B, each by its index, the first `w.changes` of each (order by id outside).
 */
export function windowChangesSql(schema: string, relids: readonly number[], w: WindowSql): string {
  const log = `${ident(schema)}.change_log`;
  const tables = relids.map(String).join(', ') || 'null';
  // Which changes the window still holds is the rule's (src/changelog/applied-by.ts). The txids and ids of A
  // and B below only say where in the indexes they lie: their index conditions, which the rule's filter
  // leaves as they are.
  const pending = pendingSql(
    w.toSnapshot,
    { fromSnapshot: w.fromSnapshot, toSnapshot: w.toSnapshot, appliedId: w.appliedId },
    'c',
  );
  return `(
      (select * from ${log} c
        where c.txid = any (${w.txidsOfA})
          and c.id > ${w.appliedId} and c.id <= ${w.fromIdBound}
          and ${pending}
          and c.relid in (${tables})
        order by c.id limit ${w.changes})
      union all
      (select * from ${log} c
        where c.id > greatest(${w.fromIdBound}, ${w.appliedId}) and c.id <= ${w.toIdCeiling}
          and ${pending}
          and c.relid in (${tables})
        order by c.id limit ${w.changes})
    )`;
}
