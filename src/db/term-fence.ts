/**
 * The leader's lock and the fence around its term (src/daemon/leadership.ts).
 *
 * The leader of a group holds a session advisory lock on the source, one per group (each group of
 * daemons leads its own targets). Every other source session of its term (the
 * workers', the listener's, the pruner's, the capture watcher's, the install's) joins the term first: it
 * takes a shared advisory lock keyed by the leader's lock session, and checks that this session still
 * holds the leader's lock. A standby that finds the leader's lock session silent (the process stopped or
 * hung) ends that session and every session of its term, with no privilege beyond its own role's. When
 * the old process resumes, its sessions are gone and every new one fails to join: it writes nothing.
 */
import type pg from 'pg';

import { defaultGroup, type Config } from '../config/types.js';
import { TrigsyncError } from '../failure/errors.js';
import { connect, daemonConnectOptions } from './connect.js';

/** This session joined a term whose leader no longer holds the lock: wait, the term is ending. */
export class TermEnded extends TrigsyncError {
  constructor() {
    super('this daemon no longer leads (a standby deposed it, or its lock session ended)', 'connection');
  }
}

/** The advisory locks of this database with the given two keys (SQL over `pg_locks l`). */
function advisoryLock(key1: string, key2: string): string {
  return `l.locktype = 'advisory' and l.objsubid = 2 and l.granted
          and l.database = (select oid from pg_database where datname = current_database())
          and l.classid = ${key1} and l.objid = ${key2}`;
}

/** Whose leader: the daemons of one group on trigsync's schema of one source. */
export interface LeaderKey {
  schema: string;
  group: string;
}

/**
 * The text the first key of a group's leader lock hashes. The default group keeps the key trigsync had
 * before groups, so that daemons of either version see each other's lock while they are upgraded.
 */
export function leaderLockName(group: string): string {
  return group === defaultGroup ? 'trigsync leader' : `trigsync leader ${group}`;
}

/**
 * The leader's lock of a group, held (SQL over `pg_locks l`): `$name` binds leaderLockName(), `$schema`
 * trigsync's schema.
 */
export function leaderLockHeld(name: string, schema: string): string {
  return advisoryLock(`hashtext(${name})::oid`, `hashtext(${schema})::oid`);
}

/** The leader's lock of `$1` (leaderLockName) and `$2` (the schema). */
const leaderLock = leaderLockHeld('$1', '$2');

/** Take the group's leader lock on this session, if no other holds it. */
export async function tryLeaderLock(client: pg.ClientBase, key: LeaderKey): Promise<boolean> {
  const result = await client.query<{ locked: boolean }>(
    `select pg_try_advisory_lock(hashtext($1), hashtext($2)) as locked`,
    [leaderLockName(key.group), key.schema],
  );
  return result.rows[0]?.locked === true;
}

/** A term: the leader's lock session, told from a later session with the same pid by its start. */
export interface Term extends LeaderKey {
  lockPid: number;
  lockStartedAt: string;
}

/** The term that the lock session `client` (holding the group's leader lock) leads. */
export async function termOf(client: pg.ClientBase, key: LeaderKey): Promise<Term> {
  const result = await client.query<{ pid: number; started: string }>(
    `select pid, backend_start::text as started from pg_stat_get_activity(pg_backend_pid())`,
  );
  const row = result.rows[0]!;
  return { schema: key.schema, group: key.group, lockPid: row.pid, lockStartedAt: row.started };
}

export class TermFence {
  constructor(
    private readonly config: Config,
    readonly term: Term,
  ) {}

  /** A new source session of this term (daemonConnectOptions), or TermEnded. */
  async connect(): Promise<pg.Client> {
    const client = await connect(this.config.source.url, daemonConnectOptions(this.config));
    try {
      await this.join(client);
    } catch (thrown) {
      await client.end().catch(() => undefined);
      throw thrown;
    }
    return client;
  }

  /** Make `client` a session of this term, or throw TermEnded. */
  async join(client: pg.ClientBase): Promise<void> {
    const { schema, group, lockPid, lockStartedAt } = this.term;
    // The shared lock first: a standby that deposes the leader after this check still finds this session.
    // pg_stat_get_activity(pid), not the pg_stat_activity view (which calls it for every session and
    // joins the databases and roles): on a new backend, as every session joining is, 1-5 ms instead of
    // 3-14 ms, and a fraction of the catalog reads.
    await client.query(`select pg_advisory_lock_shared(hashtext('trigsync term'), $1::int4)`, [lockPid]);
    const result = await client.query<{ leading: boolean }>(
      `select exists (select from pg_locks l join pg_stat_get_activity($3) a on a.pid = l.pid
                       where ${leaderLock} and l.pid = $3 and a.backend_start = $4::timestamptz) as leading`,
      [leaderLockName(group), schema, lockPid, lockStartedAt],
    );
    if (result.rows[0]?.leading !== true) throw new TermEnded();
  }
}

/** The leader's lock session as a standby sees it. */
export interface LeaderSession {
  pid: number;
  /** How long the session has been idle or running one statement; undefined when it cannot be seen. */
  silentMs: number | undefined;
}

export async function leaderSession(
  client: pg.ClientBase,
  key: LeaderKey,
): Promise<LeaderSession | undefined> {
  // state_change moves at every statement the leader runs (one a second, leadership.ts). It is null for a
  // session of another role, and does not move with track_activities off ('disabled'): no verdict then.
  const result = await client.query<{ pid: number; silent_ms: string | null }>(
    `select l.pid,
            case when a.state in ('idle', 'active', 'idle in transaction')
                 then (extract(epoch from clock_timestamp() - a.state_change) * 1000)::int8 end as silent_ms
       from pg_locks l left join pg_stat_activity a on a.pid = l.pid
      where ${leaderLock}`,
    [leaderLockName(key.group), key.schema],
  );
  const row = result.rows[0];
  if (row === undefined) return undefined;
  return { pid: row.pid, silentMs: row.silent_ms === null ? undefined : Number(row.silent_ms) };
}

/**
 * End the group's leader lock session `pid` and every session of its term; returns how many were
 * ended. The server releases the lock as the session exits.
 */
export async function deposeLeader(client: pg.ClientBase, key: LeaderKey, pid: number): Promise<number> {
  const result = await client.query(
    `select pg_terminate_backend(l.pid) from pg_locks l
      where (${leaderLock} and l.pid = $3)
         or (${advisoryLock(`hashtext('trigsync term')::oid`, '$3::int4::oid')})`,
    [leaderLockName(key.group), key.schema, pid],
  );
  return result.rowCount ?? 0;
}
