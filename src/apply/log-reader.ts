/**
 * How a worker reads its windows of the log (src/changelog/window.ts): ticks that open them, paced when the
 * source is busy, chunks bounded by changes and by bytes, and each next chunk read from the source while
 * the current one applies to the target. Ticks and chunks go through the daemon's SharedLog, which
 * gives workers at the same position the same ones.
 */
import type pg from 'pg';

import { coerceError } from '../failure/errors.js';
import { sleep } from '../lib/runnable.js';
import type { RoundTrip } from './copy-in.js';
import type { SharedLog } from './shared-log.js';
import {
  openWindow,
  readWindow,
  windowQuery,
  windowValues,
  type Chunk,
  type ChunkLimits,
  type LogChange,
  type Position,
} from '../changelog/window.js';

/**
 * A window of this many changes means a busy source: the next window opens only `busyWindowMs` after
 * this one did, so that windows grow and their fixed cost (a tick, the source's and the target's commits,
 * a dozen round trips) is paid once per hundreds of changes rather than per few dozen. A quiet source's
 * windows are smaller and open at once: its latency stays that of one round of reading and applying.
 */
const busyWindowChanges = 50;
const busyWindowMs = 50;

/**
 * A window that gathered changes at this rate or more (per ms, since the window before opened) means a
 * brisk source, as one client committing single-row transactions back to back: the next window opens
 * `briskWindowMs` after this one did, and the doorbell stays unarmed. Without it such a source's windows
 * hold a few changes each, and each window's tick, read and target transaction take the two cores'
 * time from the writer. A source of a few hundred transactions a second stays below it: its changes
 * keep the latency of one round.
 */
const briskChangesPerMs = 1;
const briskWindowMs = 10;

/**
 * A worker's first chunk after it connects asks for this many changes, and while the link to the target
 * is short each next one for twice as many, up to apply.batchSize: the first rows of a backlog reach
 * the target after one small read and apply, not after a whole batch is read, made into statements and
 * applied, and from then on the source reads each next chunk while the target applies the current one.
 * On a long link each chunk more costs round trips that the overlap does not make up for: the second
 * chunk is a whole one.
 */
const firstChunkChanges = 256;

/**
 * A daemon's workers each hold about two chunks and the statements made of them, so its memory grows
 * with its targets: beyond this many, each worker's chunks are this many ÷ targets of apply.batchSize and
 * apply.batchBytes, so that the daemon holds about what this many workers at the full limits would (20
 * targets of small rows: 1,000 changes a chunk). The split costs a backlog nothing that the targets'
 * shared cores would not cost it anyway: beyond a few targets they, not the batches' round trips, are the
 * limit.
 */
const fullChunkWorkers = 4;
/** The least a worker's share of the limits goes down to, however many targets. */
const leastShare: ChunkLimits = { changes: 500, bytes: 1024 * 1024 };

/** The chunk limits of each of a daemon's `workers`, from apply.batchSize and apply.batchBytes. */
export function workerChunkLimits(
  apply: { batchSize: number; batchBytes: number },
  workers: number,
): ChunkLimits {
  const share = Math.min(1, fullChunkWorkers / Math.max(1, workers));
  const part = (limit: number, least: number): number =>
    Math.max(Math.min(limit, least), Math.floor(limit * share));
  return {
    changes: part(apply.batchSize, leastShare.changes),
    bytes: part(apply.batchBytes, leastShare.bytes),
  };
}

/** How many changes each next chunk asks for: growing from firstChunkChanges to the limit. */
export class ChunkRamp {
  private changes: number;

  constructor(private readonly limit: number) {
    this.changes = limit;
  }

  /** A new session: start small. */
  restart(): void {
    this.changes = Math.min(this.limit, firstChunkChanges);
  }

  /** The changes of the chunk read now; the one after asks for twice as many on a short link. */
  next(shortLink: boolean): number {
    const changes = this.changes;
    this.changes = shortLink ? Math.min(this.limit, 2 * changes) : this.limit;
    return changes;
  }
}

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

/**
 * Set up a fresh source session for reading the log (prepareReaderSession; its failure is thrown) and
 * plan a read before its first chunk, while the leader installs: a backend's first read otherwise loads
 * the catalog entries of the log, its indexes and the rule's functions first, about 20 ms of a start's
 * first rows. Nothing is read (EXPLAIN); the plan's failure, such as a log not made yet, is left to the
 * real read.
 */
export async function warmReader(client: pg.ClientBase, schema: string): Promise<void> {
  await prepareReaderSession(client);
  const nowhere = { snapshot: '1:1:', idBound: 0, nextXid: '1' };
  const position = { from: nowhere, to: { ...nowhere, idCeiling: 0 }, appliedId: 0 };
  // Table oid 0: a list that the planner cannot fold away, as it would an empty one.
  await client
    .query(
      `explain ${windowQuery(schema, [{ relid: 0, filter: undefined }])}`,
      windowValues(position, { changes: 1, bytes: 1 }),
    )
    .catch(() => undefined);
}

/**
 * Read a chunk in one or more pieces, each asking for as many changes as the bytes left would hold at
 * the average size of the changes read so far (the last chunk's, for the first piece), until the chunk
 * reaches its limits or the window ends. The source measures every change a piece asks for, which
 * decompresses the compressed images: asking for as many as will fit keeps it from decompressing, chunk
 * after chunk, the large ones it then leaves out. The pieces make the same chunk as one read would.
 */
export async function readInPieces(
  read: (appliedId: number, limits: ChunkLimits) => Promise<Chunk>,
  appliedId: number,
  limits: ChunkLimits,
  lastAverage: number,
): Promise<Chunk> {
  const changes: LogChange[] = [];
  let bytes = 0;
  for (;;) {
    const average = changes.length === 0 ? lastAverage : bytes / changes.length;
    const left = { changes: limits.changes - changes.length, bytes: limits.bytes - bytes };
    // An average of 0 (none yet, or truncates only) asks for every change left.
    const ask = Math.max(1, Math.min(left.changes, Math.ceil(left.bytes / average)));
    const piece = await read(changes.at(-1)?.id ?? appliedId, { changes: ask, bytes: left.bytes });
    for (const change of piece.changes) changes.push(change);
    bytes += piece.bytes;
    const full = changes.length >= limits.changes || bytes >= limits.bytes;
    if (full || !piece.full) return { changes, bytes, full };
  }
}

export class LogReader {
  private readonly ramp: ChunkRamp;
  /** The link to the target of the session being read for: whether the ramp goes on. */
  private link: RoundTrip | undefined;
  /** The chunk after the one being applied, being read meanwhile. */
  private ahead: { position: Position; chunk: Promise<Chunk | Error> } | undefined;
  /** The bytes of the chunk read last, the one being applied while the next is read ahead. */
  private applying = 0;
  /** The average bytes of a change in the last chunk read (readInPieces); 0: none yet. */
  private averageBytes = 0;
  /** When the last window and the one before it opened, and how many changes the last has had so far. */
  private windowOpenedAt = 0;
  private previousOpenedAt = 0;
  private windowChanges = 0;
  /**
   * The last chunk read was empty, or the window applied was a quiet one: the worker may have armed the
   * doorbell since.
   */
  private mayHaveArmed = false;

  constructor(
    private readonly sharedLog: SharedLog,
    private readonly limits: ChunkLimits,
  ) {
    this.ramp = new ChunkRamp(limits.changes);
    sharedLog.register(this);
  }

  /** The position with its window open: `position` itself, or a new window up to a new or shared tick. */
  async open(source: pg.ClientBase, position: Position): Promise<Position> {
    if (position.to !== undefined) return position;
    // After finding nothing, or applying a quiet window, the worker arms the doorbell and looks again:
    // that look must see every write committed before the arming, which rang no bell.
    const tick = await this.sharedLog.tick(source, position.from, this.mayHaveArmed);
    const opened = openWindow(position, tick);
    this.previousOpenedAt = this.windowOpenedAt;
    this.windowOpenedAt = performance.now();
    this.windowChanges = 0;
    return opened;
  }

  /** The next chunk of the open window at `position`: the one read ahead if it was read from there. */
  async read(source: pg.ClientBase, query: string, position: Position): Promise<Chunk> {
    const ahead = this.ahead;
    this.ahead = undefined;
    const same =
      ahead !== undefined &&
      ahead.position.from === position.from &&
      ahead.position.to === position.to &&
      ahead.position.appliedId === position.appliedId;
    const chunk = same
      ? await ahead.chunk
      : await this.readChunk(source, query, position, {
          ...this.limits,
          changes: this.ramp.next(this.link?.short ?? false),
        });
    if (chunk instanceof Error) throw chunk;
    this.mayHaveArmed = chunk.changes.length === 0;
    this.windowChanges += chunk.changes.length;
    this.applying = chunk.bytes;
    return chunk;
  }

  /**
   * Start reading the chunk after `position` now, while the current one applies: the source's reading
   * and the target's writing overlap. `read()` uses it only if the apply ended exactly there (a data
   * error halves a chunk and parks); a failed read shows when it is used, never as an unhandled rejection.
   * The two chunks hold at most twice the bytes of one, plus the last change of the one read ahead: it
   * gets what the chunk being applied leaves of that, and is not read when that is nothing (a chunk that
   * another worker read from there under the whole limits is taken as it is: one chunk more at most).
   * Returns the chunk to come (or its failure), so that its steps can be made meanwhile too.
   */
  readAhead(source: pg.ClientBase, query: string, position: Position): Promise<Chunk | Error> | undefined {
    const bytes = Math.min(this.limits.bytes, 2 * this.limits.bytes - this.applying);
    if (bytes <= 0) return undefined;
    const read = this.readChunk(source, query, position, {
      changes: this.ramp.next(this.link?.short ?? false),
      bytes,
    });
    this.ahead = { position, chunk: read.catch((thrown: unknown) => coerceError(thrown)) };
    return this.ahead.chunk;
  }

  private async readChunk(
    source: pg.ClientBase,
    query: string,
    position: Position,
    limits: ChunkLimits,
  ): Promise<Chunk> {
    const read = (appliedId: number, piece: ChunkLimits): Promise<Chunk> =>
      readWindow(source, query, { ...position, appliedId }, piece);
    const chunk = await this.sharedLog.chunk(this, source, query, position, limits, () =>
      readInPieces(read, position.appliedId, limits, this.averageBytes),
    );
    if (chunk.changes.length > 0) this.averageBytes = chunk.bytes / chunk.changes.length;
    return chunk;
  }

  /** The most changes a chunk holds. */
  get chunkChanges(): number {
    return this.limits.changes;
  }

  /** The worker applied `changes` of the open window without reading them (a run copied through). */
  ranThrough(changes: number): void {
    this.ahead = undefined;
    this.applying = 0;
    this.mayHaveArmed = false;
    this.windowChanges += changes;
  }

  /** Forget what was read ahead: after a failure. */
  discard(): void {
    this.ahead = undefined;
  }

  /** A new session, over `link` to the target: nothing read ahead, and the first chunks small. */
  restart(link: RoundTrip): void {
    this.ahead = undefined;
    this.link = link;
    this.ramp.restart();
  }

  /**
   * The window at `position` is applied, was a quiet source's (neither busy nor brisk), and this worker
   * reads the log alone: it may arm the doorbell now and make its next look the one after the arming,
   * whose tick must be fresh. Where several workers read, a fresh tick after each window would part them
   * (each applies at its own pace), and they would read the log once each: their next looks take the
   * tick another worker ended the same window with (SharedLog.tick), as before.
   */
  quiet(position: Position): boolean {
    return position.to === undefined && this.gathering() === 0 && this.sharedLog.alone;
  }

  /** The worker armed the doorbell: the next window ends at a tick taken after the arming. */
  armed(): void {
    this.mayHaveArmed = true;
  }

  /** After a busy or brisk window closed at `position`: let the next one gather changes a moment. */
  async pace(position: Position, signal: AbortSignal): Promise<void> {
    if (position.to !== undefined) return;
    const wait = this.windowOpenedAt + this.gathering() - performance.now();
    if (wait > 0) await sleep(wait, signal);
  }

  /** How long after the last window opened the next one may: 0 after a quiet source's window. */
  private gathering(): number {
    return windowGathering(this.windowChanges, this.windowOpenedAt - this.previousOpenedAt);
  }
}

/**
 * How long after a window opened the next one may, for a window of `changes` opened `spanMs` after the
 * one before it: 0 for a quiet source's window, whose next opens at once.
 */
export function windowGathering(changes: number, spanMs: number): number {
  if (changes >= busyWindowChanges) return busyWindowMs;
  return changes > 0 && changes >= briskChangesPerMs * spanMs ? briskWindowMs : 0;
}
