/** `repair`'s pure core: which keys a batch writes now, and what it does to each. */
import type { Difference, DifferenceKind } from './ranges.js';
import { keyId, type Key } from './table-side.js';

export type RepairAction = 'insert' | 'update' | 'delete';

/** What makes the target's row the source's: insert the missing, update the different, delete the extra. */
export const actionOf: Readonly<Record<DifferenceKind, RepairAction>> = {
  missing: 'insert',
  different: 'update',
  extra: 'delete',
};

/**
 * Split a batch's keys into those written now and those left for a later round: a key that a change
 * in flight touches (`inFlight`, keysInFlight's answer) is left; when that answer is unknown (a TRUNCATE
 * among the changes, or too many), every key is.
 */
export function splitInFlight(
  keys: readonly Key[],
  inFlight: readonly Key[] | undefined,
): { now: Key[]; later: Key[] } {
  if (inFlight === undefined) return { now: [], later: [...keys] };
  if (inFlight.length === 0) return { now: [...keys], later: [] };
  const touched = new Set(inFlight.map(keyId));
  const now: Key[] = [];
  const later: Key[] = [];
  for (const key of keys) (touched.has(keyId(key)) ? later : now).push(key);
  return { now, later };
}

/** The differences of a batch grouped by the action that repairs them, in the order they are written. */
export function writesOf(differences: readonly Difference[]): Record<RepairAction, Key[]> {
  // Deletes first: an extra row may hold a unique value that a missing row brings back.
  const writes: Record<RepairAction, Key[]> = { delete: [], update: [], insert: [] };
  for (const d of differences) writes[actionOf[d.kind]].push(d.key);
  return writes;
}

/** `items` in slices of at most `size`. */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  if (size < 1) throw new RangeError(`chunk size ${size}`);
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** A key as a JSON object of its key columns' texts: a row image holding only the key (json_populate_record reads a text as any type). */
export function keyImage(columns: readonly string[], key: Key): string {
  return JSON.stringify(Object.fromEntries(columns.map((c, i) => [c, key[i]])));
}
