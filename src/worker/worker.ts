/**
 * One target's worker: reads the log in windows (src/changelog/window.ts) and applies each chunk to the target
 * in one transaction together with the position it reaches, which the source has a copy of
 * (position-mirror.ts). One ordered
 * stream per target; targets run in parallel and never wait for each other (G4).
 *
 * A failure parks the target (G5): its position does not move, so nothing later reaches it. A change the
 * target refuses goes to the error queue, exactly that one (src/apply/chunk.ts), and is retried at the
 * slower data-error cadence or at once on `trigsync retry`; `trigsync skip` drops it for this target.
 * Connection failures are retried with backoff until they heal. An operator's pause holds the target
 * where it is, opening nothing to it, until resumed (worker-pause.ts).
 *
 * Its session (connections, plan, position) is one value, opened whole or not at all
 * (worker-session.ts); what a failure means is decided in one place (worker-failure.ts); the copies of
 * a sync run through worker-sync.ts.
 */
import type pg from 'pg';

import type { SourceTables } from '../capture/source-tables.js';
import type { TrigsyncEvents } from '../lib/events.js';
import type { Logger } from '../lib/logger.js';
import { Doorbell, Runnable, type RetryWait } from '../lib/runnable.js';
import type { TargetState } from '../lib/status-report.js';
import { closeWindow, type Position } from '../changelog/window.js';
import { wholeStatements } from '../apply/whole-statements.js';
import { applyFindingCulprit, prepareChunk, type PositionKey } from '../apply/chunk.js';
import { PlanKeeper, type Drain } from '../apply/plan-keeper.js';
import { SequenceKeeper } from '../apply/sequences.js';
import { appliedEvent } from '../apply/applied-event.js';
import { LogReader, workerChunkLimits } from '../apply/log-reader.js';
import type { SharedLog } from '../apply/shared-log.js';
import { syncCoversAll, WorkerSyncs, type SyncContext } from './worker-sync.js';
import { AfterCommit } from './after-commit.js';
import { FailureReporter, judge, onTarget } from './worker-failure.js';
import { OperatorState, requestCheckIntervalMs } from './operator-state.js';
import { PositionMirror } from './position-mirror.js';
import { WorkerPause } from './worker-pause.js';
import { Replan } from './worker-replan.js';
import { WorkerRuns } from './worker-runs.js';
import { closeSession, openSession, type Session, type SessionDeps } from './worker-session.js';

export interface WorkerDeps extends SessionDeps {
  sourceTables: SourceTables;
  logger: Logger;
  events: TrigsyncEvents;
  /** Ask the source to notify us at its next captured write. */
  armDoorbell: () => Promise<void>;
  /** Tables removed from this target's config, applied up to what the log held then. */
  drains?: readonly Drain[];
  /** The daemon's reading of the log, shared with the other workers (src/apply/shared-log.ts). */
  sharedLog: SharedLog;
}

export class TargetWorker extends Runnable {
  readonly name: string;
  /** Rung by the doorbell's notifications: new changes may be there. */
  readonly wake = new Doorbell();
  private readonly log: Logger;
  /** The connections, plan and position: whole, or none (worker-session.ts). */
  private session: Session | undefined;
  /** Whether and when the plan is made again (worker-replan.ts). */
  private readonly replan: Replan;
  /** The doorbell was armed after the last window applied, before the next look. */
  private armedBeforeLook = false;
  private readonly planKeeper: PlanKeeper;
  /** The position, the events and the target's sequences after each commit (after-commit.ts). */
  private readonly afterCommit: AfterCommit;
  /** The changes skipped for this target and the sync asked of it (operator-state.ts). */
  private readonly operator: OperatorState;
  /** The syncs asked of the target: a copy beside the stream, or in its place (worker-sync.ts). */
  private readonly syncs: WorkerSyncs;
  private state: TargetState = 'new';
  /** The source's copy of the position (position-mirror.ts). */
  private readonly mirror: PositionMirror;
  private readonly reader: LogReader;
  /** Runs of one table's inserts, copied through from the source (worker-runs.ts). */
  private readonly runs: WorkerRuns;
  private readonly failures: FailureReporter;
  /** An operator's pause of the target (`trigsync pause`; worker-pause.ts). */
  private readonly pause: WorkerPause;

  constructor(private readonly deps: WorkerDeps) {
    super(deps.config.retry);
    this.name = deps.target.name;
    this.log = deps.logger.child({ target: deps.target.name });
    const { config, events, fence } = deps;
    this.failures = new FailureReporter({ target: this.name, config, log: this.log, events, fence });
    this.runs = new WorkerRuns(config.schema, () => deps.sourceConnections.own());
    this.operator = new OperatorState(config.schema, this.name);
    this.syncs = new WorkerSyncs(() => this.syncContext, this.operator);
    this.pause = new WorkerPause(this.name, this.operator, this.log, events);
    this.reader = new LogReader(deps.sharedLog, workerChunkLimits(config.apply, config.targets.length));
    this.planKeeper = new PlanKeeper(deps.config, deps.target, deps.sourceTables, this.log, deps.drains);
    this.replan = new Replan(this.planKeeper);
    this.mirror = new PositionMirror(
      { schema: config.schema, origin: deps.origin, target: this.name },
      () => this.state,
      (state) => this.setState(state),
    );
    this.afterCommit = new AfterCommit({
      target: this.name,
      schema: config.schema,
      conflict: deps.target.conflict,
      log: this.log,
      events,
      mirror: this.mirror,
      planKeeper: this.planKeeper,
      sequences: new SequenceKeeper(deps.config, deps.target, this.log),
      syncContext: () => this.syncContext,
    });
  }

  /** An operator asked to retry (or skipped a change, or asked for a sync): act now. */
  retry(reload: boolean): void {
    if (reload) this.operator.markStale();
    // A parked target tries again now.
    this.retryNow();
    this.wake.ring();
  }

  protected async loop(signal: AbortSignal): Promise<void> {
    await this.retrying(
      () => this.turn(signal),
      (thrown) => this.failed(thrown),
    );
    if (this.session !== undefined) await this.mirror.flush(this.session);
    await this.disconnect();
  }

  /** Open the session if there is none, then copy, or apply the next chunk, or wait for changes. */
  private async turn(signal: AbortSignal): Promise<void> {
    const pause = await this.pause.turn(
      this.session?.source,
      () => this.deps.sourceConnections.lease(),
      () => (this.replan.due = true),
    );
    if (pause === 'paused') {
      // A target session opened ahead at the daemon's start is not kept for a resume that may be days off.
      if (this.session === undefined) this.deps.early?.discard();
      // Woken by the resume's NOTIFY; a lost one is found by the pause's periodic look.
      await this.wake.wait(requestCheckIntervalMs, signal);
      return;
    }
    // What waited meanwhile is a backlog: looked at for a run of inserts first, as at a start.
    if (pause === 'resumed') this.runs.lookForRunFirst();
    const session = await this.open();
    // The doorbell was armed before this turn's look: an empty look is the one after the arming.
    const armedBeforeLook = this.armedBeforeLook;
    this.armedBeforeLook = false;
    // A sync reads the plan: made first. Otherwise the target plans beside the source's first reads (step).
    if (this.syncs.busy) await this.replan.ready();
    if (await this.syncs.asked(session)) return;
    let applied = await this.step(session);
    if (applied < 0) {
      // At a change the copy beside the stream lacks: wait for the copy, which rings when it ends.
      await this.wake.wait(this.deps.config.apply.pollIntervalMs, signal);
      return;
    }
    this.resetBackoff();
    if (applied > 0) {
      if (this.reader.quiet(session.position)) {
        // A quiet source's window, applied: ring-me-next-time now, so that the next look is the one after
        // the arming. Arming only after an empty look cost every live change a tick and a read more, and
        // a change that committed meanwhile waited for them.
        await this.armDoorbell();
        this.armedBeforeLook = true;
      } else {
        await this.reader.pace(session.position, signal);
      }
      return;
    }
    if (!armedBeforeLook) {
      // Idle: ring-me-next-time, then look once more, since a write may have landed before the arming.
      await this.armDoorbell();
      applied = await this.step(session);
      if (applied > 0) return;
    }
    // Idle workers poll together: their looks share a tick, and their positions stay one.
    await this.wake.wait(this.deps.sharedLog.untilPoll(this.deps.config.apply.pollIntervalMs), signal);
  }

  /** Ring-me-next-time: the next window then ends at a tick taken after the arming. */
  private async armDoorbell(): Promise<void> {
    await this.deps.armDoorbell();
    this.reader.armed();
  }

  /** Say and act on what a failure means (judge); the wait is the backoff's, or the data-error cadence. */
  private async failed(thrown: unknown): Promise<RetryWait> {
    this.reader.discard();
    this.runs.discard();
    const verdict = judge(thrown);
    if (verdict.verdict === 'wait') {
      // Not a failure of this target: a former leader is finishing its batch. Do not park it.
      this.log.info(verdict.message);
      await this.disconnect();
      return;
    }
    await this.failures.report(verdict, this.session);
    if (verdict.verdict === 'park') this.setState('parked');
    if (verdict.kind === 'connection') await this.disconnect();
    // The target or the source may be fixed by the time of the retry: plan against them anew.
    else this.replan.due = true;
    return verdict.kind === 'connection' ? undefined : { afterMs: this.deps.config.retry.dataErrorDelayMs };
  }

  private get key(): PositionKey {
    return { schema: this.deps.config.schema, origin: this.deps.origin, target: this.name };
  }

  /** The session, opened if there is none; the operator's state read again when it may have changed. */
  private async open(): Promise<Session> {
    let session = this.session;
    if (session === undefined) {
      session = await openSession({
        ...this.deps,
        log: this.log,
        planKeeper: this.planKeeper,
        loadOperatorState: (source) => this.loadOperatorState(source),
        syncCoversAll: (plan) => syncCoversAll(plan, this.operator.syncRequest),
        registeredState: (state) => (this.state = state),
      });
      // Planned just now, after the operator's state was read.
      this.replan.opened();
      this.session = session;
      this.reader.restart(session.roundTrip);
      this.runs.lookForRunFirst();
      return session;
    }
    // An operator who acts may have fixed a table first (added a column before a sync, say).
    if (await this.operator.refresh(session.source)) this.replan.due = true;
    this.replan.begin(session);
    return session;
  }

  private async loadOperatorState(source: pg.Client): Promise<void> {
    await this.operator.load(source);
    this.replan.due = true;
  }

  /**
   * Apply the next chunk; returns how many changes it read (0: caught up; -1: it stopped at a change that
   * the copy beside the stream lacks, and applied nothing).
   */
  private async step(session: Session): Promise<number> {
    const { source, target } = session;
    const position = await this.reader.open(source, session.position);
    const ran = await this.runThrough(session, position);
    if (ran > 0) return ran;
    await this.replan.ready();
    const read = await this.reader.read(source, session.plan.readQuery, position);
    // A full chunk (apply.batchSize changes, or apply.batchBytes) is not the window's last, and may end
    // inside an UPDATE statement, whose rows are applied together (batch.ts).
    let { full } = read;
    let changes = full ? wholeStatements(read.changes) : read.changes;
    const barrier = this.syncs.barrier(changes);
    if (barrier !== undefined) {
      changes = wholeStatements(changes.slice(0, barrier));
      full = true;
      if (changes.length === 0) {
        this.reader.discard();
        return -1;
      }
    }
    if (changes.length === 0) {
      session.position = closeWindow(position);
      // An empty window is live; one that ends after its chunks (the last was full) was a backlog.
      await this.mirror.idle(session, position.appliedId === 0 ? 'live' : 'catching_up');
      await this.afterCommit.settle(session);
      return 0;
    }
    await this.sourceChanged(session, position, [...new Set(changes.map((c) => c.relid))]);
    const started = performance.now();
    const scope = {
      tables: session.plan.tables,
      skipped: this.operator.skipped,
      conflict: this.deps.target.conflict,
      floors: session.floors,
      ceilings: this.planKeeper.ceilings,
      roundTrip: session.roundTrip,
      // Until the position's copy is due: then the chunk's commit waits for its flush, and the copy
      // needs no flush of its own.
      relaxed: !this.mirror.due,
    };
    // The window's last chunk closes it in the same transaction.
    const whole = full ? undefined : closeWindow(position);
    // Live is within one chunk of the source: a window that took several chunks was a backlog, and the
    // next one, gathered meanwhile, may be one too (a drained target flipped live and back per window).
    const onlyChunk = whole !== undefined && position.appliedId === 0;
    session.position = position;
    // After a chunk of inserts the next changes are looked at for a run, not read ahead.
    const runNext = this.runs.afterChunk(session, changes, full, this.streamAlone(session));
    if (whole === undefined && !runNext) {
      const ahead = this.reader.readAhead(source, session.plan.readQuery, {
        ...position,
        appliedId: changes.at(-1)!.id,
      });
      // The next chunk's steps are made while this one applies; a failure shows at its own turn.
      void ahead?.then((next) => {
        if (next instanceof Error) return;
        try {
          prepareChunk(scope, next.full ? wholeStatements(next.changes) : next.changes);
        } catch {
          // Made again, and reported, when the chunk applies.
        }
      });
    }
    await onTarget(() =>
      applyFindingCulprit(
        target,
        scope,
        changes,
        this.key,
        position,
        (next, part, conflicts) =>
          this.afterCommit.applied(session, {
            next,
            changes: part.length,
            lastId: part.at(-1)!.id,
            event: (ms) => appliedEvent(this.name, session.plan, part, ms),
            conflicts,
            started,
            onlyChunk,
            relaxed: scope.relaxed,
            wasParked: this.state === 'parked',
          }),
        whole,
      ),
    );
    await this.afterCommit.settle(session);
    return changes.length;
  }

  /**
   * After a chunk of inserts: the window's next changes, if they are that too, copied through
   * from the source's log (worker-runs.ts). Returns how many applied; 0: none, and the next chunk is read
   * by rows.
   */
  private async runThrough(session: Session, position: Position): Promise<number> {
    const run = await this.runs.copy(session, position, {
      target: this.name,
      key: this.key,
      most: this.reader.chunkChanges,
      alone: this.streamAlone(session),
      relaxed: !this.mirror.due,
      planned: () => this.replan.ready(),
      sourceChanged: (relids) => this.sourceChanged(session, position, relids),
    });
    if (run === undefined) return 0;
    this.log.debug({ tables: run.tables, changes: run.changes }, 'run of inserts copied through');
    this.reader.ranThrough(run.changes);
    const onlyChunk = run.next.to === undefined && position.appliedId === 0;
    await this.afterCommit.applied(session, {
      ...run,
      conflicts: [],
      onlyChunk,
      wasParked: this.state === 'parked',
    });
    await this.afterCommit.settle(session);
    return run.changes;
  }

  /** Whether a table of `relids` changed shape on the source since planned; if so, plan again. */
  private async sourceChanged(
    session: Session,
    window: Position,
    relids: readonly number[],
  ): Promise<boolean> {
    const versions = (client: pg.ClientBase, tables: readonly number[]) =>
      this.deps.sharedLog.versions(client, window, tables);
    if (!(await this.planKeeper.sourceChanged(session.source, relids, versions))) return false;
    await this.replan.now(session);
    return true;
  }

  /** This worker alone sees the stream's changes: none is left out, shared or awaited by a copy. */
  private streamAlone(session: Session): boolean {
    return (
      this.deps.sharedLog.alone &&
      !this.syncs.besideStream &&
      this.operator.syncRequest === undefined &&
      this.operator.skipped.size === 0 &&
      session.floors.size === 0 &&
      this.planKeeper.ceilings.size === 0
    );
  }

  /** What the copies of a sync need of this worker (worker-sync.ts). */
  private get syncContext(): SyncContext {
    return {
      ...this.deps,
      name: this.name,
      key: this.key,
      log: this.log,
      wake: this.wake,
      mirror: (session, state) => this.mirror.now(session, state),
    };
  }

  private setState(state: TargetState): void {
    if (state === this.state) return;
    this.state = state;
    this.deps.events.emit('target:state', { target: this.name, state });
  }

  private async disconnect(): Promise<void> {
    await this.syncs.abort();
    const session = this.session;
    this.session = undefined;
    this.reader.discard();
    this.runs.discard();
    this.deps.early?.discard();
    this.operator.markStale();
    if (session !== undefined) await closeSession(session);
  }
}
