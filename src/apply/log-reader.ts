/**
 * How a worker reads its windows of the log (src/log/window.ts): ticks that open them, paced when the
 * source is busy, and each next chunk read from the source while the current one applies to the target.
 */
import type pg from 'pg';

import { coerceError } from '../failure/errors.js';
import { sleep } from '../lib/runnable.js';
import { openWindow, readWindow, takeTick, type LogChange, type Position } from '../log/window.js';

/**
 * A window of this many changes means a busy source: the next window opens only `busyWindowMs` after
 * this one did, so that windows grow and their fixed cost (a tick, the source's and the target's commits,
 * a dozen round trips) is paid once per hundreds of changes rather than per few dozen. A quiet source's
 * windows are smaller and open at once: its latency stays that of one round of reading and applying.
 */
const busyWindowChanges = 50;
const busyWindowMs = 50;

/**
 * Settings for the source session that reads the log. A window's chunk is "the next N changes by id
 * that pass the visibility filters": read best by walking the primary key in order and stopping after
 * N. The planner cannot estimate pg_visible_in_snapshot() and, with statistics that trail a fast-growing
 * log, expects a handful of rows; it then prefers a bitmap scan of the whole rest of the window and a
 * sort, every chunk again: reading a 1M-change backlog took 27 s that way, 3.3 s walking the key.
 */
export async function prepareReaderSession(client: pg.ClientBase): Promise<void> {
  await client.query('set enable_bitmapscan = off');
}

export class LogReader {
  /** The chunk after the one being applied, being read meanwhile. */
  private ahead: { position: Position; changes: Promise<LogChange[] | Error> } | undefined;
  /** When the last window opened, and how many changes it has had so far. */
  private windowOpenedAt = 0;
  private windowChanges = 0;

  constructor(
    private readonly schema: string,
    private readonly batchSize: number,
  ) {}

  /** The position with its window open: `position` itself, or a new window up to a new tick. */
  async open(source: pg.ClientBase, position: Position): Promise<Position> {
    if (position.to !== undefined) return position;
    const opened = openWindow(position, await takeTick(source, this.schema));
    this.windowOpenedAt = performance.now();
    this.windowChanges = 0;
    return opened;
  }

  /** The next chunk of the open window at `position`: the one read ahead if it was read from there. */
  async read(source: pg.ClientBase, query: string, position: Position): Promise<LogChange[]> {
    const ahead = this.ahead;
    this.ahead = undefined;
    const same =
      ahead !== undefined &&
      ahead.position.from === position.from &&
      ahead.position.to === position.to &&
      ahead.position.appliedId === position.appliedId;
    let changes: LogChange[] | Error;
    if (same) changes = await ahead.changes;
    else changes = await readWindow(source, query, position, this.batchSize);
    if (changes instanceof Error) throw changes;
    this.windowChanges += changes.length;
    return changes;
  }

  /**
   * Start reading the chunk after `position` now, while the current one applies: the source's reading
   * and the target's writing overlap. `read()` uses it only if the apply ended exactly there (a data
   * error halves a chunk and parks); a failed read shows when it is used, never as an unhandled rejection.
   */
  readAhead(source: pg.ClientBase, query: string, position: Position): void {
    const read = readWindow(source, query, position, this.batchSize);
    this.ahead = { position, changes: read.catch((thrown: unknown) => coerceError(thrown)) };
  }

  /** Forget what was read ahead: after a failure, or a new connection. */
  discard(): void {
    this.ahead = undefined;
  }

  /** After a busy window closed at `position`: let the next one gather changes a moment. */
  async pace(position: Position, signal: AbortSignal): Promise<void> {
    if (position.to !== undefined || this.windowChanges < busyWindowChanges) return;
    const wait = this.windowOpenedAt + busyWindowMs - performance.now();
    if (wait > 0) await sleep(wait, signal);
  }
}
