/**
 * The one face of every long-running part (worker, log listener, pruner, metrics server):
 * `run()` loops until `stop()` or the abort signal; failures back off exponentially with jitter
 * and a cap; success resets the backoff; every wait can be cut short by `stop()`.
 */

export interface BackoffOptions {
  initialDelayMs: number;
  maxDelayMs: number;
}

export class Backoff {
  private attempt = 0;
  constructor(private readonly options: BackoffOptions) {}

  /** The next delay: initial × 2^attempt, capped, with "full jitter" over its upper half. */
  next(): number {
    const base = Math.min(this.options.maxDelayMs, this.options.initialDelayMs * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    return Math.round(base / 2 + Math.random() * (base / 2));
  }

  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}

/** Sleep for `ms`, or less if the signal aborts; never rejects. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Wakes a sleeping loop early. `wait()` resolves at the next `ring()`, after `ms`, or on abort,
 * whichever comes first; a ring while nobody waits is kept for the next `wait()`.
 */
export class Doorbell {
  private pending = false;
  private waiter: (() => void) | undefined;

  ring(): void {
    this.pending = true;
    this.waiter?.();
  }

  async wait(ms: number, signal?: AbortSignal): Promise<void> {
    if (this.pending || signal?.aborted === true) {
      this.pending = false;
      return;
    }
    const controller = new AbortController();
    const onAbort = (): void => controller.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    this.waiter = onAbort;
    try {
      await sleep(ms, controller.signal);
    } finally {
      this.waiter = undefined;
      signal?.removeEventListener('abort', onAbort);
      this.pending = false;
    }
  }
}

/** Base of the long-running parts: start/stop are idempotent, stop waits for the loop to end. */
export abstract class Runnable {
  private controller = new AbortController();
  private running: Promise<void> | undefined;

  /** The name used in logs. */
  abstract readonly name: string;

  /** The loop body; return when `this.shouldRun()` turns false. */
  protected abstract loop(signal: AbortSignal): Promise<void>;

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  shouldRun(): boolean {
    return !this.controller.signal.aborted;
  }

  /** Starts the loop once; later calls return the same promise. */
  run(): Promise<void> {
    this.running ??= this.loop(this.controller.signal);
    return this.running;
  }

  /** Asks the loop to stop and waits until it has. */
  async stop(): Promise<void> {
    this.controller.abort();
    await this.running;
  }
}
