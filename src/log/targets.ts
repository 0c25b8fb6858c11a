/** The source's registry of targets: positions (trailing the targets' own) and states. */
import type pg from 'pg';

import { ident } from '../config/identifiers.js';
import type { TargetState } from '../lib/events.js';
import { fromStored, positionAt, takeTick, toStored, type Position, type StoredPosition } from './window.js';

/**
 * Register the configured targets that are new (they follow from now) and mark the ones no longer
 * configured as removed: a removed target keeps holding the log until it is dropped, so that adding
 * it back resumes where it was.
 */
export async function registerTargets(
  client: pg.ClientBase,
  schema: string,
  names: readonly string[],
): Promise<{ added: string[]; removed: string[] }> {
  const s = ident(schema);
  const known = await client.query<{ name: string; state: TargetState }>(
    `select name, state from ${s}.target`,
  );
  const existing = new Map(known.rows.map((r) => [r.name, r.state]));
  const added: string[] = [];
  for (const name of names) {
    if (existing.get(name) === 'removed') {
      await client.query(`update ${s}.target set state = 'catching_up', updated_at = now() where name = $1`, [
        name,
      ]);
    } else if (!existing.has(name)) {
      const p = toStored(positionAt(await takeTick(client, schema)));
      await client.query(
        `insert into ${s}.target (name, from_snapshot, from_id_bound) values ($1, $2, $3) on conflict (name) do nothing`,
        [name, p.from_snapshot, p.from_id_bound],
      );
      added.push(name);
    }
  }
  const removed = [...existing.keys()].filter((n) => !names.includes(n) && existing.get(n) !== 'removed');
  if (removed.length > 0) {
    await client.query(
      `update ${s}.target set state = 'removed', updated_at = now() where name = any($1::text[])`,
      [removed],
    );
  }
  return { added, removed };
}

export async function loadRegisteredPosition(
  client: pg.ClientBase,
  schema: string,
  name: string,
): Promise<{ position: Position; state: TargetState } | undefined> {
  const result = await client.query<StoredPosition & { state: TargetState }>(
    `select state, from_snapshot::text, from_id_bound, to_snapshot::text, to_id_bound, to_id_ceiling, applied_id
       from ${ident(schema)}.target where name = $1`,
    [name],
  );
  const row = result.rows[0];
  return row === undefined ? undefined : { position: fromStored(row), state: row.state };
}

/** Update the source's copy of a target's position after the target committed it. */
export async function saveRegisteredPosition(
  client: pg.ClientBase,
  schema: string,
  name: string,
  position: Position,
  state: TargetState,
  appliedChanges: number,
): Promise<void> {
  const p = toStored(position);
  await client.query(
    `update ${ident(schema)}.target set
       from_snapshot = $2::pg_snapshot, from_id_bound = $3, to_snapshot = $4::pg_snapshot, to_id_bound = $5,
       to_id_ceiling = $6, applied_id = $7, state = $8,
       applied_changes = applied_changes + $9,
       last_applied_at = case when $9 > 0 then now() else last_applied_at end,
       last_error = case when $8 in ('live', 'catching_up') then null else last_error end,
       parked_since = null, updated_at = now()
     where name = $1`,
    [
      name,
      p.from_snapshot,
      p.from_id_bound,
      p.to_snapshot,
      p.to_id_bound,
      p.to_id_ceiling,
      p.applied_id,
      state,
      appliedChanges,
    ],
  );
}

export async function saveTargetError(
  client: pg.ClientBase,
  schema: string,
  name: string,
  message: string,
): Promise<void> {
  await client.query(
    `update ${ident(schema)}.target set last_error = $2, updated_at = now() where name = $1`,
    [name, message],
  );
}
