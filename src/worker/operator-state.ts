/**
 * What operators asked of a target, as its worker holds it: the changes skipped for it (`trigsync skip`),
 * the sync requested (`trigsync sync`) and whether it is paused (`trigsync pause`). Read from the source
 * when an operator acts (their NOTIFY marks it stale) and now and then, since a NOTIFY is a hint that may
 * be lost.
 */
import type pg from 'pg';

import { loadSkipped } from '../changelog/error-queue.js';
import { loadTargetPaused } from '../changelog/targets.js';
import { pipelinedPair } from '../db/pipeline.js';
import { loadSyncRequest, type SyncRequest } from '../sync/requests.js';

/** A sync request or a pause whose NOTIFY was lost is found within this long. */
export const requestCheckIntervalMs = 5_000;

export class OperatorState {
  skipped = new Set<number>();
  /** A sync asked of this target: copied before anything else is applied, or beside the stream. */
  syncRequest: SyncRequest | undefined;
  /** Paused: nothing is applied, and no session opened, until an operator resumes the target. */
  paused = false;
  /** An operator acted: read it all again before applying. */
  private stale = true;
  private checkedAt = 0;
  /** The pause alone, as a worker without a session reads it (pausedWithoutSession). */
  private pauseStale = true;
  private pauseCheckedAt = 0;

  constructor(
    private readonly schema: string,
    private readonly target: string,
  ) {}

  /** An operator acted (or the session is new): read again at the next turn. */
  markStale(): void {
    this.stale = true;
    this.pauseStale = true;
  }

  /** Read it all from the source now. */
  async load(source: pg.Client): Promise<void> {
    this.checkedAt = Date.now();
    this.skipped = await loadSkipped(source, this.schema, this.target);
    [this.syncRequest, this.paused] = await this.requests(source);
    this.stale = false;
    this.pauseStale = false;
    this.pauseCheckedAt = this.checkedAt;
  }

  /** Read it again if an operator acted, or the sync request is due a look; true if it was read. */
  async refresh(source: pg.Client): Promise<boolean> {
    if (!this.stale && Date.now() - this.checkedAt >= requestCheckIntervalMs) {
      this.checkedAt = Date.now();
      const [request, paused] = await this.requests(source);
      this.stale = request?.requestedAt !== this.syncRequest?.requestedAt || paused !== this.paused;
    }
    if (!this.stale) return false;
    await this.load(source);
    return true;
  }

  /** The sync request and the pause, in one round trip. */
  private requests(source: pg.Client): Promise<[SyncRequest | undefined, boolean]> {
    return pipelinedPair(
      source,
      () => loadSyncRequest(source, this.schema, this.target),
      () => loadTargetPaused(source, this.schema, this.target),
    );
  }

  /**
   * Whether the target is paused, for a worker without a session: read through `lease` (a source
   * connection, ended after) when an operator acted or the last look is due again.
   */
  async pausedWithoutSession(lease: () => Promise<pg.Client>): Promise<boolean> {
    if (this.pauseStale || Date.now() - this.pauseCheckedAt >= requestCheckIntervalMs) {
      const source = await lease();
      try {
        this.paused = await loadTargetPaused(source, this.schema, this.target);
      } finally {
        await source.end().catch(() => undefined);
      }
      // The skips and the sync request are read, with the pause again, when the session opens.
      this.pauseStale = false;
      this.pauseCheckedAt = Date.now();
    }
    return this.paused;
  }

  /** The sync requested at `requestedAt` is done (unless another was asked meanwhile). */
  synced(requestedAt: string | undefined = this.syncRequest?.requestedAt): void {
    if (this.syncRequest?.requestedAt === requestedAt) this.syncRequest = undefined;
  }
}
