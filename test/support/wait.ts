// Polling helpers: tests wait on conditions, never on fixed sleeps.
import { inspect } from 'node:util';

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface WaitForOptions {
  /** Named in the timeout error: "waiting for <what>". */
  what: string;
  timeoutMs?: number;
  intervalMs?: number;
}

type Truthy<T> = Exclude<T, false | 0 | '' | null | undefined>;

/**
 * Polls condition until it returns a truthy value, and returns that value. A throwing condition counts
 * as "not yet"; the last error or value is part of the timeout message.
 */
export async function waitFor<T>(
  condition: () => T | Promise<T>,
  { what, timeoutMs = 10_000, intervalMs = 50 }: WaitForOptions,
): Promise<Truthy<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: string;
  for (;;) {
    try {
      const value = await condition();
      if (value) return value as Truthy<T>;
      last = `result: ${inspect(value)}`;
    } catch (error) {
      last = `error: ${error instanceof Error ? error.message : inspect(error)}`;
    }
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what} (last ${last})`);
    await delay(Math.min(intervalMs, left));
  }
}
