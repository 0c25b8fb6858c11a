/**
 * A worker's copies of a sync (`trigsync sync`, a lost position): in the stream's place, or beside it
 * (src/sync/side-copy.ts) when the request names some of the tables and the position stands. Either way
 * the copy's snapshot becomes the floor of its tables: the stream leaves out what the copy holds.
 */
import type { Config, TargetConfig } from '../config/types.js';
import type { TermFence } from '../db/term-fence.js';
import type { TrigsyncEvents } from '../lib/events.js';
import type { Logger } from '../lib/logger.js';
import type { Doorbell } from '../lib/runnable.js';
import type { TargetState } from '../lib/status-report.js';
import { parseSnapshot, seesAllOf } from '../changelog/snapshot.js';
import { finishSyncRequest, saveSyncProgress, type SyncRequest } from '../sync/requests.js';
import { positionAt, takeTick, type Position } from '../changelog/window.js';
import type { PositionKey } from '../apply/chunk.js';
import type { TargetPlan } from '../apply/plan.js';
import { SideCopy } from '../sync/side-copy.js';
import { dropFloors } from '../apply/floors.js';
import { copyTables, type SyncResult } from '../sync/copy-tables.js';
import { SyncReporter } from '../sync/progress.js';
import { onTarget, TargetFailed } from './worker-failure.js';
import type { OperatorState } from './operator-state.js';
import type { Session } from './worker-session.js';

/** What a worker's copies need of it. */
export interface SyncContext {
  config: Config;
  target: TargetConfig;
  origin: string;
  fence: TermFence;
  events: TrigsyncEvents;
  name: string;
  key: PositionKey;
  log: Logger;
  /** Rung when a copy beside the stream ends. */
  wake: Doorbell;
  /** Record the session's position in this state, on the target and the source. */
  mirror: (session: Session, state: TargetState) => Promise<void>;
}

/** Whether a sync request copies every table of the plan. */
export function syncCoversAll(plan: TargetPlan, request: SyncRequest | undefined): boolean {
  if (request === undefined) return false;
  const tables = [...plan.tables.values()];
  return tables.every((t) => request.tables.length === 0 || request.tables.includes(t.sourceName));
}

function logMerged(context: SyncContext, result: SyncResult): void {
  for (const { table, why } of result.merged) {
    context.log.info({ table, why }, 'sync: merged into the target rather than emptied and filled');
  }
}

/** Copy the requested tables (src/sync/copy-tables.ts) in the stream's place, and mark the request done. */
async function copyInStreamPlace(
  context: SyncContext,
  session: Session,
  request: SyncRequest,
): Promise<void> {
  const { config, target, origin, name } = context;
  const all = [...session.plan.tables.values()];
  const tables = request.tables.length === 0 ? all : all.filter((t) => request.tables.includes(t.sourceName));
  // A position the log cannot serve is replaced by one taken before the copy's snapshot: the copy
  // holds what it sees, the floors leave that out of the stream, and the stream brings the rest. The
  // source's copy takes it now (a copy that fails is made again, from a new one).
  const restart = session.positionLost
    ? positionAt(await takeTick(session.source, config.schema))
    : undefined;
  if (restart !== undefined) session.position = restart;
  await context.mirror(session, 'syncing');
  context.log.info({ tables: tables.map((t) => t.sourceName) }, 'sync: copying');
  const report = new SyncReporter(name, context.log, context.events, (progress) =>
    saveSyncProgress(session.source, config.schema, name, progress),
  );
  const result = await onTarget(() =>
    copyTables({
      config,
      targetConfig: target,
      origin,
      tables,
      target: session.target,
      progress: (p) => report.progress(p),
      restart: restart === undefined ? undefined : { key: context.key, position: restart },
    }),
  );
  if (restart !== undefined) {
    session.positionLost = false;
    session.unrecordedChanges = 0;
  }
  logMerged(context, result);
  for (const table of tables) session.floors.set(table.relid, parseSnapshot(result.snapshot));
  await finishSyncRequest(session.source, config.schema, name, request);
  report.done(result.rows);
  await context.mirror(session, 'catching_up');
}

/**
 * Start copying the requested tables beside the stream when the request names some of the tables and
 * the position stands; undefined: they are to be copied in the stream's place.
 */
async function startSideCopy(
  context: SyncContext,
  session: Session,
  request: SyncRequest,
): Promise<SideCopy | undefined> {
  const all = [...session.plan.tables.values()];
  const tables = all.filter((t) => request.tables.includes(t.sourceName));
  if (session.positionLost || request.tables.length === 0 || tables.length === all.length) return undefined;
  const { config, target, origin, fence, events, log, wake } = context;
  log.info({ tables: tables.map((t) => t.sourceName) }, 'sync: copying beside the stream');
  const copy = await SideCopy.start({ config, target, origin, fence, events, log, wake }, request, tables);
  for (const relid of copy.relids) session.floors.set(relid, copy.snapshot!);
  return copy;
}

/** A copy beside the stream has ended: its request done, or its error thrown (the target parks). */
async function endSideCopy(context: SyncContext, session: Session, copy: SideCopy): Promise<void> {
  let result: SyncResult;
  try {
    result = copy.result();
  } catch (thrown) {
    // Rolled back: the target holds no floor of it. The request stays, and is copied again.
    for (const relid of copy.relids) session.floors.delete(relid);
    throw new TargetFailed(thrown);
  }
  logMerged(context, result);
  await finishSyncRequest(session.source, context.config.schema, context.name, copy.request);
}

/** Floors that the stored position has passed hide nothing any more: dropped on the target. */
export async function dropPassedFloors(
  context: SyncContext,
  session: Session,
  position: Position,
): Promise<void> {
  const { floors } = session;
  if (floors.size === 0) return;
  const from = parseSnapshot(position.from.snapshot);
  const passed = [...floors].filter(([, floor]) => seesAllOf(from, floor)).map(([relid]) => relid);
  if (passed.length === 0) return;
  await dropFloors(session.target, context.config.schema, context.origin, context.name, passed);
  for (const relid of passed) floors.delete(relid);
}

/** A worker's answer to the syncs asked of it: a copy beside its stream, or one in the stream's place. */
export class WorkerSyncs {
  /** The copy of some tables that runs beside the stream (src/sync/side-copy.ts). */
  private sideCopy: SideCopy | undefined;

  constructor(
    private readonly context: () => SyncContext,
    private readonly operator: OperatorState,
  ) {}

  /** A sync is asked or under way: `asked` has work, which reads the plan. */
  get busy(): boolean {
    return this.operator.syncRequest !== undefined || this.sideCopy !== undefined;
  }

  /** A copy runs beside the stream: the stream may not pass its barrier. */
  get besideStream(): boolean {
    return this.sideCopy !== undefined;
  }

  /** Where the stream must stop in `changes` for the copy beside it (side-copy.ts); undefined: nowhere. */
  barrier(changes: readonly { relid: number; txid: string }[]): number | undefined {
    return this.sideCopy?.barrier(changes);
  }

  /**
   * A sync asked: its tables are copied beside the stream where they can be (side-copy.ts), else in the
   * stream's place, then the stream goes on from its position (true: this turn was that copy). A copy
   * beside the stream that has ended is its request done, or its error thrown (the target parks).
   */
  async asked(session: Session): Promise<boolean> {
    const request = this.operator.syncRequest;
    if (request !== undefined && this.sideCopy === undefined) {
      this.sideCopy = await startSideCopy(this.context(), session, request);
      if (this.sideCopy === undefined) {
        await copyInStreamPlace(this.context(), session, request);
        this.operator.synced();
        return true;
      }
    }
    const copy = this.sideCopy;
    if (copy?.ended === true) {
      this.sideCopy = undefined;
      await endSideCopy(this.context(), session, copy);
      this.operator.synced(copy.request.requestedAt);
    }
    return false;
  }

  /** The worker disconnects: a copy beside the stream stops. */
  async abort(): Promise<void> {
    await this.sideCopy?.abort();
    this.sideCopy = undefined;
  }
}
