/**
 * What a worker's failure means, decided in one place from the error taxonomy (src/failure/errors.ts),
 * and how a target that parks says so: the log, the `target:error` event, and the error queue or the
 * parked state on the source (G5).
 */
import type pg from 'pg';

import { configSecrets, redactSecrets } from '../config/redact.js';
import type { Config } from '../config/types.js';
import { classifyError, coerceError, sqlState, TrigsyncError, type ErrorKind } from '../failure/errors.js';
import type { TrigsyncEvents } from '../lib/events.js';
import type { TermFence } from '../db/term-fence.js';
import type { Logger } from '../lib/logger.js';
import { parkTarget, recordFailure } from '../changelog/error-queue.js';
import { ChangeRefused } from '../apply/chunk.js';
import { reportConflicts } from '../apply/conflicts.js';
import type { TargetPlan } from '../apply/plan.js';
import { objectText, rowFields } from '../apply/row-image.js';
import { TargetLockHeld } from '../apply/target-lock.js';

/**
 * A failure on the target's side (its connection, its schema, a plan that no longer fits it), as opposed
 * to the source's: the target parks on it. Its kind is its cause's.
 */
export class TargetFailed extends TrigsyncError {
  constructor(override readonly cause: unknown) {
    super(coerceError(cause).message, classifyError(cause), { cause });
  }
}

/** Run work against the target: what it throws is the target's failure (a refused change says which). */
export async function onTarget<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (thrown) {
    throw thrown instanceof ChangeRefused || thrown instanceof TargetFailed
      ? thrown
      : new TargetFailed(thrown);
  }
}

/**
 * What a failure means for the worker:
 * - `wait`: not this target's failure (another daemon is finishing its batch there): reconnect later,
 *   without parking;
 * - `reconnect`: the source is unavailable: reconnect with backoff, without parking (no other target
 *   fares better);
 * - `park`: the target parks, retried with backoff when its kind is `connection`, else at the slower
 *   data-error cadence; a `refused` change goes to the error queue.
 * Source-side errors of the worker's own making that an operator must fix (a position the log cannot
 * serve, a target not registered) are TrigsyncErrors of kind `data` or `config`, and park the target.
 */
export type Verdict =
  | { verdict: 'wait'; message: string }
  | { verdict: 'reconnect'; kind: 'connection'; cause: unknown }
  | { verdict: 'park'; kind: ErrorKind; cause: unknown; refused?: ChangeRefused };

export function judge(thrown: unknown): Verdict {
  if (thrown instanceof TargetFailed && thrown.cause instanceof TargetLockHeld) {
    return { verdict: 'wait', message: thrown.message };
  }
  if (thrown instanceof ChangeRefused) {
    return { verdict: 'park', kind: classifyError(thrown.cause), cause: thrown.cause, refused: thrown };
  }
  if (thrown instanceof TargetFailed) return { verdict: 'park', kind: thrown.kind, cause: thrown.cause };
  if (thrown instanceof TrigsyncError && thrown.kind !== 'connection') {
    return { verdict: 'park', kind: thrown.kind, cause: thrown };
  }
  return { verdict: 'reconnect', kind: 'connection', cause: thrown };
}

/** What a worker needs to tell of its failures. */
export interface FailureContext {
  target: string;
  config: Config;
  log: Logger;
  events: TrigsyncEvents;
  /** Connects to the source, to record a target that parks before its session opened. */
  fence: TermFence;
}

/** A worker's reports of its failures. */
export class FailureReporter {
  /** The change whose conflict parked the target, counted already: it is retried until resolved. */
  #parkedConflictId: number | undefined;

  constructor(private readonly context: FailureContext) {}

  /**
   * Say what failed: the `target:error` event and the log, and for a target that parks, its record on
   * the source: the refused change in the error queue, or the parked state. Through the session's
   * connection to the source, or one of its own when the session failed to open (the target's password
   * changed, say).
   */
  async report(
    verdict: Exclude<Verdict, { verdict: 'wait' }>,
    session: { plan: TargetPlan; source: pg.Client } | undefined,
  ): Promise<void> {
    const own = session === undefined && verdict.verdict === 'park';
    const source = own ? await this.context.fence.connect().catch(() => undefined) : session?.source;
    try {
      await this.#report(verdict, session?.plan, source);
    } finally {
      if (own) await source?.end().catch(() => undefined);
    }
  }

  async #report(
    verdict: Exclude<Verdict, { verdict: 'wait' }>,
    plan: TargetPlan | undefined,
    source: pg.ClientBase | undefined,
  ): Promise<void> {
    const { target, config, log, events } = this.context;
    const { kind, cause } = verdict;
    const sqlstate = sqlState(cause);
    const message = redactSecrets(coerceError(cause).message, configSecrets(config));
    events.emit('target:error', { target, kind, message, sqlstate });
    if (verdict.verdict === 'reconnect') {
      // Any source error that is not trigsync's own is retried so (no target fares better), but only a
      // broken session is the source being unavailable: a refused query (a grant revoked) says so.
      const unavailable = classifyError(cause) === 'connection';
      log.warn(
        { kind, sqlstate, err: message },
        unavailable ? 'source unavailable; retrying' : 'source refused a query; retrying',
      );
      return;
    }
    const refused = verdict.refused;
    if (refused === undefined) {
      log.warn({ kind, sqlstate, err: message }, 'target failed; parked, retrying');
      if (source !== undefined)
        await parkTarget(source, config.schema, target, message).catch(() => undefined);
      return;
    }
    const change = refused.change;
    if (refused.conflict !== undefined && this.#parkedConflictId !== change.id) {
      this.#parkedConflictId = change.id;
      reportConflicts([refused.conflict], { target, resolution: 'parked', events, log });
    }
    const table = plan?.tables.get(change.relid);
    const key =
      table === undefined || change.row === null
        ? null
        : objectText(table.key, rowFields(change.row, new Set(table.key)));
    log.error(
      { kind, sqlstate, err: message, change: change.id, table: table?.sourceName, key },
      'change refused; target parked',
    );
    if (source === undefined) return;
    await recordFailure(source, config.schema, target, {
      changeId: change.id,
      table: table?.sourceName ?? String(change.relid),
      op: change.op,
      key,
      sqlstate,
      message,
      alsoSkips: refused.conflict?.ids.filter((id) => id !== change.id),
    }).catch((e: unknown) => log.warn({ err: coerceError(e).message }, 'could not record the failure'));
  }
}
