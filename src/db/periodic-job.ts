/**
 * A long-running part of a leader's term that does one piece of work on the source every few seconds
 * over a connection of its own (the pruner, the capture watcher): connect when needed (joined to the
 * term), work, sleep; on an error log it, drop the connection and back off; stop when asked.
 */
import type pg from 'pg';

import type { Config } from '../config/types.js';
import { coerceError } from '../failure/errors.js';
import type { Logger } from '../lib/logger.js';
import { Backoff, Runnable, sleep } from '../lib/runnable.js';
import type { TermFence } from './term-fence.js';

export abstract class PeriodicSourceJob extends Runnable {
  constructor(
    protected readonly config: Config,
    protected readonly logger: Logger,
    private readonly fence: TermFence,
    private readonly intervalMs: number,
    /** What failed, for the log: `pruning failed; retrying`. */
    private readonly doing: string,
  ) {
    super();
  }

  /** One round of the work. */
  protected abstract work(client: pg.Client): Promise<void>;

  protected async loop(signal: AbortSignal): Promise<void> {
    const backoff = new Backoff(this.config.retry);
    let client: pg.Client | undefined;
    while (this.shouldRun()) {
      try {
        client ??= await this.fence.connect();
        await this.work(client);
        backoff.reset();
        await sleep(this.intervalMs, signal);
      } catch (thrown) {
        this.logger.warn({ err: coerceError(thrown).message }, `${this.doing} failed; retrying`);
        await client?.end().catch(() => undefined);
        client = undefined;
        await sleep(backoff.next(), signal);
      }
    }
    await client?.end().catch(() => undefined);
  }
}
