/**
 * A worker's runs copied through (src/apply/copy-through.ts): after a chunk that was all inserts, the
 * window's next changes are looked at, and if they are that too, copied from the source's log to the
 * target unread. The look at the run after is taken while the target takes the end of the one before.
 */
import type pg from 'pg';

import { lookAtRun, type BulkRun } from '../changelog/bulk-window.js';
import { closeWindow, type LogChange, type Position } from '../changelog/window.js';
import { runAppliedEvent, type AppliedEvent } from '../apply/applied-event.js';
import type { PositionKey } from '../apply/chunk.js';
import { copyRunThrough, runOfInserts, tablesOfRun } from '../apply/copy-through.js';
import { coerceError } from '../failure/errors.js';
import { onTarget } from './worker-failure.js';
import type { BesideConnection, Session } from './worker-session.js';

/** A run copied through and committed. */
export interface CopiedRun {
  /** The source tables, for logs. */
  tables: string[];
  /** The position it reached. */
  next: Position;
  changes: number;
  lastId: number;
  /** When its copy began. */
  started: number;
  /** Its commit did not wait for its flush (src/apply/chunk.ts commitWaits). */
  relaxed: boolean;
  event: (durationMs: number) => AppliedEvent;
}

/** What a copy needs of its worker at the moment. */
export interface RunContext {
  target: string;
  key: PositionKey;
  /** The most changes a run holds (a chunk's). */
  most: number;
  /** Nothing asks to see each change of the stream (Worker.streamAlone). */
  alone: boolean;
  /** Its commit may leave the flush to a later one. */
  relaxed: boolean;
  /** The plan made again where a replan is under way: what the look is taken beside. */
  planned: () => Promise<void>;
  /** A table's source shape changed since it was planned: the worker plans again (and reads by rows). */
  sourceChanged: (relids: readonly number[]) => Promise<boolean>;
}

/**
 * Runs copied one after another grow, doubling, to this many times a chunk's changes: each run costs a
 * target commit and a position (and a look, made while the one before it ends), paid 200 times over a
 * 1M-change backlog at runs of 5,000. The first stays a chunk's, whose rows show soonest. A 1M-change
 * backlog on one host: 260-280k rows/s where 250-267k (three runs each, alternating); a run's rows are
 * never in the daemon's memory, which holds the same however long a run.
 */
const runGrowth = 4;

/** The most changes of a run after `inARow` runs copied one after another, from a chunk's `chunk`. */
function runMost(chunk: number, inARow: number): number {
  return chunk * Math.min(runGrowth, 2 ** inARow);
}

export class WorkerRuns {
  /** The last chunk was all inserts, into tables that may be copied through: the next may be a run. */
  private afterInserts = false;
  /** The look at the run after the one being copied, taken as its source's side ended. */
  private lookedAhead: { from: Position; most: number; run: Promise<BulkRun | Error> } | undefined;
  /** Runs copied one after another since the last chunk read by rows: each next one may hold more. */
  private copiedInARow = 0;

  /** `openBeside`: a source connection of the worker's own, beside its lease (RunSources). */
  constructor(
    private readonly schema: string,
    private readonly openBeside: () => Promise<pg.Client>,
  ) {}

  /**
   * A chunk was read by rows: note whether it was one table's inserts, enough of them to copy. True:
   * the next changes are to be looked at for a run (not read ahead by rows).
   */
  afterChunk(session: Session, changes: readonly LogChange[], full: boolean, alone: boolean): boolean {
    this.copiedInARow = 0;
    this.afterInserts = full && runOfInserts(changes, session.plan.tables, session.roundTrip.copyFromRows);
    return this.afterInserts && alone;
  }

  /**
   * Copy the next changes of the window at `position` through, if they are a run of the table the last
   * chunk was; undefined when they are not, or either side refused the copy: they are read by rows.
   */
  async copy(session: Session, position: Position, at: RunContext): Promise<CopiedRun | undefined> {
    const afterInserts = this.afterInserts;
    this.afterInserts = false;
    const ahead = this.lookedAhead;
    this.lookedAhead = undefined;
    if (!afterInserts || !at.alone) return undefined;
    const { source, target } = session;
    const relids = [...session.plan.tables.keys()];
    const most = runMost(at.most, this.copiedInARow);
    // A look asked for as many changes as this run may hold, or the run's "fewer than asked" would end
    // the window early.
    const run =
      ahead !== undefined &&
      ahead.from.to === position.to &&
      ahead.from.appliedId === position.appliedId &&
      ahead.most === most
        ? await ahead.run
        : await lookAtRun(source, this.schema, relids, position, most);
    if (run instanceof Error) throw run;
    // The look reads the source by relids, which a plan made again keeps; what is copied, by the plan.
    await at.planned();
    const tables = tablesOfRun(run, session.plan.tables);
    if (tables === undefined || run.changes < session.roundTrip.copyFromRows) return undefined;
    if (await at.sourceChanged(tables.map((t) => t.relid))) return undefined;
    const started = performance.now();
    // Fewer than asked for: the window ends with them, and closes in the same transaction.
    const next = run.changes < most ? closeWindow(position) : { ...position, appliedId: run.lastId };
    const nextMost = runMost(at.most, this.copiedInARow + 1);
    const lookAhead = (): void => {
      if (next.to === undefined) return;
      const looked = lookAtRun(source, this.schema, relids, next, nextMost).catch(coerceError);
      this.lookedAhead = { from: next, most: nextMost, run: looked };
    };
    // A run of one table keeps to the lease (RunSources).
    const beside = tables.length > 1 ? this.besideOf(session) : undefined;
    const sources = { lease: source, beside };
    const copied = await onTarget(() =>
      copyRunThrough(
        sources,
        target,
        this.schema,
        run,
        tables,
        at.key,
        position,
        next,
        at.relaxed,
        lookAhead,
      ),
    );
    if (!copied) {
      // A COPY beside the lease may be left unread: that connection goes.
      this.lookedAhead = undefined;
      if (beside !== undefined) {
        session.beside = undefined;
        void beside.end().catch(() => undefined);
      }
      return undefined;
    }
    this.afterInserts = true;
    this.copiedInARow++;
    return {
      tables: tables.map((t) => t.sourceName),
      next,
      changes: run.changes,
      lastId: run.lastId,
      started,
      relaxed: at.relaxed,
      event: (ms) => runAppliedEvent(at.target, session.plan, run, ms),
    };
  }

  /**
   * A new session, or a target resumed after a pause: its first changes are looked at for a run before
   * any is read by rows. A backlog of inserts then goes by runs from its first change, where a first
   * chunk read by rows and the small ones after it (src/apply/log-reader.ts, ChunkRamp) took about 25 ms
   * of a loopback start on 20,000 changes. A look that finds no run costs one statement on the source.
   */
  lookForRunFirst(): void {
    this.copiedInARow = 0;
    this.afterInserts = true;
    this.lookedAhead = undefined;
  }

  /**
   * The session's source connection beside its lease, if it is open. The first run of several tables
   * asks for it and goes on without it: no run waits for a connection to open (about 10 ms under a
   * start's load). Where it could not be opened, the session's runs use the lease alone.
   */
  private besideOf(session: Session): pg.Client | undefined {
    if (session.beside === undefined) {
      const beside: BesideConnection = { opening: this.openBeside().catch(() => undefined), open: undefined };
      void beside.opening.then((client) => (beside.open = client));
      session.beside = beside;
    }
    return session.beside.open;
  }

  /** Forget the last chunk and the look ahead: after a failure. */
  discard(): void {
    this.copiedInARow = 0;
    this.afterInserts = false;
    this.lookedAhead = undefined;
  }
}
