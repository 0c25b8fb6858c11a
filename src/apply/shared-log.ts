/**
 * The daemon's workers read the log through one SharedLog, so that targets at the same position cost
 * the source one read, not one each (issue 20).
 *
 * Ticks: a worker opening a window may end it at a tick another worker took, when that tick sees every
 * transaction the worker's `from` sees (src/changelog/window.ts: the window is then the changes visible in it
 * and not in `from`, each applied once). Workers at the same position so open the same window.
 *
 * Chunks: a read is keyed by the read query and the window, applied id and limits, which decide its
 * result; a worker asking for a key being read or read a moment ago gets that result. Its changes are
 * shared, never copied: nothing may change them. Each worker gets an array of them of its own, though:
 * the steps it makes ahead are kept by that array (src/apply/chunk.ts), and would otherwise live as long
 * as the chunk is kept here for slower workers, every worker's steps of every chunk kept (20 targets on
 * a 50k-change backlog: 256 MB of live heap at the most, 88 MB with arrays of their own). A read runs
 * on the lease of the worker that asked first, whose failure is its own: a worker that joined it reads
 * on its own lease instead.
 *
 * Starts: a chunk is keyed by the start that stands for its window's, one of those that see the same
 * changes (window-starts.ts).
 */
import type pg from 'pg';

import { catalogVersions } from '../capture/catalog.js';
import { coerceError } from '../failure/errors.js';
import { parseSnapshot, seesAllOf } from '../changelog/snapshot.js';
import { takeTick, type Chunk, type ChunkLimits, type Position, type Tick } from '../changelog/window.js';
import { startKey, startsKept, WindowStarts } from './window-starts.js';

/** What the SharedLog saved the source: tests and the fan-out bench read it. */
export interface SharedLogCounts {
  ticksTaken: number;
  ticksShared: number;
  chunksRead: number;
  /** The changes of the chunks read: a backlog's changes once where every chunk is read once. */
  changesRead: number;
  chunksShared: number;
  /** Of chunksShared, those taken by a reader whose window starts elsewhere than the first reader's. */
  chunksSharedAcrossStarts: number;
  /** Of chunksShared, those read under other limits than the taker asked for (a first chunk's, say). */
  chunksSharedAcrossLimits: number;
  /** Window starts found to see the same changes as an earlier, different one: their chunks are shared. */
  startsMerged: number;
  /** Reads of the source's tables' catalog versions for the shape check: one per window end and tables. */
  tableVersionsRead: number;
}

interface TickOffer {
  tick: Promise<Tick | Error>;
  /** The snapshot is being taken, or was: the tick may not see what committed after. */
  snapshotSent: boolean;
  /** When it was taken (performance.now()); undefined while in flight. */
  doneAt: number | undefined;
}

interface ChunkOffer {
  chunk: Promise<Chunk>;
  /** Where it starts: the window (with the start that stands for it) and the applied id (placeKey). */
  place: string;
  /** The limits it was read under. */
  limits: ChunkLimits;
  /** The start of the window of the reader that read it (startKey). */
  readFrom: string;
  /** The readers that took it, or wait for it. */
  takers: Set<object>;
  doneAt: number | undefined;
  /** Estimated bytes held: the images' text and a little per change. */
  cost: number;
}

interface ReaderState {
  /** Its last read query; undefined before its first read. */
  query: string | undefined;
  askedAt: number;
}

/** A reader that asked nothing for this long is not waited for (a parked target). */
const keepMs = 5_000;
/**
 * A chunk read this long ago is dropped: a target that far behind reads on its own. Targets draining one
 * backlog drift apart by seconds (each target's own speed): a chunk is kept until the slowest takes it.
 */
const chunkKeepMs = 30_000;
/**
 * Results kept for later askers hold at most this many times apply.batchBytes (estimated): targets
 * draining a backlog at their own speeds are that many chunks apart, and a chunk dropped before the
 * slowest took it is read again. The chunks the workers hold are the same objects, not copies.
 */
const cachedChunks = 4;
/** A rough per-change size of a LogChange object beside its images' text. */
const changeOverhead = 256;
/** Window ends whose tables' catalog versions are kept for later chunks and workers; the oldest go first. */
const windowsVersioned = 64;

export class SharedLog {
  readonly counts: SharedLogCounts = {
    ticksTaken: 0,
    ticksShared: 0,
    chunksRead: 0,
    changesRead: 0,
    chunksShared: 0,
    chunksSharedAcrossStarts: 0,
    chunksSharedAcrossLimits: 0,
    startsMerged: 0,
    tableVersionsRead: 0,
  };
  /** The tick taken last, offered to the next workers that open a window. */
  private latest: TickOffer | undefined;
  /** By window end and tables: their catalog versions, read once that end's tick was taken; newest last. */
  private readonly versionsRead = new Map<string, Promise<Map<number, string>>>();
  /** By read query, then by window key. */
  private readonly chunks = new Map<string, Map<string, ChunkOffer>>();
  private readonly readers = new Map<object, ReaderState>();
  private cachedCost = 0;
  /** The start that stands for each window start in chunk keys (window-starts.ts). */
  private readonly starts: WindowStarts;
  /** By the start that stands for them: the tick that a window from there was first opened to, and when. */
  private readonly windowEnds = new Map<string, { tick: Tick; at: number }>();

  private readonly cacheBytes: number;
  private readonly createdAt = performance.now();

  /** `batchBytes`: apply.batchBytes, the most bytes of a chunk. */
  constructor(
    private readonly schema: string,
    batchBytes: number,
  ) {
    this.cacheBytes = cachedChunks * batchBytes;
    this.starts = new WindowStarts(schema, this.counts);
  }

  /**
   * How long an idle worker waits before it looks at the log again: until the next of the daemon's polls,
   * every `intervalMs` since the SharedLog was made. Idle workers so look together, and the fresh ticks
   * their looks need are mostly one (a look joins a tick whose snapshot is yet to be taken).
   */
  untilPoll(intervalMs: number): number {
    return intervalMs - ((performance.now() - this.createdAt) % intervalMs);
  }

  /** One worker reads the log: nothing it reads is shared, and ticks and starts are its alone. */
  get alone(): boolean {
    return this.readers.size <= 1;
  }

  /** A reader that will ask for chunks: results are kept until it, too, has taken them (or keepMs). */
  register(reader: object): void {
    this.readers.set(reader, { query: undefined, askedAt: performance.now() });
  }

  /**
   * A tick to end a window from `from`: the one another worker ended a window from the same start with
   * (standIn), while that window's chunks may still be kept, so that a worker that opens it late reads
   * the chunks the others read; else the last one taken, if it sees all `from` sees; else a new one on
   * `source`. Any such tick makes a window (src/changelog/window.ts); an older one only leaves the changes
   * since to the next window, which opens at once when this one had changes. `fresh`: the tick must see
   * every commit before this call (the worker found nothing and may have armed the doorbell): only a
   * tick whose snapshot is yet to be taken will do.
   */
  async tick(source: pg.ClientBase, from: Position['from'], fresh: boolean): Promise<Tick> {
    const start = await this.standIn(source, from);
    const ended = this.windowEnds.get(start);
    const recent = ended !== undefined && performance.now() - ended.at <= chunkKeepMs;
    if (recent && !fresh && follows(ended.tick, from)) {
      this.counts.ticksShared++;
      return ended.tick;
    }
    const tick = await this.latestOrNew(source, from, fresh);
    if (!recent) {
      this.windowEnds.delete(start);
      this.windowEnds.set(start, { tick, at: performance.now() });
      for (const old of this.windowEnds.keys()) {
        if (this.windowEnds.size <= startsKept) break;
        this.windowEnds.delete(old);
      }
    }
    return tick;
  }

  private async latestOrNew(source: pg.ClientBase, from: Position['from'], fresh: boolean): Promise<Tick> {
    // While this worker waits on an offer, another may find it wanting and take a new tick: that one is
    // looked at too. Workers that end one window together all wait on the tick before it, which ends none
    // of their next windows; without a second look each took a tick of its own, and their windows and
    // chunks, read once for all while they were at one position, were read once each from then on.
    let tried: TickOffer | undefined;
    for (let offer = this.latest; offer !== undefined && offer !== tried; offer = this.latest) {
      tried = offer;
      const joinable = fresh ? offer.doneAt === undefined && !offer.snapshotSent : true;
      if (!joinable) break;
      const tick = await offer.tick;
      // A tick that failed failed on its taker's connection: this worker takes its own.
      if (!(tick instanceof Error) && follows(tick, from)) {
        this.counts.ticksShared++;
        return tick;
      }
    }
    return this.takeTick(source);
  }

  private async takeTick(source: pg.ClientBase): Promise<Tick> {
    const offer: TickOffer = {
      tick: Promise.resolve(new Error('not taken yet')),
      snapshotSent: false,
      doneAt: undefined,
    };
    // A lone reader takes its tick in one round trip, its snapshot sent at once. Where several read, the
    // xid's round trip comes first, alone: until it is answered, the others' looks that must see every
    // commit before them (fresh) join the tick, and the workers stay at one position, reading the log once.
    const afterXid = (): Promise<void> => {
      offer.snapshotSent = true;
      return Promise.resolve();
    };
    offer.snapshotSent = this.alone;
    offer.tick = takeTick(source, this.schema, this.alone ? undefined : afterXid).then(
      (tick) => {
        offer.doneAt = performance.now();
        return tick;
      },
      (thrown: unknown) => coerceError(thrown),
    );
    this.latest = offer;
    const tick = await offer.tick;
    if (tick instanceof Error) {
      if (this.latest === offer) this.latest = undefined;
      throw tick;
    }
    this.counts.ticksTaken++;
    return tick;
  }

  /**
   * The chunk of `position` under `limits` by `query`: one being read or kept from that place (the
   * one read under the largest limits), else `read()`'s. `read` reads on the asking worker's lease of a
   * connection. A chunk read under other limits is as good as one's own: every worker's limits are the
   * daemon's (workerChunkLimits), and only its first chunks and the ones it reads ahead ask for less. A
   * worker that took only chunks of its own limits would never meet the others' chunk bounds again once
   * its first chunks grew at another pace (ChunkRamp, by its target's link), and read every chunk of a
   * backlog once more: 20 targets read 50k changes twice over in the fan-out bench.
   */
  async chunk(
    reader: object,
    source: pg.ClientBase,
    query: string,
    position: Position,
    limits: ChunkLimits,
    read: () => Promise<Chunk>,
  ): Promise<Chunk> {
    const start = await this.standIn(source, position.from);
    const now = performance.now();
    this.readers.set(reader, { query, askedAt: now });
    this.sweep(now);
    let byWindow = this.chunks.get(query);
    if (byWindow === undefined) {
      byWindow = new Map();
      this.chunks.set(query, byWindow);
    }
    const place = placeKey(start, position);
    const offer = largestAt(byWindow.values(), place);
    if (offer !== undefined) {
      offer.takers.add(reader);
      let chunk: Chunk;
      try {
        chunk = await offer.chunk;
      } catch {
        // The read failed on the connection of the worker that asked first, which handles it.
        return read();
      }
      this.counts.chunksShared++;
      if (offer.readFrom !== startKey(position.from)) this.counts.chunksSharedAcrossStarts++;
      if (offer.limits.changes !== limits.changes || offer.limits.bytes !== limits.bytes)
        this.counts.chunksSharedAcrossLimits++;
      this.dropIfAllTook(query, offer);
      return ownArray(chunk);
    }
    const mine: ChunkOffer = {
      chunk: read(),
      place,
      limits,
      readFrom: startKey(position.from),
      takers: new Set([reader]),
      doneAt: undefined,
      cost: 0,
    };
    byWindow.set(offerKey(mine), mine);
    try {
      const chunk = await mine.chunk;
      this.counts.chunksRead++;
      this.counts.changesRead += chunk.changes.length;
      // Nobody may add to the changes of a chunk that others hold too.
      Object.freeze(chunk.changes);
      mine.doneAt = performance.now();
      mine.cost = chunk.bytes + changeOverhead * chunk.changes.length;
      this.cachedCost += mine.cost;
      this.dropIfAllTook(query, mine);
      this.trim();
      return ownArray(chunk);
    } catch (thrown) {
      this.drop(query, mine);
      throw thrown;
    }
  }

  /**
   * The catalog versions of the source's tables `relids` read after the tick that ends `window` was
   * taken: once per window end for every chunk of it and every worker. Every change of the window
   * committed before that tick, so every ALTER TABLE a change of it followed committed before too, and
   * any read taken after the tick sees them, as one taken after each chunk's read would
   * (src/apply/plan-keeper.ts). A live source's window is one chunk; a backlog's window is hundreds, and
   * its tables' versions are read once.
   */
  versions(source: pg.ClientBase, window: Position, relids: readonly number[]): Promise<Map<number, string>> {
    const end = window.to;
    if (end === undefined) return catalogVersions(source, relids);
    const key = `${end.snapshot}/${end.idCeiling}/${[...relids].sort((a, b) => a - b).join(',')}`;
    const known = this.versionsRead.get(key);
    if (known !== undefined) return known;
    const found = catalogVersions(source, relids);
    this.counts.tableVersionsRead++;
    this.versionsRead.set(key, found);
    // A failure is the asking worker's (its connection); the next asks again.
    found.catch(() => {
      if (this.versionsRead.get(key) === found) this.versionsRead.delete(key);
    });
    for (const old of this.versionsRead.keys()) {
      if (this.versionsRead.size <= windowsVersioned) break;
      this.versionsRead.delete(old);
    }
    return found;
  }

  /** The key of the start that stands for `from` in chunk keys (window-starts.ts). */
  private standIn(source: pg.ClientBase, from: Position['from']): Promise<string> {
    return this.starts.standIn(source, from, this.alone);
  }

  /** Readers that may still ask for a chunk of `query`: those reading by it, or not reading yet. */
  private sharers(query: string, now: number): number {
    let n = 0;
    for (const state of this.readers.values()) {
      if ((state.query === undefined || state.query === query) && now - state.askedAt <= keepMs) n++;
    }
    return n;
  }

  private dropIfAllTook(query: string, offer: ChunkOffer): void {
    if (offer.doneAt !== undefined && offer.takers.size >= this.sharers(query, performance.now())) {
      this.drop(query, offer);
    }
  }

  private drop(query: string, offer: ChunkOffer): void {
    const byWindow = this.chunks.get(query);
    const key = offerKey(offer);
    if (byWindow?.get(key) !== offer) return;
    byWindow.delete(key);
    if (byWindow.size === 0) this.chunks.delete(query);
    this.cachedCost -= offer.cost;
  }

  /** Results kept longer than chunkKeepMs go; so do those that every reader still asking took. */
  private sweep(now: number): void {
    for (const [query, byWindow] of this.chunks) {
      for (const offer of byWindow.values()) {
        if (offer.doneAt !== undefined && now - offer.doneAt > chunkKeepMs) this.drop(query, offer);
        else this.dropIfAllTook(query, offer);
      }
    }
  }

  /** Over cacheBytes, the oldest results go first (a Map keeps the order they were asked in). */
  private trim(): void {
    for (const [query, byWindow] of this.chunks) {
      for (const offer of byWindow.values()) {
        if (this.cachedCost <= this.cacheBytes) return;
        if (offer.doneAt !== undefined) this.drop(query, offer);
      }
    }
  }
}

/** `tick` is later than `from` and sees every transaction it sees: (from, tick] is a window. */
function follows(tick: Tick, from: Position['from']): boolean {
  return (
    BigInt(tick.nextXid) > BigInt(from.nextXid) &&
    seesAllOf(parseSnapshot(tick.snapshot), parseSnapshot(from.snapshot))
  );
}

/** The chunk with an array of its (shared) changes of the taker's own. */
function ownArray(chunk: Chunk): Chunk {
  return { ...chunk, changes: [...chunk.changes] };
}

/** Where a chunk starts: everything but the query and the limits that decides a read's result. */
function placeKey(start: string, position: Position): string {
  const { to, appliedId } = position;
  return [start, to?.snapshot, to?.idCeiling, appliedId].join('|');
}

function offerKey(offer: ChunkOffer): string {
  return `${offer.place}|${offer.limits.changes}|${offer.limits.bytes}`;
}

/** Of the offers from `place`, the one read under the largest limits. */
function largestAt(offers: Iterable<ChunkOffer>, place: string): ChunkOffer | undefined {
  let best: ChunkOffer | undefined;
  for (const offer of offers) {
    if (offer.place !== place) continue;
    if (
      best === undefined ||
      offer.limits.changes + offer.limits.bytes > best.limits.changes + best.limits.bytes
    )
      best = offer;
  }
  return best;
}
