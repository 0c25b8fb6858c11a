/**
 * A copy of some of a target's tables that runs beside its worker (`sync TARGET --table T`, a table
 * added to the config), on connections of its own, so that the other tables keep flowing. The worker
 * leaves out the copied tables' changes that the copy's snapshot sees (their floor, as after any copy)
 * and stops before the first one that the snapshot does not see until the copy has committed
 * (barrier()): so nothing is applied twice or lost, the worker's position never passes a change the
 * copy lacks, and the other tables wait only when they come after such a change.
 */
import type pg from 'pg';

import type { Config, TargetConfig } from '../config/types.js';
import { connect, daemonConnectOptions } from '../db/connect.js';
import type { TermFence } from '../db/term-fence.js';
import { setTextForms } from '../db/text-forms.js';
import { coerceError } from '../failure/errors.js';
import type { TrigsyncEvents } from '../lib/events.js';
import type { Logger } from '../lib/logger.js';
import type { Doorbell } from '../lib/runnable.js';
import { parseSnapshot, visibleIn, type Snapshot } from '../changelog/snapshot.js';
import { saveSyncProgress, type SyncRequest } from './requests.js';
import type { TablePlan } from '../apply/plan.js';
import { applyAsReplica } from '../apply/session-role.js';
import { copyTables, type SyncResult } from './copy-tables.js';
import { SyncReporter } from './progress.js';

export interface SideCopyDeps {
  config: Config;
  target: TargetConfig;
  origin: string;
  fence: TermFence;
  log: Logger;
  events: TrigsyncEvents;
  /** Rung when the copy has ended, either way: a worker waiting at the barrier goes on. */
  wake: Doorbell;
}

export class SideCopy {
  readonly relids: ReadonlySet<number>;
  /** The copy's snapshot; known once start() returned. */
  snapshot: Snapshot | undefined;
  /** Resolved or rejected once it has ended; `ended` says which without waiting. */
  private done: Promise<SyncResult> | undefined;
  private outcome: { result?: SyncResult; error?: unknown } | undefined;
  private readonly clients: pg.Client[] = [];

  private constructor(
    private readonly deps: SideCopyDeps,
    readonly request: SyncRequest,
    readonly tables: readonly TablePlan[],
  ) {
    this.relids = new Set(tables.map((t) => t.relid));
  }

  /** Start the copy; returns once its snapshot is fixed (or throws why it could not begin). */
  static async start(
    deps: SideCopyDeps,
    request: SyncRequest,
    tables: readonly TablePlan[],
  ): Promise<SideCopy> {
    const copy = new SideCopy(deps, request, tables);
    await copy.begin();
    return copy;
  }

  get ended(): boolean {
    return this.outcome !== undefined;
  }

  /**
   * Where the worker must stop in `changes` (ordered as applied): the index of the first change of a
   * copied table that the copy's snapshot does not see, or undefined when it may apply them all.
   */
  barrier(changes: readonly { relid: number; txid: string }[]): number | undefined {
    if (this.ended) return undefined;
    const index = changes.findIndex((c) => this.relids.has(c.relid) && !visibleIn(c.txid, this.snapshot!));
    return index < 0 ? undefined : index;
  }

  /** Once ended: what the copy did, or its error thrown. */
  result(): SyncResult {
    const { result, error } = this.outcome!;
    if (result === undefined) throw error;
    return result;
  }

  /** Stop it (the worker disconnects): its target transaction rolls back, the request stays. */
  async abort(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.end().catch(() => undefined)));
    await this.done?.catch(() => undefined);
  }

  private async begin(): Promise<void> {
    try {
      await this.launch();
    } catch (thrown) {
      await this.abort();
      throw thrown;
    }
  }

  private async launch(): Promise<void> {
    const { config, target: targetConfig, origin, fence, log, events } = this.deps;
    const source = await fence.connect();
    this.clients.push(source);
    const target = await connect(targetConfig.url, daemonConnectOptions(config));
    this.clients.push(target);
    await target.query(setTextForms('session'));
    await applyAsReplica(target);
    const report = new SyncReporter(targetConfig.name, log, events, (progress) =>
      saveSyncProgress(source, config.schema, targetConfig.name, progress),
    );
    let snapshotTaken: (snapshot: string) => void = () => undefined;
    const snapshot = new Promise<string>((resolve) => (snapshotTaken = resolve));
    const done = copyTables({
      config,
      targetConfig,
      origin,
      tables: this.tables,
      target,
      progress: (p) => report.progress(p),
      onSnapshot: snapshotTaken,
    });
    this.done = done;
    done
      .then(
        (result) => {
          report.done(result.rows);
          this.outcome = { result };
        },
        (error: unknown) => {
          log.warn({ err: coerceError(error).message }, 'sync: the copy beside the stream failed');
          this.outcome = { error };
        },
      )
      .finally(() => {
        void Promise.all(this.clients.map((c) => c.end().catch(() => undefined)));
        this.deps.wake.ring();
      });
    // A copy that fails before its snapshot is fixed (a lock, a connection) fails begin() with it.
    this.snapshot = parseSnapshot(await Promise.race([snapshot, done.then(() => snapshot)]));
  }
}
