/**
 * The doorbell's other end: a dedicated LISTEN connection that wakes the workers when the source
 * rings, and arms the doorbell again when a worker goes idle. It also hears operator commands. NOTIFY is a hint, never the truth:
 * after every (re)connect the workers are woken to read from their positions, and they poll anyway.
 * Every 250 ms it also looks for a ring that sent no notification, and, on a source whose writers never
 * ring (one that can prepare transactions: sql/source/014), for new changes in the log.
 */
import type pg from 'pg';

import { ident } from '../config/identifiers.js';
import type { Config } from '../config/types.js';
import { HeldConnection } from '../db/held-connection.js';
import type { TermFence } from '../db/term-fence.js';
import { coerceError } from '../failure/errors.js';
import type { Logger } from '../lib/logger.js';
import { Runnable } from '../lib/runnable.js';
import { doorbellChannel } from '../capture/migrations.js';
import { controlChannel, parseControl, type ControlCommand } from '../operator/control.js';

/** How often the LISTEN connection checks the doorbell (or the log); the check proves it alive too. */
const doorbellCheckMs = 250;

export class LogListener extends Runnable {
  readonly name = 'listener';
  /** The LISTEN connection, once set up. */
  private held: HeldConnection | undefined;
  /** What we last set the doorbell to; a notification means a writer disarmed it. */
  private armed = false;
  /** Doorbell notifications heard so far: tells whether one arrived while we were arming. */
  private rings = 0;
  private arming: Promise<void> | undefined;
  /** False where the source can prepare transactions: a NOTIFY would fail the writer's PREPARE. */
  private writersRing = true;
  /** Where writers do not ring: the change log's last id at the previous check... */
  private lastId: string | undefined;
  /** ...and the transactions open when it moved, any of which may have drawn an id and not committed. */
  private drawers = new Set<bigint>();

  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
    /** Its connection is a session of the leader's term. */
    private readonly fence: TermFence,
    /** Called on every doorbell notification and after every (re)connect. */
    private readonly onWake: () => void,
    /** Called with each operator command (trigsync retry, skip). */
    private readonly onControl: (command: ControlCommand) => void,
  ) {
    super(config.retry);
  }

  protected async loop(signal: AbortSignal): Promise<void> {
    await this.retrying(
      () => this.listen(signal),
      (thrown) => {
        this.logger.warn({ err: coerceError(thrown).message }, 'listen connection lost; reconnecting');
      },
    );
  }

  /** One LISTEN session: set up, wake the workers, then check the doorbell (or the log) until it is lost. */
  private async listen(signal: AbortSignal): Promise<void> {
    const held = await HeldConnection.open(() => this.fence.connect(), this.config, 'listen connection');
    try {
      const client = held.client;
      const control = controlChannel(this.config.schema);
      client.on('notification', (message) => {
        if (message.channel === control) {
          const command = parseControl(message.payload);
          if (command !== undefined) this.onControl(command);
          return;
        }
        this.rings++;
        this.armed = false;
        this.onWake();
      });
      await client.query(`listen ${ident(doorbellChannel(this.config.schema))}; listen ${ident(control)}`);
      // The same test as the doorbell's ring() (sql/source/014); fixed until the server restarts, which
      // ends this connection.
      const prepares = await client.query<{ prepares: boolean }>(
        `select current_setting('max_prepared_transactions')::int > 0 as prepares`,
      );
      this.writersRing = prepares.rows[0]?.prepares !== true;
      this.lastId = undefined;
      this.drawers.clear();
      this.held = held;
      this.armed = false;
      this.resetBackoff();
      this.onWake();
      // The check proves the connection alive; a lost one throws, and the loop reconnects after a backoff.
      await held.checkEvery(doorbellCheckMs, signal, (c) =>
        this.writersRing ? this.checkRung(c) : this.checkLog(c),
      );
    } finally {
      if (this.held === held) this.held = undefined;
      this.armed = false;
      await held.close();
    }
  }

  /** Arm the doorbell unless it is known to be armed; concurrent callers share one update. */
  arm(): Promise<void> {
    // Where writers never ring, the log is checked instead (checkLog) and the doorbell is not read.
    if (this.armed || !this.writersRing) return Promise.resolve();
    this.arming ??= this.armOnce().finally(() => {
      this.arming = undefined;
    });
    return this.arming;
  }

  private async armOnce(): Promise<void> {
    const client = this.held?.client;
    if (client === undefined) return; // not listening: the poll interval covers it
    const ringsBefore = this.rings;
    // is_called false: pg_sequence_last_value() reads NULL until a writer draws 1 and rings
    // (sql/source/014).
    await client.query('select setval($1::regclass, 1, false)', [this.doorbell()]);
    // A writer may ring right after the setval, and its notification may arrive in the same read as the
    // reply and be handled first: then the doorbell is disarmed already, and must not be marked armed,
    // or no worker would ever arm it again. (A writer that rings and rolls back disarms it silently;
    // checkRung() finds that.)
    if (this.rings === ringsBefore) this.armed = true;
  }

  private doorbell(): string {
    return `${ident(this.config.schema)}.doorbell`;
  }

  /**
   * A writer that rings and then rolls back draws a ring (sequences are not transactional) but sends no
   * notification (NOTIFY is): every later writer finds the doorbell rung, and none would ring until the
   * workers' poll.
   */
  private async checkRung(client: pg.Client): Promise<void> {
    const result = await client.query<{ rung: boolean }>(
      'select pg_sequence_last_value($1::regclass) is not null as rung',
      [this.doorbell()],
    );
    // Still armed after the reply: no notification came meanwhile, and no arming is under way (it would
    // have queued its setval behind this query). A ring by a transaction still open wakes the workers
    // early, for nothing: they arm again, and its notification wakes them at its commit.
    if (result.rows[0]?.rung === true && this.armed) {
      this.armed = false;
      this.onWake();
    }
  }

  /**
   * Where writers do not ring: wake the workers when the change log's last id moved, and again whenever a
   * transaction that may have drawn an id by then ends. An id is drawn at the insert, not at the commit,
   * and a prepared transaction may commit long after its PREPARE: the workers woken by its id would find
   * nothing yet, and nothing would wake them at its commit.
   */
  private async checkLog(client: pg.Client): Promise<void> {
    // pg_sequence_last_value(), not `select last_value from` (src/changelog/window.ts).
    const last = await client.query<{ id: string | null }>(
      'select pg_sequence_last_value($1::regclass)::text as id',
      [`${ident(this.config.schema)}.change_log_id_seq`],
    );
    const id = last.rows[0]?.id ?? '0';
    // The first check after a (re)connect counts as a move: transactions open since before are watched.
    const moved = id !== this.lastId;
    // Taken after the id was read: a transaction that drew it, being older, has ended, or is in the
    // snapshot's xip list, or is at or above its xmax (the last completed xid + 1: the newest open
    // transactions sit there) and below an xid drawn now. Drawing one costs an xid: only when the id moved.
    const now = await client.query<{ snapshot: string; next: string | null }>(
      `select pg_current_snapshot()::text as snapshot,
              case when $1 then pg_current_xact_id()::text end as next`,
      [moved],
    );
    const [, xmaxText, xipText] = now.rows[0]!.snapshot.split(':');
    const xmax = BigInt(xmaxText!);
    const open = new Set(
      xipText!
        .split(',')
        .filter((xid) => xid !== '')
        .map(BigInt),
    );
    let wake = false;
    for (const xid of this.drawers) {
      if (xid >= xmax || open.has(xid)) continue; // still open
      this.drawers.delete(xid);
      wake = true;
    }
    if (moved) {
      this.lastId = id;
      const next = BigInt(now.rows[0]!.next!);
      for (const xid of open) this.drawers.add(xid);
      for (let xid = xmax; xid < next; xid++) this.drawers.add(xid);
      wake = true;
    }
    if (wake) this.onWake();
  }
}
