/**
 * What operators asked of a target, as its worker holds it: the changes skipped for it (`trigsync skip`)
 * and the sync requested (`trigsync sync`). Read from the source when an operator acts (their NOTIFY
 * marks it stale) and now and then, since a NOTIFY is a hint that may be lost.
 */
import type pg from 'pg';

import { loadSkipped } from '../changelog/error-queue.js';
import { loadSyncRequest, type SyncRequest } from '../sync/requests.js';

/** A sync request whose NOTIFY was lost is found within this long. */
const requestCheckIntervalMs = 5_000;

export class OperatorState {
  skipped = new Set<number>();
  /** A sync asked of this target: copied before anything else is applied, or beside the stream. */
  syncRequest: SyncRequest | undefined;
  /** An operator acted: read it all again before applying. */
  private stale = true;
  private checkedAt = 0;

  constructor(
    private readonly schema: string,
    private readonly target: string,
  ) {}

  /** An operator acted (or the session is new): read again at the next turn. */
  markStale(): void {
    this.stale = true;
  }

  /** Read it all from the source now. */
  async load(source: pg.ClientBase): Promise<void> {
    this.checkedAt = Date.now();
    this.skipped = await loadSkipped(source, this.schema, this.target);
    this.syncRequest = await loadSyncRequest(source, this.schema, this.target);
    this.stale = false;
  }

  /** Read it again if an operator acted, or the sync request is due a look; true if it was read. */
  async refresh(source: pg.ClientBase): Promise<boolean> {
    if (!this.stale && Date.now() - this.checkedAt >= requestCheckIntervalMs) {
      this.checkedAt = Date.now();
      const request = await loadSyncRequest(source, this.schema, this.target);
      this.stale = request?.requestedAt !== this.syncRequest?.requestedAt;
    }
    if (!this.stale) return false;
    await this.load(source);
    return true;
  }

  /** The sync requested at `requestedAt` is done (unless another was asked meanwhile). */
  synced(requestedAt: string | undefined = this.syncRequest?.requestedAt): void {
    if (this.syncRequest?.requestedAt === requestedAt) this.syncRequest = undefined;
  }
}
