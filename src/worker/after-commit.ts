/**
 * What a worker does after each commit on its target (worker.ts), whether the changes went by rows or
 * were copied through: the session goes on from the new position, the source's copy of it learns it
 * (position-mirror.ts), conflicts are reported, a parked target's errors are cleared and the event is
 * sent; then the target's sequences are kept up and the drains the position passed are forgotten.
 */
import type { ConflictMode } from '../config/types.js';
import type { TrigsyncEvents } from '../lib/events.js';
import type { Logger } from '../lib/logger.js';
import { clearFailures } from '../changelog/error-queue.js';
import type { Position } from '../changelog/window.js';
import type { AppliedEvent } from '../apply/applied-event.js';
import { commitWaits } from '../apply/chunk.js';
import { reportConflicts, type Conflict } from '../apply/conflicts.js';
import type { PlanKeeper } from '../apply/plan-keeper.js';
import type { SequenceKeeper } from '../apply/sequences.js';
import { dropPassedFloors, type SyncContext } from './worker-sync.js';
import type { PositionMirror } from './position-mirror.js';
import type { Session } from './worker-session.js';

/** What one commit on the target applied. */
export interface CommittedPart {
  /** The position it reached. */
  next: Position;
  changes: number;
  lastId: number;
  event: (durationMs: number) => AppliedEvent;
  conflicts: readonly Conflict[];
  /** When its work began (performance.now()), for the event's duration. */
  started: number;
  /** Its window was the only chunk read: a closed window then leaves the target live. */
  onlyChunk: boolean;
  /** Its commit did not wait for its flush (src/apply/chunk.ts commitWaits). */
  relaxed: boolean;
  /** The target was parked until this commit. */
  wasParked: boolean;
}

export interface AfterCommitDeps {
  target: string;
  schema: string;
  conflict: ConflictMode;
  log: Logger;
  events: TrigsyncEvents;
  mirror: PositionMirror;
  planKeeper: PlanKeeper;
  sequences: SequenceKeeper;
  /** What a sync's floors need of the worker at the moment (worker-sync.ts). */
  syncContext: () => SyncContext;
}

export class AfterCommit {
  constructor(private readonly deps: AfterCommitDeps) {}

  /** After a commit: the new position, the source's copy, the error queue, events. */
  async applied(session: Session, part: CommittedPart): Promise<void> {
    const { deps } = this;
    const { next } = part;
    // Committed: first of all, the session goes on from here and the copy of the position knows it,
    // whatever fails below and keeps the session (position-mirror.ts).
    session.position = next;
    reportConflicts(part.conflicts, {
      target: deps.target,
      resolution: deps.conflict === 'skip' ? 'skipped' : 'applied',
      events: deps.events,
      log: deps.log,
    });
    const state = next.to === undefined && part.onlyChunk ? 'live' : 'catching_up';
    await deps.mirror.applied(session, state, part.changes, commitWaits(part.relaxed, next));
    if (next.to === undefined) await dropPassedFloors(deps.syncContext(), session, next);
    if (part.wasParked) {
      await clearFailures(session.source, deps.schema, deps.target, part.lastId);
      deps.log.info('target accepts changes again');
    }
    deps.events.emit('batch:applied', part.event(performance.now() - part.started));
  }

  /**
   * After a chunk or a run (or an empty window): the target's sequences, at a slower pace while a
   * window is open; and once a window closed, the drains its start has passed (plan-keeper.ts).
   */
  async settle(session: Session): Promise<void> {
    const windowClosed = session.position.to === undefined;
    await this.deps.sequences.keep(session.source, session.target, session.plan, windowClosed);
    if (!windowClosed) return;
    await this.deps.planKeeper.forgetPassedDrains(session.source, session.position.from.snapshot);
  }
}
