/**
 * The doorbell's other end: a dedicated LISTEN connection that wakes the workers when the source
 * rings, and arms the doorbell again when a worker goes idle. It also hears operator commands. NOTIFY is a hint, never the truth:
 * after every (re)connect the workers are woken to read from their positions, and they poll anyway.
 */
import type pg from 'pg';

import { ident } from '../config/identifiers.js';
import type { Config } from '../config/types.js';
import { connect, daemonConnectOptions } from '../db/connect.js';
import { coerceError } from '../failure/errors.js';
import type { Logger } from '../lib/logger.js';
import { Backoff, Runnable, sleep } from '../lib/runnable.js';
import { doorbellChannel } from '../capture/migrations.js';
import { controlChannel, parseControl, type ControlCommand } from '../failure/control.js';

/** How often the idle LISTEN connection proves it is alive. */
const heartbeatMs = 10_000;

export class LogListener extends Runnable {
  readonly name = 'listener';
  private client: pg.Client | undefined;
  /** What we last set the doorbell to; a notification means a writer disarmed it. */
  private armed = false;
  /** Doorbell notifications heard so far: tells whether one arrived while we were arming. */
  private rings = 0;
  private arming: Promise<void> | undefined;

  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
    /** Called on every doorbell notification and after every (re)connect. */
    private readonly onWake: () => void,
    /** Called with each operator command (trigsync retry, skip). */
    private readonly onControl: (command: ControlCommand) => void,
  ) {
    super();
  }

  protected async loop(signal: AbortSignal): Promise<void> {
    const backoff = new Backoff(this.config.retry);
    while (this.shouldRun()) {
      try {
        const client = await connect(this.config.source.url, daemonConnectOptions(this.config));
        const ended = new Promise<void>((resolve) => {
          client.once('end', resolve);
          client.once('error', () => resolve());
        });
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
        this.client = client;
        this.armed = false;
        backoff.reset();
        this.onWake();
        while (this.shouldRun()) {
          const alive = await Promise.race([
            sleep(heartbeatMs, signal).then(() => true),
            ended.then(() => false),
          ]);
          if (!alive || !this.shouldRun()) break;
          await client.query('select 1');
        }
      } catch (thrown) {
        this.logger.warn({ err: coerceError(thrown).message }, 'listen connection lost; reconnecting');
      }
      await this.closeClient();
      if (this.shouldRun()) await sleep(backoff.next(), signal);
    }
    await this.closeClient();
  }

  /** Arm the doorbell unless it is known to be armed; concurrent callers share one update. */
  arm(): Promise<void> {
    if (this.armed) return Promise.resolve();
    this.arming ??= this.armOnce().finally(() => {
      this.arming = undefined;
    });
    return this.arming;
  }

  private async armOnce(): Promise<void> {
    const client = this.client;
    if (client === undefined) return; // not listening: the poll interval covers it
    const s = ident(this.config.schema);
    const ringsBefore = this.rings;
    // pg_sequence_last_value() reads under the sequence's lock; a plain `select last_value` may catch
    // the value 32 ahead that nextval() holds there while it logs (src/log/window.ts), and would arm
    // the doorbell at a ring that never comes.
    await client.query('select setval($1::regclass, pg_sequence_last_value($2::regclass))', [
      `${s}.doorbell_armed`,
      `${s}.doorbell_rings`,
    ]);
    // A writer may ring right after the setval, and its notification may arrive in the same read as the
    // reply and be handled first: then the doorbell is disarmed already, and must not be marked armed,
    // or no worker would ever arm it again. (A writer that rings and rolls back disarms it silently;
    // the workers' poll covers that.)
    if (this.rings === ringsBefore) this.armed = true;
  }

  private async closeClient(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.armed = false;
    await client?.end().catch(() => undefined);
  }
}
