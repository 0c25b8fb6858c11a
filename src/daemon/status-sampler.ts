/**
 * Reads `status` from the source every second (less often when that read is costly), leader or standby
 * alike, for the gauges of the metrics (backlog, lag, parked, the log's size) and for /readyz: a daemon
 * is ready while this read succeeds.
 */
import type pg from 'pg';

import type { Config } from '../config/types.js';
import { connect, daemonConnectOptions } from '../db/connect.js';
import { coerceError } from '../failure/errors.js';
import type { TrigsyncEvents } from '../lib/events.js';
import { Runnable, sleep } from '../lib/runnable.js';
import { readStatus } from '../changelog/status.js';

export const sampleIntervalMs = 1_000;
/**
 * The status read counts each target's backlog: on a backlog of a million changes that takes a few
 * hundred ms of the source's CPU. The read is then repeated at most every `costFactor` times its own
 * duration (at most every 30 s), so that it never takes more than a tenth of a core from the source,
 * which is busy enough draining that backlog.
 */
const costFactor = 10;
const maxIntervalMs = 30_000;

export class StatusSampler extends Runnable {
  readonly name = 'status-sampler';
  /** When a read last succeeded (ms since the epoch); 0 before the first. */
  private sampledAt = 0;
  private intervalMs = sampleIntervalMs;

  constructor(
    private readonly config: Config,
    private readonly events: TrigsyncEvents,
  ) {
    super();
  }

  /** The source answered within the last few intervals. */
  get sourceReachable(): boolean {
    return Date.now() - this.sampledAt < 3 * this.intervalMs + 2_000;
  }

  protected async loop(signal: AbortSignal): Promise<void> {
    let client: pg.Client | undefined;
    // The first sample one interval after the start, not among the start's own connections and reads.
    await sleep(sampleIntervalMs, signal);
    while (this.shouldRun()) {
      const started = Date.now();
      try {
        client ??= await connect(this.config.source.url, {
          ...daemonConnectOptions(this.config),
          connectTimeoutMs: 5_000,
        });
        const readStarted = Date.now();
        const status = await readStatus(client, this.config);
        this.sampledAt = Date.now();
        const cost = costFactor * (this.sampledAt - readStarted);
        this.intervalMs = Math.min(maxIntervalMs, Math.max(sampleIntervalMs, cost));
        this.events.emit('status:sampled', { status, at: this.sampledAt });
      } catch (thrown) {
        this.events.emit('status:failed', { message: coerceError(thrown).message, at: Date.now() });
        await client?.end().catch(() => undefined);
        client = undefined;
      }
      await sleep(Math.max(0, this.intervalMs - (Date.now() - started)), signal);
    }
    await client?.end().catch(() => undefined);
  }
}
