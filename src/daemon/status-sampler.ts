/**
 * Reads `status` from the source every second, leader or standby alike, for the gauges of the metrics
 * (backlog, lag, parked, the log's size) and for /readyz: a daemon is ready while this read succeeds.
 */
import type pg from 'pg';

import type { Config } from '../config/types.js';
import { connect } from '../db/connect.js';
import { coerceError } from '../failure/errors.js';
import type { TrigsyncEvents } from '../lib/events.js';
import { Runnable, sleep } from '../lib/runnable.js';
import { readStatus } from '../log/status.js';

export const sampleIntervalMs = 1_000;

export class StatusSampler extends Runnable {
  readonly name = 'status-sampler';
  /** When a read last succeeded (ms since the epoch); 0 before the first. */
  private sampledAt = 0;

  constructor(
    private readonly config: Config,
    private readonly events: TrigsyncEvents,
  ) {
    super();
  }

  /** The source answered within the last few intervals. */
  get sourceReachable(): boolean {
    return Date.now() - this.sampledAt < 3 * sampleIntervalMs + 2_000;
  }

  protected async loop(signal: AbortSignal): Promise<void> {
    let client: pg.Client | undefined;
    while (this.shouldRun()) {
      const started = Date.now();
      try {
        client ??= await connect(this.config.source.url, {
          applicationName: this.config.applicationName,
          connectTimeoutMs: 5_000,
        });
        const status = await readStatus(client, this.config);
        this.sampledAt = Date.now();
        this.events.emit('status:sampled', { status, at: this.sampledAt });
      } catch (thrown) {
        this.events.emit('status:failed', { message: coerceError(thrown).message, at: Date.now() });
        await client?.end().catch(() => undefined);
        client = undefined;
      }
      await sleep(Math.max(0, sampleIntervalMs - (Date.now() - started)), signal);
    }
    await client?.end().catch(() => undefined);
  }
}
