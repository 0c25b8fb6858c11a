/** What `status` reports: per target its state, backlog and lag, read from the source alone. */
import type pg from 'pg';

import { capturedNotInConfig, tablesToCopy } from '../capture/table-set.js';
import { ident, qualifiedIdent, sqlLiteral } from '../config/identifiers.js';
import { defaultGroup, type Config } from '../config/types.js';
import { leaderLockHeld, leaderLockName } from '../db/term-fence.js';
import type { DaemonStatus, Status, TargetState, TargetStatus } from '../lib/status-report.js';
import { pendingSql } from './applied-by.js';
import { readSequenceStatus } from './sequence-state.js';
import { relationExists } from '../db/relation-exists.js';

export async function readStatus(client: pg.ClientBase, config: Config): Promise<Status> {
  const s = ident(config.schema);
  const relidsOf = new Map<string, number[]>();
  for (const target of config.targets) {
    const names = target.tables.map((t) => qualifiedIdent(t.source));
    const result = await client.query<{ relids: number[] }>(
      `select coalesce(array_agg(to_regclass(n)::oid::int8) filter (where to_regclass(n) is not null), '{}') as relids
         from unnest($1::text[]) as n`,
      [names],
    );
    relidsOf.set(target.name, (result.rows[0]?.relids ?? []).map(Number));
  }
  const targets = await client.query<{
    name: string;
    group: string;
    state: TargetState;
    last_error: string | null;
    last_applied_at: Date | null;
    parked_since: Date | null;
    removed_at: Date | null;
    paused_at: Date | null;
    updated_at: Date;
    error_queue: number;
    sync_tables: string[] | null;
    sync_requested_at: Date | null;
    sync_table: string | null;
    sync_rows: string | null;
    sync_rows_estimate: string | null;
    from_snapshot: string;
    to_snapshot: string | null;
    applied_id: number;
  }>(
    `select t.name, ${groupOf('t')} as group, t.state, t.last_error, t.last_applied_at, t.parked_since,
            ${addedTimestamp('t', 'removed_at')} as removed_at, ${addedTimestamp('t', 'paused_at')} as paused_at, t.updated_at, t.sync_tables,
            t.sync_requested_at, t.sync_table, t.sync_rows, t.sync_rows_estimate,
            (select count(*) from ${s}.error_queue e where e.target = t.name) as error_queue,
            t.from_snapshot::text as from_snapshot, t.to_snapshot::text as to_snapshot, t.applied_id
       from ${s}.target t order by t.name`,
  );
  const toCopy = await tablesToCopy(client, config.schema);
  const sequences = await readSequenceStatus(client, config.schema);
  // Targets at one position over the same tables have one backlog: counted once (fan-out keeps many
  // targets at one position, and the status sampler counts every second).
  const atPosition = new Map<string, { position: (typeof targets.rows)[number]; names: string[] }>();
  for (const t of targets.rows) {
    const key = JSON.stringify([t.from_snapshot, t.to_snapshot, t.applied_id, relidsOf.get(t.name) ?? null]);
    const same = atPosition.get(key) ?? { position: t, names: [] };
    same.names.push(t.name);
    atPosition.set(key, same);
  }
  const backlogs = new Map<string, { backlog: number; lag: number | null }>();
  // The backlog: the changes the source sees now that the position read above has not applied. That
  // position, not the target's row read again: a target that shared it may have moved on meanwhile, and
  // its backlog (0, say) is not the others' (seen: a status that said "caught up" of a target 5,744
  // changes behind, read as one position with a faster one). Those older than from's xmin are all
  // visible in `from`: the txid index starts there.
  const notApplied = pendingSql('pg_current_snapshot()', {
    fromSnapshot: '$1::pg_snapshot',
    toSnapshot: '$2::pg_snapshot',
    appliedId: '$3::int8',
  });
  for (const { position, names } of atPosition.values()) {
    const relids = relidsOf.get(names[0]!);
    // A target gone from the config holds the log for every captured table.
    const backlog = await client.query<{ backlog: number; lag: number | null }>(
      `select count(*) as backlog, extract(epoch from clock_timestamp() - min(c.captured_at))::float8 as lag
         from ${s}.change_log c
        where c.txid >= pg_snapshot_xmin($1::pg_snapshot)
          and ${notApplied}
          and ($4::oid[] is null or c.relid = any($4::oid[]))`,
      [position.from_snapshot, position.to_snapshot, position.applied_id, relids ?? null],
    );
    for (const name of names) backlogs.set(name, backlog.rows[0] ?? { backlog: 0, lag: null });
  }
  const groups = await readGroups(client, config);
  const running = new Set(groups.filter((g) => g.daemon.running).map((g) => g.name));
  const statuses: TargetStatus[] = [];
  for (const t of targets.rows) {
    const relids = relidsOf.get(t.name);
    const row = backlogs.get(t.name);
    statuses.push({
      name: t.name,
      group: t.group,
      // Paused by an operator: so until resumed, whatever its worker last recorded (unless parked, which
      // is what needs acting on, or removed from the config).
      state: t.paused_at !== null && t.state !== 'parked' && t.state !== 'removed' ? 'paused' : t.state,
      backlog: row?.backlog ?? 0,
      lagSeconds: row?.backlog === 0 ? 0 : Math.max(0, row?.lag ?? 0),
      errorQueue: t.error_queue,
      lastError: t.last_error,
      // A target removed while parked, or added back, keeps the time it parked: not shown then.
      parkedSince: t.state === 'parked' ? (t.parked_since?.toISOString() ?? null) : null,
      removedSince: t.state === 'removed' ? (t.removed_at ?? t.updated_at).toISOString() : null,
      pausedSince: t.paused_at?.toISOString() ?? null,
      recordedAt: t.updated_at.toISOString(),
      current: running.has(t.group),
      lastAppliedAt: t.last_applied_at?.toISOString() ?? null,
      configured: relids !== undefined,
      toCopy: toCopy
        .filter((g) => g.target === t.name)
        .map(({ table, since, why }) => ({ table, since, why })),
      sequences: sequences.get(t.name) ?? [],
      copying:
        t.sync_tables === null
          ? null
          : {
              tables: t.sync_tables,
              requestedAt: (t.sync_requested_at ?? new Date()).toISOString(),
              table: t.sync_table,
              rows: t.sync_rows === null ? null : Number(t.sync_rows),
              estimate: t.sync_rows_estimate === null ? null : Number(t.sync_rows_estimate),
            },
    });
  }
  const rows = await client.query<{ rows: number }>(`select count(*) as rows from ${s}.change_log`);
  const own = groups.find((g) => g.name === config.group);
  return {
    targets: statuses,
    log: { rows: rows.rows[0]?.rows ?? 0 },
    notInConfig: await capturedNotInConfig(client, config),
    leader: own?.leader ?? null,
    daemon: own?.daemon ?? { running: false, lastSeen: null, secondsSinceSeen: null },
    group: config.group,
    groups,
  };
}

/**
 * The group of a row of `target` or `leader`: the default group's on a source that an older trigsync
 * installed (before sql/source/013), which a standby of a newer one samples until it leads.
 */
function groupOf(alias: string): string {
  return `coalesce(to_jsonb(${alias}) ->> 'group_name', ${sqlLiteral(defaultGroup)})`;
}

/**
 * A timestamp column of a row of `target` that later migrations added: null on a source that an older
 * trigsync installed (removed_at: before sql/source/015, where the target's last update stands in;
 * paused_at: before sql/source/024).
 */
function addedTimestamp(alias: string, column: 'removed_at' | 'paused_at'): string {
  return `(to_jsonb(${alias}) ->> '${column}')::timestamptz`;
}

/**
 * The groups the source knows, with the leader of each and whether a daemon of it runs: one holds the
 * group's leader lock (its leader row is written once its term has installed, so a daemon that is
 * installing runs without one yet).
 */
async function readGroups(client: pg.ClientBase, config: Config): Promise<Status['groups']> {
  const s = ident(config.schema);
  const recorded = await relationExists(client, `${s}.group_table`);
  const known = await client.query<{ name: string }>(
    `select ${groupOf('t')} as name from ${s}.target t union select ${groupOf('d')} from ${s}.leader d
     ${recorded ? `union select group_name from ${s}.group_table` : ''}
     union select $1 order by 1`,
    [config.group],
  );
  const names = known.rows.map((r) => r.name);
  // A row is the leader only while its session still holds its group's lock: a killed leader leaves
  // history. The lock session's last statement is the leader's heartbeat (src/daemon/leadership.ts);
  // pg_stat_activity shows it to the same role (or pg_read_all_stats) only.
  const found = await client.query<{
    group: string;
    daemon: string | null;
    since: Date | null;
    running: boolean;
    recorded: boolean;
    last_seen: Date | null;
    seconds: number | null;
  }>(
    `select g.name as group, d.daemon, d.since, h.pid is not null as running,
            coalesce(h.pid = d.backend_pid, false) as recorded, seen.at as last_seen,
            case when h.pid is null or h.heartbeat is not null
                 then extract(epoch from clock_timestamp() - seen.at)::float8 end as seconds
       from unnest($1::text[], $2::text[]) as g (name, lock)
       left join ${s}.leader d on ${groupOf('d')} = g.name
       left join lateral (
         select l.pid,
                case when a.state in ('idle', 'active', 'idle in transaction') then a.state_change end as heartbeat
           from pg_locks l left join pg_stat_activity a on a.pid = l.pid
          where ${leaderLockHeld('g.lock', '$3')} limit 1) h on true
       cross join lateral (
         select case when h.pid is not null then coalesce(h.heartbeat, clock_timestamp())
                     else greatest((to_jsonb(d) ->> 'seen_at')::timestamptz, d.since,
                                   (select max(t.updated_at) from ${s}.target t where ${groupOf('t')} = g.name))
                end as at) seen`,
    [names, names.map(leaderLockName), config.schema],
  );
  const byName = new Map(found.rows.map((r) => [r.group, r]));
  return names.map((name) => {
    const r = byName.get(name);
    const leader =
      r?.recorded === true && r.daemon !== null && r.since !== null
        ? { daemon: r.daemon, since: r.since.toISOString() }
        : null;
    const daemon: DaemonStatus = {
      running: r?.running === true,
      lastSeen: r?.last_seen?.toISOString() ?? null,
      secondsSinceSeen: r?.seconds === null || r?.seconds === undefined ? null : Math.max(0, r.seconds),
    };
    return { name, leader, daemon };
  });
}
