/**
 * Statements sent back to back on one connection and answered in turn (node-postgres' pipeline mode),
 * so that a batch of them costs one round trip rather than one each: on a link of 20 ms each way, the
 * difference between 40 ms and 40 ms per statement.
 *
 * Each statement is followed by its own Sync: one that fails inside an open transaction leaves the
 * transaction aborted, and the statements after it fail with 25P02 rather than being skipped, so every
 * statement is answered and the first failure is the one that matters.
 */
import type pg from 'pg';

import { holdAlone } from './shared-connection.js';

/**
 * Run `send`, which starts statements on `client` and returns their promises, with the client in
 * pipeline mode; resolves once every one of them is answered, to their outcomes in order. The client is
 * in pipeline mode only meanwhile, since COPY (pg-copy-streams, used by a sync on the same connection)
 * is refused in that mode; it must have no statement in flight when this starts, and has none after.
 * Statements sent outside the mode while another is in flight are queued by node-postgres, which warns
 * that this is deprecated.
 */
export async function sendPipelined<T>(
  client: pg.ClientBase,
  send: () => readonly Promise<T>[],
): Promise<PromiseSettledResult<T>[]> {
  // A connection shared by leases: none of the others' statements comes between (shared-connection.ts).
  return holdAlone(client, async (connection) => {
    // `pipeline` is a constructor option that node-postgres reads at each send, not only at connect.
    const mode = connection as unknown as { pipeline: boolean };
    // Inside another sendPipelined (a plan read with the guards): the outer one ends the mode.
    if (mode.pipeline) return Promise.allSettled(send());
    mode.pipeline = true;
    try {
      return await Promise.allSettled(send());
    } finally {
      mode.pipeline = false;
    }
  });
}

/** The values of settled statements, or the first failure among them (the others follow from it). */
export function valuesOrFirstFailure<T>(settled: readonly PromiseSettledResult<T>[]): T[] {
  const failed = settled.find((s) => s.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
}

/** Two statements (or functions that start one at once) in one round trip; their values, typed. */
export async function pipelinedPair<A, B>(
  client: pg.Client,
  first: () => Promise<A>,
  second: () => Promise<B>,
): Promise<[A, B]> {
  const [a, b] = valuesOrFirstFailure(await sendPipelined<A | B>(client, () => [first(), second()]));
  return [a as A, b as B];
}
