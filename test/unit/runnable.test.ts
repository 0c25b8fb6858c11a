// The retry skeleton every long-running part shares (src/lib/runnable.ts): the backoff grows and is capped,
// progress resets it, a judge's own delay leaves it alone, and stop() or an operator's retry cuts the
// wait short. No database; fake timers.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { Backoff, RetryLoop, Runnable, type FailureJudge } from '../../src/lib/runnable.js';

const options = { initialDelayMs: 1_000, maxDelayMs: 8_000 };

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

/** Whether the promise has settled, after the timers have run `ms`. */
async function settledAfter(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await vi.advanceTimersByTimeAsync(ms);
  return settled;
}

const fails = (): Promise<never> => Promise.reject(new Error('refused'));
const logs: FailureJudge = () => undefined;

describe('Backoff', () => {
  it('doubles from the initial delay up to the cap, each delay jittered over its upper half', () => {
    const backoff = new Backoff(options);
    const delays = Array.from({ length: 6 }, () => backoff.next());
    const bases = [1_000, 2_000, 4_000, 8_000, 8_000, 8_000];
    delays.forEach((delay, i) => {
      expect(delay).toBeGreaterThanOrEqual(bases[i]! / 2);
      expect(delay).toBeLessThanOrEqual(bases[i]!);
    });
    expect(backoff.attempts).toBe(6);
  });

  it('starts again from the initial delay once reset', () => {
    const backoff = new Backoff(options);
    for (let i = 0; i < 5; i++) backoff.next();
    backoff.reset();
    expect(backoff.attempts).toBe(0);
    expect(backoff.next()).toBeLessThanOrEqual(1_000);
  });
});

describe('RetryLoop', () => {
  it("returns the attempt's value, and waits nothing", async () => {
    const retry = new RetryLoop(options, new AbortController().signal);
    expect(await retry.attempt(() => Promise.resolve(42), logs)).toEqual({ value: 42 });
    expect(retry.retries).toBe(0);
  });

  it('judges a failure, then waits the next backoff delay, longer each time until reset', async () => {
    const retry = new RetryLoop(options, new AbortController().signal);
    const judged: unknown[] = [];
    const judge: FailureJudge = (thrown) => void judged.push(thrown);
    // The first delay is 500 to 1000 ms, the second 1000 to 2000.
    expect(await settledAfter(retry.attempt(fails, judge), 1_000)).toBe(true);
    const second = retry.attempt(fails, judge);
    expect(await settledAfter(second, 999)).toBe(false);
    expect(await settledAfter(second, 1_001)).toBe(true);
    expect(judged).toHaveLength(2);
    expect(retry.retries).toBe(2);
    retry.reset();
    expect(retry.retries).toBe(0);
    expect(await settledAfter(retry.attempt(fails, judge), 1_000)).toBe(true);
  });

  it("waits the judge's own delay, which does not grow the backoff", async () => {
    const retry = new RetryLoop(options, new AbortController().signal);
    const attempt = retry.attempt(fails, () => ({ afterMs: 30_000 }));
    expect(await settledAfter(attempt, 29_999)).toBe(false);
    expect(await settledAfter(attempt, 1)).toBe(true);
    expect(retry.retries).toBe(0);
  });

  it('rejects with what the judge rethrows, without waiting', async () => {
    const retry = new RetryLoop(options, new AbortController().signal);
    const fatal = new Error('a configuration error');
    await expect(
      retry.attempt(fails, () => {
        throw fatal;
      }),
    ).rejects.toBe(fatal);
  });

  it('ends the wait when the signal aborts', async () => {
    const controller = new AbortController();
    const retry = new RetryLoop({ initialDelayMs: 60_000, maxDelayMs: 60_000 }, controller.signal);
    const attempt = retry.attempt(fails, logs);
    expect(await settledAfter(attempt, 1_000)).toBe(false);
    controller.abort();
    expect(await settledAfter(attempt, 0)).toBe(true);
  });

  it('ends the wait under way at now(), or the next one when none is', async () => {
    const retry = new RetryLoop({ initialDelayMs: 60_000, maxDelayMs: 60_000 }, new AbortController().signal);
    const attempt = retry.attempt(fails, logs);
    expect(await settledAfter(attempt, 1_000)).toBe(false);
    retry.now();
    expect(await settledAfter(attempt, 0)).toBe(true);
    retry.now();
    expect(await settledAfter(retry.attempt(fails, logs), 0)).toBe(true);
  });
});

/** A part that fails `failures` times, then makes progress once and waits for stop(). */
class Flaky extends Runnable {
  readonly name = 'flaky';
  attempts = 0;
  judged: number[] = [];

  constructor(private failures: number) {
    super({ initialDelayMs: 60_000, maxDelayMs: 60_000 });
  }

  protected async loop(signal: AbortSignal): Promise<void> {
    await this.retrying(
      async () => {
        this.attempts++;
        if (this.failures-- > 0) throw new Error('refused');
        this.resetBackoff();
        await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      },
      () => void this.judged.push(this.retriesSinceReset),
    );
  }

  operatorRetry(): void {
    this.retryNow();
  }

  get outageRetries(): number {
    return this.retriesSinceReset;
  }
}

describe('Runnable.retrying', () => {
  it('stop() ends the backoff wait at once', async () => {
    const part = new Flaky(Infinity);
    const running = part.run();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(part.attempts).toBe(1);
    expect(await settledAfter(part.stop(), 0)).toBe(true);
    await running;
    expect(part.attempts).toBe(1);
  });

  it('counts the retries of an outage, and progress resets them', async () => {
    const part = new Flaky(2);
    const running = part.run();
    await vi.advanceTimersByTimeAsync(0);
    part.operatorRetry();
    await vi.advanceTimersByTimeAsync(0);
    part.operatorRetry();
    await vi.advanceTimersByTimeAsync(0);
    expect(part.attempts).toBe(3);
    // The judge saw the first failure of the outage, then the first retry's.
    expect(part.judged).toEqual([0, 1]);
    expect(part.outageRetries).toBe(0);
    await part.stop();
    await running;
  });

  it('refuses to retry without retry options', async () => {
    class Unconfigured extends Runnable {
      readonly name = 'unconfigured';
      protected loop(): Promise<void> {
        return this.retrying(fails, logs);
      }
    }
    await expect(new Unconfigured().run()).rejects.toThrow('a part that retries needs retry options');
  });
});
