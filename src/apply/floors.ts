/**
 * Floors: per table a sync copied, the copy's snapshot, kept on the target with the position (sql/target).
 * The changes a floor's snapshot sees are in the copy already, so a chunk leaves them out (chunk.ts,
 * TargetScope.floors) until the position has passed the floor and it is dropped.
 */
import type pg from 'pg';

import { ident } from '../config/identifiers.js';
import { parseSnapshot, type Snapshot } from '../changelog/snapshot.js';

/** The floors this target holds for this source: relid → the snapshot of the copy. */
export async function loadFloors(
  target: pg.ClientBase,
  schema: string,
  origin: string,
  name: string,
): Promise<Map<number, Snapshot>> {
  const result = await target.query<{ relid: number; snapshot: string }>(
    `select relid, snapshot from ${ident(schema)}.table_floor where origin = $1 and target = $2`,
    [origin, name],
  );
  return new Map(result.rows.map((r) => [r.relid, parseSnapshot(r.snapshot)]));
}

/** Floors that the position has passed leave nothing to hide: drop them. */
export async function dropFloors(
  target: pg.ClientBase,
  schema: string,
  origin: string,
  name: string,
  relids: readonly number[],
): Promise<void> {
  await target.query(
    `delete from ${ident(schema)}.table_floor where origin = $1 and target = $2 and relid = any($3::int8[])`,
    [origin, name, relids],
  );
}
