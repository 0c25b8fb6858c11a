/**
 * One target's worker: reads the log in windows (src/log/window.ts) and applies each chunk to the target
 * in one transaction together with the position it reaches, then updates the source's copy. One ordered
 * stream per target; targets run in parallel and never wait for each other (G4).
 *
 * A failure parks the target (G5): its position does not move, so nothing later reaches it. A change the
 * target refuses goes to the error queue, exactly that one (src/apply/chunk.ts), and is retried at the
 * slower data-error cadence or at once on `trigsync retry`; `trigsync skip` drops it for this target.
 * Connection failures are retried with backoff until they heal.
 */
import type pg from 'pg';

import type { SourceTables } from '../capture/source-tables.js';
import { forgetDrained } from '../capture/table-set.js';
import { formatQualifiedName } from '../config/identifiers.js';
import { configSecrets, redactSecrets } from '../config/redact.js';
import type { Config, TargetConfig } from '../config/types.js';
import { connect, daemonConnectOptions } from '../db/connect.js';
import type { TermFence } from '../db/term-fence.js';
import { classifyError, coerceError, ConfigError, sqlState, type ErrorKind } from '../failure/errors.js';
import type { TrigsyncEvents } from '../lib/events.js';
import type { Logger } from '../lib/logger.js';
import { Backoff, Doorbell, Runnable } from '../lib/runnable.js';
import type { TargetState } from '../lib/status-report.js';
import { parseSnapshot, seesAllOf, type Snapshot } from '../log/snapshot.js';
import {
  finishSyncRequest,
  loadRegisteredPosition,
  loadSyncRequest,
  saveRegisteredPosition,
  saveSyncProgress,
  type SyncRequest,
} from '../log/targets.js';
import { clearFailures, loadSkipped, parkTarget, recordFailure } from '../log/error-queue.js';
import { claimPosition, PositionLost } from '../log/horizon.js';
import { closeWindow, positionAt, takeTick, type LogChange, type Position } from '../log/window.js';
import { wholeStatements } from './batch.js';
import { applyFindingCulprit, ChangeRefused, prepareChunk, type PositionKey } from './chunk.js';
import { reportConflicts, type Conflict } from './conflicts.js';
import type { TargetPlan } from './plan.js';
import { PlanKeeper, type Drain } from './plan-keeper.js';
import { SequenceKeeper } from './sequences.js';
import { appliedEvent } from './applied-event.js';
import { LogReader, prepareReaderSession } from './log-reader.js';
import type { SharedLog } from './shared-log.js';
import { TargetLockHeld } from './target-lock.js';
import { objectText, rowFields } from './row-image.js';
import { saveAppliedPosition } from './statements.js';
import { copyTables, dropFloors, type SyncResult } from './sync.js';
import { SyncReporter } from './sync-progress.js';
import { SideCopy } from './side-copy.js';
import { startTargetSession, type TriggerMode } from './session-role.js';
import { RoundTrip } from './copy-in.js';

export interface WorkerDeps {
  config: Config;
  target: TargetConfig;
  /** This source's identity; the target keys our position by it. */
  origin: string;
  sourceTables: SourceTables;
  logger: Logger;
  events: TrigsyncEvents;
  /** Ask the source to notify us at its next captured write. */
  armDoorbell: () => Promise<void>;
  /** The leader's term: source sessions join it (src/db/term-fence.ts). */
  fence: TermFence;
  /** Tables removed from this target's config, applied up to what the log held then. */
  drains?: readonly Drain[];
  /** The daemon's reading of the log, shared with the other workers (src/apply/shared-log.ts). */
  log: SharedLog;
}

/** A sync request whose NOTIFY was lost is found within this long. */
const requestCheckIntervalMs = 5_000;
/** Idle workers refresh the source's copy of their position at most this often. */
const idleMirrorIntervalMs = 2_000;

/** A failure on the target's side (its connection, its schema), as opposed to the source's. */
class TargetFailure extends Error {
  constructor(override readonly cause: unknown) {
    super(coerceError(cause).message, { cause });
  }
}

async function onTarget<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (thrown) {
    throw thrown instanceof ChangeRefused ? thrown : new TargetFailure(thrown);
  }
}

export class TargetWorker extends Runnable {
  readonly name: string;
  /** Rung by the doorbell's notifications: new changes may be there. */
  readonly wake = new Doorbell();
  /** Rung by `trigsync retry` and `skip`: a parked target tries again now. */
  private readonly retryNow = new Doorbell();
  private readonly log: Logger;
  private source: pg.Client | undefined;
  private target: pg.Client | undefined;
  /** Rebuilt after a failure and when a source table is altered (src/apply/plan-keeper.ts). */
  private plan: TargetPlan | undefined;
  private readonly planKeeper: PlanKeeper;
  /** Keeps the target's sequences at or above the source's (src/apply/sequences.ts). */
  private readonly sequences: SequenceKeeper;
  private position: Position | undefined;
  private skipped = new Set<number>();
  /** A sync asked of this target: copied before anything else is applied, or beside the stream. */
  private syncRequest: SyncRequest | undefined;
  /** The copy of some tables that runs beside the stream (src/apply/side-copy.ts). */
  private sideCopy: SideCopy | undefined;
  /** Skips and the sync request are reloaded from the source when an operator acts. */
  private operatorStale = true;
  private requestCheckedAt = 0;
  private floors = new Map<number, Snapshot>();
  /** The target link's round trip, timed anew on each connection: large inserts go by COPY where short. */
  private roundTrip = new RoundTrip();
  private state: TargetState = 'new';
  private mirroredAt = 0;
  /** The change whose conflict parked this target, reported already. */
  private parkedConflictId: number | undefined;
  private readonly reader: LogReader;
  /** How the target's triggers and foreign-key actions see trigsync's writes (session-role.ts). */
  private triggerMode: TriggerMode = 'origin';
  /** The position was checked against the log and registered since the last connect (log/horizon.ts). */
  private positionClaimed = false;
  /** The log cannot serve the position: only a copy of every table, from a new position, helps. */
  private positionLost = false;
  /** Changes the source counts as applied to a target that holds no position of its own. */
  private unrecordedChanges = 0;

  constructor(private readonly deps: WorkerDeps) {
    super();
    this.name = deps.target.name;
    this.log = deps.logger.child({ target: deps.target.name });
    const { batchSize, batchBytes } = deps.config.apply;
    this.reader = new LogReader(deps.log, { changes: batchSize, bytes: batchBytes });
    this.planKeeper = new PlanKeeper(deps.config, deps.target, deps.sourceTables, this.log, deps.drains);
    this.sequences = new SequenceKeeper(deps.config, deps.target, this.log);
  }

  /** An operator asked to retry (or skipped a change, or asked for a sync): act now. */
  retry(reload: boolean): void {
    if (reload) this.operatorStale = true;
    this.retryNow.ring();
    this.wake.ring();
  }

  protected async loop(signal: AbortSignal): Promise<void> {
    const backoff = new Backoff(this.deps.config.retry);
    while (this.shouldRun()) {
      try {
        await this.connect();
        if (this.syncRequest !== undefined && this.sideCopy === undefined) {
          if (!(await this.copyAlongside(this.syncRequest))) {
            await this.sync(this.syncRequest);
            continue;
          }
        }
        if (this.sideCopy?.ended === true) await this.sideCopyEnded();
        let applied = await this.step();
        if (applied < 0) {
          // At a change the copy beside the stream lacks: wait for the copy, which rings when it ends.
          await this.wake.wait(this.deps.config.apply.pollIntervalMs, signal);
          continue;
        }
        backoff.reset();
        if (applied > 0) {
          await this.reader.pace(this.position!, signal);
          continue;
        }
        // Idle: ring-me-next-time, then look once more, since a write may have landed before the arming.
        await this.deps.armDoorbell();
        applied = await this.step();
        if (applied > 0) continue;
        // Idle workers poll together: their looks share a tick, and their positions stay one.
        await this.wake.wait(this.deps.log.untilPoll(this.deps.config.apply.pollIntervalMs), signal);
      } catch (thrown) {
        this.reader.discard();
        if (thrown instanceof TargetFailure && thrown.cause instanceof TargetLockHeld) {
          // Not a failure of this target: a former leader is finishing its batch. Do not park it.
          this.log.info(thrown.message);
          await this.disconnect();
          await this.retryNow.wait(backoff.next(), signal);
          continue;
        }
        const kind = await this.failed(thrown);
        if (kind === 'connection') await this.disconnect();
        // The target or the source may be fixed by the time of the retry: plan against them anew.
        else this.plan = undefined;
        const delay = kind === 'connection' ? backoff.next() : this.deps.config.retry.dataErrorDelayMs;
        await this.retryNow.wait(delay, signal);
      }
    }
    await this.disconnect();
  }

  private get key(): PositionKey {
    return { schema: this.deps.config.schema, origin: this.deps.origin, target: this.name };
  }

  private async connect(): Promise<void> {
    const { config } = this.deps;
    if (this.source === undefined) {
      const source = await this.deps.fence.connect();
      await prepareReaderSession(source).catch(async (thrown: unknown) => {
        await source.end().catch(() => undefined);
        throw thrown;
      });
      this.source = source;
    }
    // The operator's NOTIFY is a hint that may be lost (a listener reconnecting): look now and then.
    if (!this.operatorStale && Date.now() - this.requestCheckedAt >= requestCheckIntervalMs) {
      this.requestCheckedAt = Date.now();
      const request = await loadSyncRequest(this.source, config.schema, this.name);
      this.operatorStale = request?.requestedAt !== this.syncRequest?.requestedAt;
    }
    if (this.operatorStale) {
      this.requestCheckedAt = Date.now();
      this.skipped = await loadSkipped(this.source, config.schema, this.name);
      this.syncRequest = await loadSyncRequest(this.source, config.schema, this.name);
      this.operatorStale = false;
      // An operator who acts may have fixed a table first (added a column before a sync, say).
      this.plan = undefined;
    }
    if (this.target === undefined) await this.connectTarget();
    if (this.plan === undefined) await this.planAgain();
    if (!this.positionClaimed) await this.claimPosition();
  }

  /**
   * Before reading anything: can the log serve the target's position? A position it cannot serve parks
   * the target (PositionLost names what happened) until a copy of all its tables gives it a new one.
   */
  private async claimPosition(): Promise<void> {
    try {
      if (this.unrecordedChanges > 0) {
        // Every batch records its position on the target: a target without one was replaced, or restored
        // to before its first batch, and lacks what the source counts as applied.
        throw new PositionLost(
          `target ${this.name}: it holds no record of what it applied from this source, but the source ` +
            `counts ${this.unrecordedChanges} changes applied to it: the target database was replaced, or ` +
            `restored from an older backup. Copy it again with \`trigsync sync ${this.name}\``,
        );
      }
      await claimPosition(this.source!, this.deps.config.schema, this.name, this.position!);
      this.positionLost = false;
    } catch (thrown) {
      if (!(thrown instanceof PositionLost)) throw thrown;
      this.positionLost = true;
      if (!this.syncCoversAll(this.syncRequest)) throw thrown;
      this.log.warn({ err: thrown.message }, 'position lost; the requested sync copies every table');
    }
    this.positionClaimed = true;
  }

  private syncCoversAll(request: SyncRequest | undefined): boolean {
    if (request === undefined) return false;
    const tables = [...this.plan!.tables.values()];
    return tables.every((t) => request.tables.length === 0 || request.tables.includes(t.sourceName));
  }

  /** Plan against the target as it is now; until that succeeds there is no plan to apply with. */
  private async planAgain(): Promise<void> {
    this.plan = undefined;
    const client = this.target!;
    this.plan = await onTarget(() => this.planKeeper.build(client));
  }

  private async connectTarget(): Promise<void> {
    const { config, target } = this.deps;
    const client = await onTarget(() => connect(target.url, daemonConnectOptions(config)));
    try {
      await onTarget(async () => {
        const start = await startTargetSession(client, config.schema, this.deps.origin, this.name);
        this.triggerMode = start.mode;
        this.log.info({ triggers: this.triggerMode }, `target applies as ${this.triggerMode}`);
        [this.position, this.floors] = [start.position, start.floors];
        this.roundTrip = new RoundTrip();
        this.roundTrip.observe(start.roundTripMs);
        this.unrecordedChanges = 0;
      });
      this.position ??= await this.registeredPosition();
    } catch (thrown) {
      await client.end().catch(() => undefined);
      throw thrown;
    }
    this.target = client;
    this.log.info('connected to target');
  }

  private async registeredPosition(): Promise<Position> {
    const registered = await loadRegisteredPosition(this.source!, this.deps.config.schema, this.name);
    if (registered === undefined)
      throw new Error(`target ${this.name} is not registered on the source; run install`);
    this.unrecordedChanges = registered.appliedChanges;
    this.state = registered.state === 'parked' ? 'catching_up' : registered.state;
    return registered.position;
  }

  /**
   * Apply the next chunk; returns how many changes it read (0: caught up; -1: it stopped at a change that
   * the copy beside the stream lacks, and applied nothing).
   */
  private async step(): Promise<number> {
    const source = this.source!;
    const position = await this.reader.open(source, this.position!);
    const read = await this.reader.read(source, this.plan!.readQuery, position);
    // A full chunk (apply.batchSize changes, or apply.batchBytes) is not the window's last, and may end
    // inside an UPDATE statement, whose rows are applied together (batch.ts).
    let { full } = read;
    let changes = full ? wholeStatements(read.changes) : read.changes;
    const barrier = this.sideCopy?.barrier(changes);
    if (barrier !== undefined) {
      changes = wholeStatements(changes.slice(0, barrier));
      full = true;
      if (changes.length === 0) {
        this.reader.discard();
        return -1;
      }
    }
    if (changes.length === 0) {
      this.position = closeWindow(position);
      await this.mirror('live', 0, false);
      await this.sequences.keep(source, this.target!, this.plan!, true);
      await this.forgetPassedDrains();
      return 0;
    }
    const described = (client: pg.ClientBase, relids: number[]) =>
      this.deps.log.describe(client, changes, relids);
    if (await this.planKeeper.sourceChanged(source, changes, described)) await this.planAgain();
    const started = performance.now();
    const target = this.target!;
    const scope = {
      tables: this.plan!.tables,
      skipped: this.skipped,
      conflict: this.deps.target.conflict,
      floors: this.floors,
      ceilings: this.planKeeper.ceilings,
      roundTrip: this.roundTrip,
    };
    // The window's last chunk closes it in the same transaction.
    const whole = full ? undefined : closeWindow(position);
    this.position = position;
    if (whole === undefined) {
      const ahead = this.reader.readAhead(source, this.plan!.readQuery, {
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
        (next, part, conflicts) => this.applied(next, part, conflicts, started),
        whole,
      ),
    );
    await this.sequences.keep(source, target, this.plan!, whole !== undefined);
    await this.forgetPassedDrains();
    return changes.length;
  }

  /** After a commit on the target: the new position, the source's copy, the error queue, events. */
  private async applied(
    next: Position,
    part: readonly LogChange[],
    conflicts: readonly Conflict[],
    started: number,
  ): Promise<void> {
    const wasParked = this.state === 'parked';
    if (next.to === undefined) await this.dropPassedFloors(next);
    this.reportConflicts(conflicts, this.deps.target.conflict === 'skip' ? 'skipped' : 'applied');
    this.position = next;
    await this.mirror(next.to === undefined ? 'live' : 'catching_up', part.length, true);
    if (wasParked) {
      await clearFailures(this.source!, this.deps.config.schema, this.name, part.at(-1)!.id);
      this.log.info('target accepts changes again');
    }
    const durationMs = performance.now() - started;
    this.deps.events.emit('batch:applied', appliedEvent(this.name, this.plan!, part, durationMs));
  }

  /** Copy the requested tables (src/apply/sync.ts); then the stream goes on from its position. */
  private async sync(request: SyncRequest): Promise<void> {
    const { config, target, origin } = this.deps;
    const all = [...this.plan!.tables.values()];
    const tables =
      request.tables.length === 0 ? all : all.filter((t) => request.tables.includes(t.sourceName));
    // A position the log cannot serve is replaced by one taken before the copy's snapshot: the copy
    // holds what it sees, the floors leave that out of the stream, and the stream brings the rest. The
    // source's copy takes it now (a copy that fails is made again, from a new one).
    const restart = this.positionLost ? positionAt(await takeTick(this.source!, config.schema)) : undefined;
    if (restart !== undefined) this.position = restart;
    await this.mirror('syncing', 0, true);
    this.log.info({ tables: tables.map((t) => t.sourceName) }, 'sync: copying');
    const report = new SyncReporter(this.name, this.log, this.deps.events, (progress) =>
      saveSyncProgress(this.source!, config.schema, this.name, progress),
    );
    const result = await onTarget(() =>
      copyTables({
        config,
        targetConfig: target,
        origin,
        tables,
        target: this.target!,
        progress: (p) => report.progress(p),
        restart: restart === undefined ? undefined : { key: this.key, position: restart },
      }),
    );
    if (restart !== undefined) {
      this.positionLost = false;
      this.unrecordedChanges = 0;
    }
    for (const { table, why } of result.merged) {
      this.log.info({ table, why }, 'sync: merged into the target rather than emptied and filled');
    }
    for (const table of tables) this.floors.set(table.relid, parseSnapshot(result.snapshot));
    await finishSyncRequest(this.source!, config.schema, this.name, request);
    this.syncRequest = undefined;
    report.done(result.rows);
    await this.mirror('catching_up', 0, true);
  }

  /**
   * Copy the requested tables beside the stream when the request names some of the tables and the
   * position stands (src/apply/side-copy.ts); false: copy them in the stream's place.
   */
  private async copyAlongside(request: SyncRequest): Promise<boolean> {
    const all = [...this.plan!.tables.values()];
    const tables = all.filter((t) => request.tables.includes(t.sourceName));
    if (this.positionLost || request.tables.length === 0 || tables.length === all.length) return false;
    const { config, target, origin, fence, events } = this.deps;
    this.log.info({ tables: tables.map((t) => t.sourceName) }, 'sync: copying beside the stream');
    const copy = await SideCopy.start(
      { config, target, origin, fence, events, log: this.log, wake: this.wake },
      request,
      tables,
    );
    for (const relid of copy.relids) this.floors.set(relid, copy.snapshot!);
    this.sideCopy = copy;
    return true;
  }

  /** The copy beside the stream has ended: its request done, or its error thrown (the target parks). */
  private async sideCopyEnded(): Promise<void> {
    const copy = this.sideCopy!;
    this.sideCopy = undefined;
    let result: SyncResult;
    try {
      result = copy.result();
    } catch (thrown) {
      // Rolled back: the target holds no floor of it. The request stays, and is copied again.
      for (const relid of copy.relids) this.floors.delete(relid);
      throw new TargetFailure(thrown);
    }
    for (const { table, why } of result.merged) {
      this.log.info({ table, why }, 'sync: merged into the target rather than emptied and filled');
    }
    await finishSyncRequest(this.source!, this.deps.config.schema, this.name, copy.request);
    if (this.syncRequest?.requestedAt === copy.request.requestedAt) this.syncRequest = undefined;
  }

  /** Drains whose ceiling the position has passed are done: said once, and forgotten on the source. */
  private async forgetPassedDrains(): Promise<void> {
    const drains = this.planKeeper.drains;
    if (drains.length === 0 || this.position?.to !== undefined) return;
    const from = parseSnapshot(this.position!.from.snapshot);
    for (const drain of drains.filter((d) => seesAllOf(from, d.until))) {
      await forgetDrained(this.source!, this.deps.config.schema, this.name, drain.relid);
      this.planKeeper.drained(drain.relid);
      this.log.info(
        { table: formatQualifiedName(drain.table) },
        'removed from the config: its changes up to the removal are applied, later ones are not',
      );
    }
  }

  /** Floors that the stored position has passed hide nothing any more. */
  private async dropPassedFloors(position: Position): Promise<void> {
    if (this.floors.size === 0) return;
    const from = parseSnapshot(position.from.snapshot);
    const passed = [...this.floors].filter(([, floor]) => seesAllOf(from, floor)).map(([relid]) => relid);
    if (passed.length === 0) return;
    await dropFloors(this.target!, this.deps.config.schema, this.deps.origin, this.name, passed);
    for (const relid of passed) this.floors.delete(relid);
  }

  /**
   * Copy the position to the source; when nothing was applied, only now and then, and to the target
   * first: the source's copy is never ahead of the target's own record, since the pruner goes by the
   * copy and a worker that connects checks the record against what the pruner removed (log/horizon.ts).
   */
  private async mirror(state: TargetState, applied: number, force: boolean): Promise<void> {
    const now = Date.now();
    if (!force && state === this.state && now - this.mirroredAt < idleMirrorIntervalMs) return;
    if (!force) {
      const { schema } = this.deps.config;
      await onTarget(() =>
        saveAppliedPosition(this.target!, schema, this.deps.origin, this.name, this.position!),
      );
    }
    await saveRegisteredPosition(
      this.source!,
      this.deps.config.schema,
      this.name,
      this.position!,
      state,
      applied,
    );
    this.mirroredAt = now;
    this.setState(state);
  }

  private setState(state: TargetState): void {
    if (state === this.state) return;
    this.state = state;
    this.deps.events.emit('target:state', { target: this.name, state });
  }

  private reportConflicts(
    conflicts: readonly Conflict[],
    resolution: 'applied' | 'skipped' | 'parked',
  ): void {
    reportConflicts(conflicts, { target: this.name, resolution, events: this.deps.events, log: this.log });
  }

  /** Log and record a failure; returns its kind, which decides how long to wait. */
  private async failed(thrown: unknown): Promise<ErrorKind> {
    // A ConfigError here is a plan that no longer fits (src/apply/plan-keeper.ts): the target parks on it.
    const parks =
      thrown instanceof ChangeRefused ||
      thrown instanceof TargetFailure ||
      thrown instanceof ConfigError ||
      thrown instanceof PositionLost;
    const cause = thrown instanceof ChangeRefused || thrown instanceof TargetFailure ? thrown.cause : thrown;
    const kind = classifyError(cause);
    const sqlstate = sqlState(cause);
    const message = redactSecrets(coerceError(cause).message, configSecrets(this.deps.config));
    this.deps.events.emit('target:error', { target: this.name, kind, message, sqlstate });
    if (!parks) {
      this.log.warn({ kind, sqlstate, err: message }, 'source unavailable; retrying');
      return 'connection';
    }
    const source = this.source;
    const schema = this.deps.config.schema;
    if (thrown instanceof ChangeRefused) {
      const change = thrown.change;
      // A parked conflict is retried until resolved: count it once.
      if (thrown.conflict !== undefined && this.parkedConflictId !== change.id) {
        this.parkedConflictId = change.id;
        this.reportConflicts([thrown.conflict], 'parked');
      }
      const table = this.plan?.tables.get(change.relid);
      const key =
        table === undefined || change.row === null
          ? null
          : objectText(table.key, rowFields(change.row, new Set(table.key)));
      this.log.error(
        { kind, sqlstate, err: message, change: change.id, table: table?.sourceName, key },
        'change refused; target parked',
      );
      if (source !== undefined) {
        await recordFailure(source, schema, this.name, {
          changeId: change.id,
          table: table?.sourceName ?? String(change.relid),
          op: change.op,
          key,
          sqlstate,
          message,
          alsoSkips: thrown.conflict?.ids.filter((id) => id !== change.id),
        }).catch((e: unknown) =>
          this.log.warn({ err: coerceError(e).message }, 'could not record the failure'),
        );
      }
    } else {
      this.log.warn({ kind, sqlstate, err: message }, 'target failed; parked, retrying');
      if (source !== undefined) {
        await parkTarget(source, schema, this.name, message).catch(() => undefined);
      }
    }
    this.setState('parked');
    return kind === 'connection' ? 'connection' : 'data';
  }

  private async disconnect(): Promise<void> {
    await this.sideCopy?.abort();
    this.sideCopy = undefined;
    const clients = [this.source, this.target].filter((c) => c !== undefined);
    this.positionClaimed = false;
    this.source = undefined;
    this.target = undefined;
    this.plan = undefined;
    this.position = undefined;
    this.reader.discard();
    this.operatorStale = true;
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  }
}
