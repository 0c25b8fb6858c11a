/**
 * What an operator asks of a running daemon (SPEC §4: retry, skip, sync; and pause, resume), through
 * the source database only: what must outlive a daemon's restart (a skip, a sync's request, a pause) is
 * written first, then the control channel says "act now" (control.ts). With no daemon running, the next
 * one finds it.
 */
import type pg from 'pg';

import { skipChange, type SkippedChange } from '../changelog/error-queue.js';
import { setTargetPaused, type TargetPause } from '../changelog/targets.js';
import { loadSyncRequest, requestSync, type SyncRequest } from '../sync/requests.js';
import { sendControl } from './control.js';

/** A parked target tries again now. */
export async function askRetry(client: pg.ClientBase, schema: string, target: string): Promise<void> {
  await sendControl(client, schema, { command: 'retry', target });
}

/** Drop one failed change for the target, recorded with who and when; its worker goes on now. */
export async function askSkip(
  client: pg.ClientBase,
  schema: string,
  target: string,
  changeId: number,
): Promise<SkippedChange> {
  const skipped = await skipChange(client, schema, target, changeId);
  await sendControl(client, schema, { command: 'skip', target });
  return skipped;
}

/**
 * Copy `tables` (none: every table) to the target again; the request, widened if one is pending, or
 * undefined when the target is not registered on the source.
 */
export async function askSync(
  client: pg.ClientBase,
  schema: string,
  target: string,
  tables: readonly string[],
): Promise<SyncRequest | undefined> {
  if (!(await requestSync(client, schema, target, tables))) return undefined;
  const request = await loadSyncRequest(client, schema, target);
  await sendControl(client, schema, { command: 'sync', target });
  return request;
}

/**
 * Pause a target (`paused`: its worker applies nothing after the batch in flight, until resumed) or
 * resume it; returns the pause as it stood before (not registered: nothing was asked).
 */
export async function askPause(
  client: pg.ClientBase,
  schema: string,
  target: string,
  paused: boolean,
): Promise<TargetPause> {
  const before = await setTargetPaused(client, schema, target, paused);
  if (before.registered) await sendControl(client, schema, { command: paused ? 'pause' : 'resume', target });
  return before;
}
