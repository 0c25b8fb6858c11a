/**
 * The source's copy of a target's position: its row in `trigsync.target`, which status, verify's
 * catch-up and the pruner read. The target's own record, written in the transaction of each batch, is
 * the position. The copy is never ahead of it, nor of what the target flushed, since the pruner goes by
 * the copy and a worker that connects checks its record against what the pruner removed
 * (src/changelog/horizon.ts); it may lag it a moment, and the pruner then keeps a little more:
 *  - after batches that follow each other fast, the copy is written at most every busyIntervalMs, and
 *    at once when the target's state changes. A worker applying 200 small batches a second spent a
 *    round trip to the source on each, a tenth of its turn;
 *  - once the worker finds nothing more, the last applied position is copied at once, and the position
 *    of the windows that found nothing now and then, to the target first;
 *  - a stop copies what is pending, if the source answers within a moment.
 * A position whose commit did not wait for its flush is copied only through the session that applied
 * it. Once that session ended (a lost connection, say), the target's own record is the truth: it may
 * hold more (a commit whose answer was lost) or less (a crash took commits that had not waited for their
 * flush), and that position written to it again would take back the one or claim the other. It is
 * dropped, with its changes: the copy lags, as it may. Within a session the mirror hears of every commit
 * before anything else can fail (src/worker/worker.ts, applied).
 */
import type { TargetState } from '../lib/status-report.js';
import { saveRegisteredPosition } from '../changelog/targets.js';
import type { Position } from '../changelog/window.js';
import { saveAppliedPosition } from '../apply/applied-position.js';
import { onTarget } from './worker-failure.js';
import type { Session } from './worker-session.js';

/** Batches that follow each other fast are copied at most this often. */
const busyIntervalMs = 100;
/** Windows that found nothing are copied at most this often. */
const idleIntervalMs = 2_000;
/** A stop waits at most this long for the last copy. */
const stopCopyMs = 1_000;

export interface MirrorKey {
  schema: string;
  origin: string;
  target: string;
}

export class PositionMirror {
  private copiedAt = 0;
  /** Applied on the target and not yet copied: the position, its state, the changes applied since. */
  private pending:
    | { session: Session; position: Position; state: TargetState; changes: number; flushed: boolean }
    | undefined;

  constructor(
    private readonly key: MirrorKey,
    /** The target's state as last copied or set (a failure sets it to parked without a copy). */
    private readonly state: () => TargetState,
    private readonly setState: (state: TargetState) => void,
  ) {}

  /**
   * The copy is due: the next batch's commit should wait for its flush (src/apply/chunk.ts, relaxed),
   * so that the copy needs no flush of its own.
   */
  get due(): boolean {
    return Date.now() - this.copiedAt >= busyIntervalMs;
  }

  /**
   * After a batch of `changes` committed on the target with the session's position; `flushed`: its
   * commit waited for the flush. A position not flushed is copied once a later one is, unless the
   * target's state changes (then it is flushed first).
   */
  async applied(session: Session, state: TargetState, changes: number, flushed: boolean): Promise<void> {
    this.hold(session, state, changes, flushed);
    if (state === this.state() && (!this.due || !flushed)) return;
    await this.copy(session);
  }

  /** The target holds the session's position already (a sync's copy committed it): copied now. */
  async now(session: Session, state: TargetState): Promise<void> {
    this.hold(session, state, 0, true);
    await this.copy(session);
  }

  /** A window found nothing: the last applied position copied now, the session's now and then. */
  async idle(session: Session, state: TargetState): Promise<void> {
    if (this.pending !== undefined) await this.copy(session);
    if (state === this.state() && Date.now() - this.copiedAt < idleIntervalMs) return;
    const { schema, origin, target } = this.key;
    await onTarget(() => saveAppliedPosition(session.target, schema, origin, target, session.position));
    this.hold(session, state, 0, true);
    await this.copy(session);
  }

  /** At a stop: what is pending, if the source answers in time; else the copy lags, as it may. */
  async flush(session: Session): Promise<void> {
    if (this.pending === undefined) return;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, stopCopyMs)));
    await Promise.race([this.copy(session).catch(() => undefined), late]);
    clearTimeout(timer);
  }

  /** The session's position, after `changes` more: those held before count too unless dropped (above). */
  private hold(session: Session, state: TargetState, changes: number, flushed: boolean): void {
    const counted = this.heldFor(session)?.changes ?? 0;
    this.pending = { session, position: session.position, state, changes: counted + changes, flushed };
  }

  /** What is pending, unless it is an ended session's position that did not wait for its flush (above). */
  private heldFor(session: Session): PositionMirror['pending'] {
    const pending = this.pending;
    return pending !== undefined && (pending.flushed || pending.session === session) ? pending : undefined;
  }

  private async copy(session: Session): Promise<void> {
    const pending = this.heldFor(session);
    if (pending === undefined) {
      this.pending = undefined;
      return;
    }
    const { schema, origin, target } = this.key;
    // Its commit did not wait for its flush (src/apply/chunk.ts): flushed first.
    if (!pending.flushed)
      await onTarget(() =>
        saveAppliedPosition(session.target, schema, origin, target, pending.position, true),
      );
    await saveRegisteredPosition(
      session.source,
      schema,
      target,
      pending.position,
      pending.state,
      pending.changes,
    );
    if (this.pending === pending) this.pending = undefined;
    this.copiedAt = Date.now();
    this.setState(pending.state);
  }
}
