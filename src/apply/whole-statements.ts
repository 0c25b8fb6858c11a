/** Where a full chunk of the log may end without cutting an UPDATE statement in two. */
import type { LogChange } from '../changelog/window.js';

/**
 * The changes of a full chunk that can be applied on their own: the rows of an UPDATE statement are
 * applied together, so a statement that may go on past the chunk's end (no later change of its
 * transaction in the chunk shows it ended), and any statement that would be cut in two with it, is left
 * for the next chunk, from its first row on. A chunk that such a statement fills from its start stays
 * whole.
 */
export function wholeStatements(changes: readonly LogChange[]): readonly LogChange[] {
  const first = new Map<number, number>();
  const last = new Map<number, number>();
  const lastOfTxid = new Map<string, number>();
  changes.forEach((c, i) => {
    lastOfTxid.set(c.txid, i);
    if (c.statement === null) return;
    if (!first.has(c.statement)) first.set(c.statement, i);
    last.set(c.statement, i);
  });
  let cut = changes.length;
  for (const [statement, end] of last) {
    if (lastOfTxid.get(changes[end]!.txid) === end) cut = Math.min(cut, first.get(statement)!);
  }
  for (let moved = true; moved && cut > 0;) {
    moved = false;
    for (const [statement, start] of first) {
      if (start < cut && last.get(statement)! >= cut) {
        cut = start;
        moved = true;
      }
    }
  }
  // The very array when whole: steps made for it ahead (src/apply/chunk.ts) are found by it.
  return cut > 0 && cut < changes.length ? changes.slice(0, cut) : changes;
}
