/**
 * A long-running part of a leader's term that does one piece of work on the source every few seconds
 * over a connection of its own (the pruner, the capture watcher): wait an interval, connect when needed
 * (joined to the term), work, and so on; on an error log it, drop the connection and back off; stop when
 * asked.
 */
import type pg from 'pg';

import type { Config } from '../config/types.js';
import { coerceError } from '../failure/errors.js';
import type { Logger } from '../lib/logger.js';
import { Runnable, sleep } from '../lib/runnable.js';
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
    super(config.retry);
  }

  /** One round of the work. */
  protected abstract work(client: pg.Client): Promise<void>;

  protected async loop(signal: AbortSignal): Promise<void> {
    let client: pg.Client | undefined;
    // The first round one interval after the term began: the install has just set what it would find,
    // and the term's first moments belong to its workers' start, on the source's cores as well.
    await sleep(this.intervalMs, signal);
    await this.retrying(
      async () => {
        client ??= await this.fence.connect();
        await this.work(client);
        this.resetBackoff();
        await sleep(this.intervalMs, signal);
      },
      async (thrown) => {
        this.logger.warn({ err: coerceError(thrown).message }, `${this.doing} failed; retrying`);
        await client?.end().catch(() => undefined);
        client = undefined;
      },
    );
    await client?.end().catch(() => undefined);
  }
}
