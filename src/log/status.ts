/** What `status` reports: per target its state, backlog and lag, read from the source alone. */
import type pg from 'pg';

import { capturedNotInConfig, tablesToCopy } from '../capture/table-set.js';
import { ident, qualifiedIdent } from '../config/identifiers.js';
import type { Config } from '../config/types.js';
import type { TargetState } from '../lib/events.js';
import { readSequenceStatus, type SequenceStatus } from './sequence-state.js';

export interface TargetStatus {
  name: string;
  state: TargetState;
  /** Changes captured and not yet applied; 0 exactly when the target has applied everything. */
  backlog: number;
  /** Age of the oldest change not yet applied; 0 when none. */
  lagSeconds: number;
  errorQueue: number;
  lastError: string | null;
  /** When the target was parked, while it is. */
  parkedSince: string | null;
  lastAppliedAt: string | null;
  configured: boolean;
  /** Tables the target takes and may lack rows or changes of, since when: `trigsync sync` copies them. */
  toCopy: { table: string; since: string }[];
  /** Replicated sequences: the source's value now, the target's as its worker last set it (sequence-state.ts). */
  sequences: SequenceStatus[];
  /** A copy asked of the target (`sync`, initialSync, a table added) and not done yet; null when none. */
  copying: CopyStatus | null;
}

export interface CopyStatus {
  /** The tables asked for; empty: every table of the target. */
  tables: string[];
  requestedAt: string;
  /** The table being copied now and its rows so far (of about `estimate`); null before the copy begins. */
  table: string | null;
  rows: number | null;
  estimate: number | null;
}

export interface Status {
  targets: TargetStatus[];
  log: { rows: number };
  /** Captured tables this config does not list (another config's, or removed from this one): still captured. */
  notInConfig: string[];
  /** The daemon that holds the leader's lock now (src/daemon/leadership.ts); null when none runs. */
  leader: { daemon: string; since: string } | null;
}

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
    state: TargetState;
    last_error: string | null;
    last_applied_at: Date | null;
    parked_since: Date | null;
    error_queue: number;
    sync_tables: string[] | null;
    sync_requested_at: Date | null;
    sync_table: string | null;
    sync_rows: string | null;
    sync_rows_estimate: string | null;
  }>(
    `select t.name, t.state, t.last_error, t.last_applied_at, t.parked_since, t.sync_tables,
            t.sync_requested_at, t.sync_table, t.sync_rows, t.sync_rows_estimate,
            (select count(*) from ${s}.error_queue e where e.target = t.name) as error_queue
       from ${s}.target t order by t.name`,
  );
  const toCopy = await tablesToCopy(client, config.schema);
  const sequences = await readSequenceStatus(client, config.schema);
  const statuses: TargetStatus[] = [];
  for (const t of targets.rows) {
    const relids = relidsOf.get(t.name);
    // A target gone from the config holds the log for every captured table.
    const backlog = await client.query<{ backlog: number; lag: number | null }>(
      `select count(*) as backlog, extract(epoch from clock_timestamp() - min(c.captured_at))::float8 as lag
         from ${s}.target t
         join ${s}.change_log c
           on c.txid >= pg_snapshot_xmin(t.from_snapshot)
          and pg_visible_in_snapshot(c.txid, pg_current_snapshot())
          and not pg_visible_in_snapshot(c.txid, t.from_snapshot)
          and not (t.to_snapshot is not null and pg_visible_in_snapshot(c.txid, t.to_snapshot) and c.id <= t.applied_id)
        where t.name = $1 and ($2::oid[] is null or c.relid = any($2::oid[]))`,
      [t.name, relids ?? null],
    );
    const row = backlog.rows[0];
    statuses.push({
      name: t.name,
      state: t.state,
      backlog: row?.backlog ?? 0,
      lagSeconds: row?.backlog === 0 ? 0 : Math.max(0, row?.lag ?? 0),
      errorQueue: t.error_queue,
      lastError: t.last_error,
      parkedSince: t.parked_since?.toISOString() ?? null,
      lastAppliedAt: t.last_applied_at?.toISOString() ?? null,
      configured: relids !== undefined,
      toCopy: toCopy.filter((g) => g.target === t.name).map(({ table, since }) => ({ table, since })),
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
  // The row is the leader only while its session still holds the lock: a killed leader leaves history.
  // pg_locks shows the two int4 keys of pg_try_advisory_lock(int4, int4) as unsigned oids.
  const leader = await client.query<{ daemon: string; since: Date }>(
    `select l.daemon, l.since from ${s}.leader l
      where exists (
        select 1 from pg_locks k
         where k.locktype = 'advisory' and k.pid = l.backend_pid and k.granted and k.objsubid = 2
           and k.database = (select oid from pg_database where datname = current_database())
           and k.classid = oid(hashtext('trigsync leader')::int8 & 4294967295)
           and k.objid = oid(hashtext($1)::int8 & 4294967295))`,
    [config.schema],
  );
  const holder = leader.rows[0];
  return {
    targets: statuses,
    log: { rows: rows.rows[0]?.rows ?? 0 },
    notInConfig: await capturedNotInConfig(client, config),
    leader: holder === undefined ? null : { daemon: holder.daemon, since: holder.since.toISOString() },
  };
}
