/**
 * How a sync shows its progress: saved on the source's registry about once a second (for `trigsync
 * sync` and `status`), a log line every few seconds, and events for the metrics.
 */
import { coerceError } from '../failure/errors.js';
import type { TrigsyncEvents } from '../lib/events.js';
import type { Logger } from '../lib/logger.js';
import type { SyncProgress } from './copy-tables.js';

const saveIntervalMs = 1_000;
const logIntervalMs = 5_000;

/** Rows, percent of the planner's estimate, rate and time left, as one line. */
export function describeSyncProgress(p: {
  table: string;
  rows: number;
  estimate: number | undefined;
  seconds: number;
}): string {
  const rate = p.seconds > 0 ? p.rows / p.seconds : 0;
  const parts = [`${p.table}: ${p.rows.toLocaleString('en-US')} rows`];
  if (p.estimate !== undefined && p.estimate > 0) {
    const percent = Math.min(100, (100 * p.rows) / p.estimate);
    parts.push(`of ~${p.estimate.toLocaleString('en-US')} (${percent.toFixed(0)}%)`);
    if (rate > 0 && p.rows < p.estimate) parts.push(`ETA ${Math.ceil((p.estimate - p.rows) / rate)} s`);
  }
  parts.push(`${Math.round(rate).toLocaleString('en-US')} rows/s`);
  return parts.join(', ');
}

export class SyncReporter {
  private readonly startedAt = new Date();
  private savedAt = 0;
  private loggedAt = Date.now();
  private saving: Promise<void> | undefined;

  constructor(
    private readonly target: string,
    private readonly log: Logger,
    private readonly events: TrigsyncEvents,
    private readonly save: (progress: {
      table: string;
      rows: number;
      estimate: number | undefined;
      startedAt: Date;
    }) => Promise<void>,
  ) {}

  progress({ table, rows, estimate }: SyncProgress): void {
    const now = Date.now();
    this.events.emit('sync:progress', { target: this.target, table, rows, estimate });
    if (now - this.loggedAt >= logIntervalMs) {
      this.loggedAt = now;
      const seconds = (now - this.startedAt.getTime()) / 1000;
      this.log.info(
        { table, rows, estimate },
        `sync: ${describeSyncProgress({ table, rows, estimate, seconds })}`,
      );
    }
    // One save at a time; a save skipped now is made up by the next progress report.
    if (this.saving !== undefined || now - this.savedAt < saveIntervalMs) return;
    this.savedAt = now;
    this.saving = this.save({ table, rows, estimate, startedAt: this.startedAt })
      .catch((e: unknown) => this.log.warn({ err: coerceError(e).message }, 'sync: could not save progress'))
      .finally(() => {
        this.saving = undefined;
      });
  }

  done(rows: number): void {
    const seconds = (Date.now() - this.startedAt.getTime()) / 1000;
    this.events.emit('sync:done', { target: this.target, rows, seconds });
    this.log.info({ rows, seconds }, 'sync: done; following the log from the copy on');
  }
}
