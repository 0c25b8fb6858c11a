/**
 * A dedicated connection held as long as it lives: the listener's LISTEN session, the leader's lock
 * session. Opened once, checked alive on the holder's interval under one timeout rule, its loss reported
 * once (HeldConnectionLost: the holder reconnects after a backoff), closed cleanly.
 */
import type pg from 'pg';

import type { Config } from '../config/types.js';
import { TrigsyncError } from '../failure/errors.js';
import { sleep } from '../lib/runnable.js';

/** The held connection ended, failed, or left a check unanswered: reconnect. */
export class HeldConnectionLost extends TrigsyncError {
  constructor(message: string) {
    super(message, 'connection');
  }
}

/**
 * A check returns true when the holder is done checking (the standby took the lock); what it throws is
 * the holder's, thrown as it is.
 */
export type LivenessCheck = (client: pg.Client) => Promise<boolean | void>;

export class HeldConnection {
  private loss: HeldConnectionLost | undefined;
  private reportLoss!: (loss: HeldConnectionLost) => void;
  /** Rejects once, at the first loss; every wait races it. */
  private readonly lost = new Promise<never>((_, reject) => {
    this.reportLoss = reject;
  });

  private constructor(
    readonly client: pg.Client,
    /** For messages: `lock connection`, `listen connection`. */
    private readonly what: string,
    private readonly timeoutMs: number,
  ) {
    // Nobody may be waiting when it is lost; the next wait throws it.
    this.lost.catch(() => undefined);
    client.once('end', () => this.lose('the session ended'));
    client.once('error', (error: Error) => this.lose(error.message));
  }

  /**
   * Open the connection with `connect` (a fence's, for a session of the term). One timeout rule for
   * every held connection: a check not answered within `leaderTimeoutMs` loses it. That is the stricter
   * of the two rules before (the leader's fixed 10 s; the listener had only `apply.silenceTimeoutMs`, 60 s
   * by default), and the one standbys hold the leader's lock session to: a leader whose check waits
   * longer is deposed anyway. `apply.silenceTimeoutMs` still applies underneath (src/db/connect.ts).
   */
  static async open(
    connect: () => Promise<pg.Client>,
    config: Pick<Config, 'leaderTimeoutMs'>,
    what: string,
  ): Promise<HeldConnection> {
    return new HeldConnection(await connect(), what, config.leaderTimeoutMs);
  }

  /** The session's server process (pg_stat_activity.pid). */
  get pid(): number | undefined {
    return (this.client as unknown as { processID?: number | null }).processID ?? undefined;
  }

  /**
   * Run `check` now and every `intervalMs` after, until it returns true or the signal aborts. Throws
   * HeldConnectionLost when the session ends, or a check has no answer within the timeout.
   */
  async checkEvery(intervalMs: number, signal: AbortSignal, check: LivenessCheck): Promise<void> {
    while (!signal.aborted) {
      if ((await this.answered(check)) === true) return;
      await Promise.race([sleep(intervalMs, signal), this.lost]);
    }
  }

  /** Close the session; one given up (a check unanswered) is cut, not waited for. */
  async close(): Promise<void> {
    this.lose('closed');
    await this.client.end().catch(() => undefined);
  }

  private async answered(check: LivenessCheck): Promise<boolean | void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(this.lose(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
    });
    try {
      return await Promise.race([check(this.client), late, this.lost]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The loss, reported once: the first reason is the one every waiter sees. */
  private lose(reason: string): HeldConnectionLost {
    if (this.loss === undefined) {
      this.loss = new HeldConnectionLost(`${this.what} lost: ${reason}`);
      this.reportLoss(this.loss);
    }
    return this.loss;
  }
}
