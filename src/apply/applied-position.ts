/**
 * The target's own record of the position it applied from an origin (`<schema>.applied_position`):
 * written in the transaction of each batch it follows, and read where a worker starts and by repair.
 */
import type pg from 'pg';

import { ident } from '../config/identifiers.js';
import { sendPipelined, valuesOrFirstFailure } from '../db/pipeline.js';
import {
  fromStored,
  positionColumns,
  positionValues,
  type Position,
  type StoredPosition,
} from '../changelog/window.js';
import type { Statement } from './statements.js';

/** Record the position in the target, in the transaction of the batch it follows. */
export function savePositionStatement(
  schema: string,
  origin: string,
  target: string,
  position: Position,
): Statement {
  // Parameters: $1 origin, $2 target, then the position's columns in order.
  const columns = positionColumns.join(', ');
  const values = positionColumns.map((_, i) => `$${i + 3}`).join(', ');
  const updates = positionColumns.map((c) => `${c} = excluded.${c}`).join(', ');
  return {
    text: `insert into ${ident(schema)}.applied_position (origin, target, ${columns}, updated_at)
     values ($1, $2, ${values}, now())
     on conflict (origin, target) do update set ${updates}, updated_at = now()`,
    values: [origin, target, ...positionValues(position)],
  };
}

/**
 * Save the target's record of its position. `flushed`: wait for its flush, and so for that of every commit
 * of this session before it (a chunk's may not have waited: src/apply/chunk.ts).
 */
export async function saveAppliedPosition(
  client: pg.ClientBase,
  schema: string,
  origin: string,
  target: string,
  position: Position,
  flushed = false,
): Promise<void> {
  const save = savePositionStatement(schema, origin, target, position);
  if (!flushed) {
    await client.query(save);
    return;
  }
  // In a transaction that waits for its flush whatever the target's synchronous_commit: every commit of
  // this session before it is then on disk too. It must write: PostgreSQL flushes no commit of a
  // transaction that wrote no WAL.
  const settled = await sendPipelined(client, () => [
    client.query('begin'),
    client.query('set local synchronous_commit = on'),
    client.query(save),
    client.query('commit'),
  ]);
  try {
    valuesOrFirstFailure(settled);
  } catch (thrown) {
    await client.query('rollback').catch(() => undefined);
    throw thrown;
  }
}

/**
 * The position this target has applied, if it has applied anything from this origin. `forUpdate` locks
 * its row until the transaction ends: a batch's commit, which writes the row, waits meanwhile (repair).
 */
export async function loadAppliedPosition(
  client: pg.ClientBase,
  schema: string,
  origin: string,
  target: string,
  forUpdate = false,
): Promise<Position | undefined> {
  const result = await client.query<StoredPosition>(
    `select ${positionColumns.join(', ')}
       from ${ident(schema)}.applied_position where origin = $1 and target = $2${forUpdate ? ' for update' : ''}`,
    [origin, target],
  );
  const row = result.rows[0];
  return row === undefined ? undefined : fromStored(row);
}
