/** The source's registry of targets: positions (trailing the targets' own) and states. */
import type pg from 'pg';

import { forgetInstallDigests } from '../capture/install-digest.js';
import { ident } from '../config/identifiers.js';
import type { TargetConfig } from '../config/types.js';
import { leaderLockHeld, leaderLockName } from '../db/term-fence.js';
import { ConfigError } from '../failure/errors.js';
import type { TargetState } from '../lib/status-report.js';
import {
  fromStored,
  positionAt,
  positionColumns,
  positionValues,
  takeTick,
  type Position,
  type StoredPosition,
} from './window.js';

/** A target this group took over from another group that no daemon led or that removed it (a rename, a move). */
export interface ClaimedTarget {
  name: string;
  from: string;
}

/**
 * Register the configured targets of `group` that are new (they follow from now, after a copy of
 * every table when their initialSync is `copy`) and mark the group's ones no longer configured as
 * removed: a removed target keeps holding the log until it is dropped, so that adding it back resumes
 * where it was. A target belongs to one group (docs/operations.md, "Groups"): one registered by another
 * group is taken over when it is removed there or no daemon of that group leads (its position is kept),
 * and refused with a ConfigError while that group's leader runs; a group left without targets so is
 * forgotten. Other groups' targets are left alone.
 */
export async function registerTargets(
  client: pg.ClientBase,
  schema: string,
  group: string,
  targets: readonly Pick<TargetConfig, 'name' | 'initialSync'>[],
): Promise<{ added: string[]; removed: string[]; claimed: ClaimedTarget[] }> {
  const names = targets.map((t) => t.name);
  const s = ident(schema);
  const known = await client.query<{ name: string; state: TargetState; group: string }>(
    `select name, state, group_name as group from ${s}.target`,
  );
  const existing = new Map(known.rows.map((r) => [r.name, r.state]));
  const groupOf = new Map(known.rows.map((r) => [r.name, r.group]));
  const added: string[] = [];
  const claimed: ClaimedTarget[] = [];
  const refused: string[] = [];
  for (const { name, initialSync } of targets) {
    const owner = groupOf.get(name);
    if (owner !== undefined && owner !== group) {
      const leader = existing.get(name) === 'removed' ? undefined : await groupLeader(client, schema, owner);
      if (leader !== undefined) {
        refused.push(
          `target ${name}: group ${owner}'s (its leader ${leader} applies to it), not group ${group}'s: a ` +
            `target belongs to one group; remove it from one of the two configs, or to move it, from ` +
            `group ${owner}'s config first and restart that group's daemons`,
        );
        continue;
      }
      await client.query(`update ${s}.target set group_name = $2, updated_at = now() where name = $1`, [
        name,
        group,
      ]);
      claimed.push({ name, from: owner });
    }
    if (existing.get(name) === 'removed') {
      // Back from removal: it parks anew if it fails again.
      await client.query(
        `update ${s}.target set state = 'catching_up', removed_at = null, parked_since = null, updated_at = now()
          where name = $1`,
        [name],
      );
    } else if (!existing.has(name)) {
      const values = positionValues(positionAt(await takeTick(client, schema)));
      await client.query(
        `insert into ${s}.target (name, group_name, sync_tables, sync_requested_at, ${positionColumns.join(', ')})
         values ($1, $2, $3, case when $3::text[] is not null then now() end,
                 ${positionColumns.map((_, i) => `$${i + 4}`).join(', ')})
         on conflict (name) do nothing`,
        [name, group, initialSync === 'copy' ? [] : null, ...values],
      );
      added.push(name);
    }
  }
  if (refused.length > 0) throw new ConfigError(refused);
  // The groups whose targets were claimed: their next installs find their registry changed.
  if (claimed.length > 0)
    await forgetInstallDigests(client, schema, [...new Set(claimed.map((c) => c.from))]);
  // A group left without targets and leader by the takeover was renamed: forget its leader row and
  // the tables it listed, so that status and `uninstall --table` no longer count it. Started again, its
  // daemons record it anew.
  for (const from of new Set(claimed.map((c) => c.from))) {
    const left = await client.query(`select from ${s}.target where group_name = $1`, [from]);
    if (left.rowCount !== 0 || (await groupLeader(client, schema, from)) !== undefined) continue;
    await client.query(`delete from ${s}.group_table where group_name = $1`, [from]);
    await client.query(`delete from ${s}.leader where group_name = $1`, [from]);
  }
  const removed = [...existing.keys()].filter(
    (n) => groupOf.get(n) === group && !names.includes(n) && existing.get(n) !== 'removed',
  );
  if (removed.length > 0) {
    await client.query(
      // Not updated_at: status takes that for a daemon's last sign of life, and `install` removes too.
      `update ${s}.target set state = 'removed', removed_at = now() where name = any($1::text[])`,
      [removed],
    );
  }
  return { added, removed, claimed };
}

/** What to say about a target this group took over. */
export function claimedMessage(claimed: ClaimedTarget, group: string): string {
  return (
    `target ${claimed.name}: taken over from group ${claimed.from} (no daemon of it leads, or its config ` +
    `no longer lists the target); group ${group} applies to it from its position`
  );
}

/** The daemon leading `group` now (host:pid), or undefined when none holds its lock. */
async function groupLeader(
  client: pg.ClientBase,
  schema: string,
  group: string,
): Promise<string | undefined> {
  const result = await client.query<{ daemon: string }>(
    `select coalesce((select daemon from ${ident(schema)}.leader where group_name = $3 and backend_pid = l.pid),
                     'pid ' || l.pid) as daemon
       from pg_locks l where ${leaderLockHeld('$1', '$2')}`,
    [leaderLockName(group), schema, group],
  );
  return result.rows[0]?.daemon;
}

export async function loadRegisteredPosition(
  client: pg.ClientBase,
  schema: string,
  name: string,
): Promise<{ position: Position; state: TargetState; appliedChanges: number } | undefined> {
  const result = await client.query<StoredPosition & { state: TargetState; applied_changes: string }>(
    `select state, applied_changes, ${positionColumns.map((c) => `${c}::text as ${c}`).join(', ')}
       from ${ident(schema)}.target where name = $1`,
    [name],
  );
  const row = result.rows[0];
  return row === undefined
    ? undefined
    : { position: fromStored(row), state: row.state, appliedChanges: Number(row.applied_changes) };
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
  // Parameters: $1 name, $2 state, $3 changes applied, then the position's columns in order.
  const assignments = positionColumns.map((c, i) => `${c} = $${i + 4}`).join(', ');
  // Committed without waiting for the WAL flush (a worker does this after every batch): lost in a crash,
  // the copy is only behind the target's own record, which is what it may be. The pruner goes by the copy,
  // and a prune that saw it comes later in the WAL: a crash that loses the copy loses that prune too.
  await client.query(
    `with relaxed as (select set_config('synchronous_commit', 'off', true))
     update ${ident(schema)}.target set ${assignments},
       state = $2, applied_changes = applied_changes + $3,
       last_applied_at = case when $3 > 0 then now() else last_applied_at end,
       last_error = case when $2 in ('live', 'catching_up') then null else last_error end,
       parked_since = null, updated_at = now()
      from relaxed
     where name = $1`,
    [name, state, appliedChanges, ...positionValues(position)],
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

/** A sync asked of a target: these source tables (empty: all of its tables), asked at that time. */

/** A target's pause as the source records it (sql/source/024). */
export interface TargetPause {
  /** The target is registered on the source. */
  registered: boolean;
  /** When it was paused and by whom; undefined when it is not paused. */
  since?: string;
  by?: string;
}

/**
 * Pause (`paused`) or resume a target on the source. The pause keeps its first time and role: pausing
 * a paused target changes nothing. Returns the pause as it stood before.
 */
export async function setTargetPaused(
  client: pg.ClientBase,
  schema: string,
  name: string,
  paused: boolean,
): Promise<TargetPause> {
  const result = await client.query<{ since: Date | null; by: string | null }>(
    `with before as (select paused_at, paused_by from ${ident(schema)}.target where name = $1 for update)
     update ${ident(schema)}.target t
        set paused_at = case when $2 then coalesce(t.paused_at, now()) end,
            paused_by = case when $2 then coalesce(t.paused_by, current_user) end,
            updated_at = case when (t.paused_at is null) = $2 then now() else t.updated_at end
       from before
      where t.name = $1
      returning before.paused_at as since, before.paused_by as by`,
    [name, paused],
  );
  const row = result.rows[0];
  if (row === undefined) return { registered: false };
  if (row.since === null) return { registered: true };
  return { registered: true, since: row.since.toISOString(), by: row.by ?? '' };
}

/** Whether an operator paused the target (false for one not registered). */
export async function loadTargetPaused(
  client: pg.ClientBase,
  schema: string,
  name: string,
): Promise<boolean> {
  const result = await client.query<{ paused: boolean }>(
    `select paused_at is not null as paused from ${ident(schema)}.target where name = $1`,
    [name],
  );
  return result.rows[0]?.paused === true;
}
