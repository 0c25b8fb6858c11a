/**
 * Leader election among daemons configured for one source and group (`group` in the config; each group
 * of a source elects its own leader for its own targets): the holder of the group's session advisory
 * lock on the source works (workers, listener, pruner); the others stand by and try the lock again every
 * half second.
 * When the leader dies its session ends and the server releases the lock, so a standby takes over within
 * half a second or so; when the leader loses its own lock connection it stops working before it tries again.
 *
 * A leader that hangs (SIGSTOP, a stalled host) keeps its session and the lock. So the leader runs a
 * statement on its lock session every second, which standbys see move in pg_stat_activity; a standby
 * that sees it silent for `leaderTimeoutMs` ends the session and every other source session of the term
 * (src/db/term-fence.ts), then takes the lock. Sessions the old process opens when it resumes cannot join
 * the ended term, and on the targets each worker's lock (src/apply/target-lock.ts) is taken over by the
 * new leader's: two daemons never apply to one target. The leader's own check of its lock session
 * (src/db/held-connection.ts) gives up after the same `leaderTimeoutMs`, and ends its term.
 */
import { hostname } from 'node:os';
import type pg from 'pg';

import { ident } from '../config/identifiers.js';
import type { Config } from '../config/types.js';
import { connect, daemonConnectOptions, type EarlyConnection } from '../db/connect.js';
import { HeldConnection } from '../db/held-connection.js';
import {
  deposeLeader,
  leaderSession,
  termOf,
  TermFence,
  tryLeaderLock,
  type LeaderKey,
} from '../db/term-fence.js';
import { classifyError, coerceError } from '../failure/errors.js';
import type { TrigsyncEvents } from '../lib/events.js';
import type { Logger } from '../lib/logger.js';
import { Runnable } from '../lib/runnable.js';

/** How often the leader proves its lock connection alive (the heartbeat standbys watch). */
const leaderCheckMs = 1_000;
/** Every this many checks, the check records the leader's heartbeat: a write every 10 s, not every second. */
const seenEveryChecks = 10;
/** How often a standby tries the lock: after a leader's crash, a takeover within half a second. */
const standbyTryMs = 500;

/** This process, as status shows it: host and pid. */
export const daemonIdentity = `${hostname()}:${process.pid}`;

export interface LeaderTerm {
  /**
   * Start working as leader, every source session joined to `fence`; a configuration error thrown here
   * stops the daemon.
   */
  begin: (fence: TermFence) => Promise<void>;
  /** Stop working; resolves once every batch in flight has committed or rolled back. */
  end: () => Promise<void>;
}

export class Leadership extends Runnable {
  readonly name = 'leadership';
  private leading = false;
  /** The server process of a lock connection given up while leading: the next connection ends it. */
  private abandoned: number | undefined;
  /** "standing by" is logged once, until this daemon leads. */
  private standingByLogged = false;
  /** Why the current term is to end and the next to begin at once (renew); undefined: it is not. */
  private renewal: string | undefined;
  /** The term's start (install, then the parts), which must settle before the term can end. */
  private beginning: Promise<void> | undefined;
  private decide!: (failure?: Error) => void;
  /**
   * Settles at the first outcome: this daemon began a term, or it stands by, or it was stopped; rejects
   * with the configuration error that ends it.
   */
  readonly decided = new Promise<void>((resolve, reject) => {
    this.decide = (failure) => (failure === undefined ? resolve() : reject(failure));
  });

  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
    private readonly events: TrigsyncEvents,
    private readonly term: LeaderTerm,
    /** The first lock connection, opened while the daemon checked its config. */
    private readonly early?: EarlyConnection,
  ) {
    super(config.retry);
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /**
   * End the current term within a second and begin the next (the install, then the parts anew), as a
   * restart would: for what a term cannot follow while it runs, such as a captured table created again
   * under its name. Nothing if this daemon does not lead.
   */
  renew(reason: string): void {
    if (this.leading) this.renewal ??= reason;
  }

  /** The lock this daemon stands for: its group's on its source. */
  private get key(): LeaderKey {
    return { schema: this.config.schema, group: this.config.group };
  }

  protected async loop(signal: AbortSignal): Promise<void> {
    try {
      await this.retrying(
        () => this.stand(signal),
        (thrown) => {
          // A configuration error ends the daemon: `retrying` rejects with it.
          if (classifyError(thrown) === 'config') throw coerceError(thrown);
          // Once per outage at warn; the retries after it at debug.
          const level = this.retriesSinceReset === 0 ? 'warn' : 'debug';
          this.logger[level](
            { err: coerceError(thrown).message },
            'leadership: lost or could not begin a term',
          );
        },
      );
    } catch (fatal) {
      this.decide(coerceError(fatal));
      throw fatal;
    }
    this.decide();
  }

  /** One lock connection: stand by until the lock is ours, then lead until it is lost or we stop. */
  private async stand(signal: AbortSignal): Promise<void> {
    const held = await HeldConnection.open(
      () => this.early?.take() ?? connect(this.config.source.url, daemonConnectOptions(this.config)),
      this.config,
      'lock connection',
    );
    try {
      this.resetBackoff();
      if (this.abandoned !== undefined)
        await endAbandonedSession(held.client, this.abandoned, this.config.applicationName);
      this.abandoned = undefined;
      await held.checkEvery(standbyTryMs, signal, async (client) => {
        if (await tryLeaderLock(client, this.key)) return true;
        if (!this.standingByLogged) this.logger.info('another daemon leads; standing by');
        this.standingByLogged = true;
        this.decide();
        await this.deposeIfSilent(client);
        return false;
      });
      if (!this.shouldRun()) return;
      this.standingByLogged = false;
      await this.lead(held, signal);
    } finally {
      // A lock connection given up while leading may be half-open: the server still holds its
      // session, and the lock with it, until its own keepalive notices (hours by default).
      if (this.leading) this.abandoned = held.pid;
      await this.resign();
      await held.close();
    }
  }

  /** Standing by: a leader whose lock session has been silent too long is hung; end its term. */
  private async deposeIfSilent(client: pg.Client): Promise<void> {
    const leader = await leaderSession(client, this.key);
    if (leader?.silentMs === undefined || leader.silentMs < this.config.leaderTimeoutMs) return;
    const ended = await deposeLeader(client, this.key, leader.pid);
    this.logger.warn(
      { silentMs: leader.silentMs, pid: leader.pid, sessions: ended },
      'the leader is silent; ended its sessions to take over',
    );
  }

  /**
   * Holding the lock: work (the term installs first), record who leads, and prove the lock session
   * alive every second, from the first moment on (standbys watch it; installing may take a while).
   */
  private async lead(held: HeldConnection, signal: AbortSignal): Promise<void> {
    this.leading = true;
    const fence = new TermFence(this.config, await termOf(held.client, this.key));
    let failure: Error | undefined;
    let begun = false;
    this.beginning = this.begin(held.client, fence).then(
      () => void (begun = true),
      (thrown: unknown) => void (failure = coerceError(thrown)),
    );
    let checks = 0;
    this.renewal = undefined;
    await held.checkEvery(leaderCheckMs, signal, async (client) => {
      if (failure !== undefined) throw failure;
      if (this.renewal !== undefined && begun) throw new Error(`the term begins again: ${this.renewal}`);
      // Now and then, once the term has begun (the schema is current, the leader row written), the check
      // is the leader's heartbeat: what `status` shows as last seen once no daemon runs (src/changelog/status.ts).
      if (!begun || checks++ % seenEveryChecks !== 0) return void (await client.query('select 1'));
      await client.query(
        `update ${ident(this.config.schema)}.leader set seen_at = clock_timestamp()
          where group_name = $1 and backend_pid = pg_backend_pid()`,
        [this.config.group],
      );
    });
  }

  private async begin(client: pg.Client, fence: TermFence): Promise<void> {
    await this.term.begin(fence);
    const s = ident(this.config.schema);
    await client.query(
      `insert into ${s}.leader (group_name, daemon, backend_pid) values ($1, $2, pg_backend_pid())
       on conflict (group_name) do update set daemon = excluded.daemon, backend_pid = excluded.backend_pid,
                                              since = clock_timestamp()`,
      [this.config.group, daemonIdentity],
    );
    this.events.emit('leader:changed', { leader: true, daemon: daemonIdentity });
    this.logger.info({ daemon: daemonIdentity, group: this.config.group }, 'leading: this daemon applies');
    this.decide();
  }

  /** Stop working, if we were; the lock goes with the connection the caller closes next. */
  private async resign(): Promise<void> {
    if (!this.leading) return;
    // A term still starting ends once started: its parts exist by then.
    await this.beginning;
    this.beginning = undefined;
    await this.term.end();
    this.leading = false;
    this.events.emit('leader:changed', { leader: false, daemon: daemonIdentity });
    this.logger.info('no longer leading');
  }
}

/**
 * Terminate this daemon's former lock session if the server still runs it: it is ours (we closed our
 * end), and while it lives it holds the leader's lock that this daemon, or a standby, needs. Same role,
 * so no privilege is needed.
 */
async function endAbandonedSession(client: pg.Client, pid: number, applicationName: string): Promise<void> {
  await client.query(
    `select pg_terminate_backend(pid) from pg_stat_activity
      where pid = $1 and usename = current_user and application_name = $2`,
    [pid, applicationName],
  );
}
