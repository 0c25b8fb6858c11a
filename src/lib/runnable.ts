/**
 * The one face of every long-running part (worker, log listener, pruner, leader, metrics server):
 * `run()` loops until `stop()` or the abort signal; failures back off exponentially with jitter
 * and a cap; progress resets the backoff; every wait can be cut short by `stop()`. The retry skeleton
 * (RetryLoop) is the one place that holds a backoff.
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

/** What a failure means for the wait before the next attempt: the next backoff delay, or this long. */
export type RetryWait = void | { afterMs: number };

/** Judges a failure: logs it, rethrows what must end the loop, and may set the wait (RetryWait). */
export type FailureJudge = (thrown: unknown) => RetryWait | Promise<RetryWait>;

/**
 * The retry skeleton: try an attempt; on a failure let the caller judge it, then wait the next backoff
 * delay (or the judge's), cut short by the signal or by `now()`. The caller resets the backoff where it
 * has made progress: a short attempt at its end, a long one (a held connection) once it is connected.
 */
export class RetryLoop {
  private readonly backoff: Backoff;
  /** Rung by `now()`: a ring while nobody waits cuts the next wait short. */
  private readonly bell = new Doorbell();

  constructor(
    options: BackoffOptions,
    private readonly signal: AbortSignal,
  ) {
    this.backoff = new Backoff(options);
  }

  /** Progress: the next failure waits the initial delay again. */
  reset(): void {
    this.backoff.reset();
  }

  /** Backoff delays taken since the last reset: 0 at the first failure of an outage. */
  get retries(): number {
    return this.backoff.attempts;
  }

  /** End the wait under way now, or the next one (an operator asked to retry). */
  now(): void {
    this.bell.ring();
  }

  /** One attempt; its value, or undefined once a failure was judged and waited out. */
  async attempt<T>(work: () => Promise<T>, failed: FailureJudge): Promise<{ value: T } | undefined> {
    let wait: RetryWait;
    try {
      return { value: await work() };
    } catch (thrown) {
      wait = await failed(thrown);
    }
    // The delay is drawn only when it is waited: a judge's own delay does not grow the backoff.
    await this.bell.wait(wait === undefined ? this.backoff.next() : wait.afterMs, this.signal);
    return undefined;
  }
}

/**
 * Base of the long-running parts: start/stop are idempotent, stop waits for the loop to end. A part that
 * retries (given `retry`, the config's) loops with `retrying()`; one that keeps its own pace (the status
 * sampler) just sleeps.
 */
export abstract class Runnable {
  private controller = new AbortController();
  private running: Promise<void> | undefined;
  /** Private by #: a subclass may name its own members freely (a worker's `retry()`). */
  readonly #retry: RetryLoop | undefined;

  constructor(retry?: BackoffOptions) {
    this.#retry = retry === undefined ? undefined : new RetryLoop(retry, this.controller.signal);
  }

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

  /**
   * The loop of a part that retries: `attempt` again and again until stopped. A failure goes to `failed`,
   * which logs it (and rethrows what must end the part: `retrying` rejects with it), then the part waits
   * the next backoff delay, cut short by stop() or retryNow(). The attempt calls resetBackoff() where it
   * has made progress.
   */
  protected async retrying(attempt: () => Promise<void>, failed: FailureJudge): Promise<void> {
    const retry = this.#retryLoop();
    while (this.shouldRun()) await retry.attempt(attempt, failed);
  }

  /** Progress: the next failure waits the initial delay again. */
  protected resetBackoff(): void {
    this.#retryLoop().reset();
  }

  /** Backoff delays taken since the last reset: 0 at the first failure of an outage. */
  protected get retriesSinceReset(): number {
    return this.#retryLoop().retries;
  }

  /** End the wait after a failure now, or the next one if none is under way. */
  protected retryNow(): void {
    this.#retryLoop().now();
  }

  #retryLoop(): RetryLoop {
    if (this.#retry === undefined) throw new Error(`${this.name}: a part that retries needs retry options`);
    return this.#retry;
  }
}
