// How a worker reads a chunk in pieces (src/apply/log-reader.ts), against a window modelled in memory
// by the read query's rule (src/changelog/window.ts). No database.
import { describe, expect, it } from 'vitest';

import { ChunkRamp, readInPieces, windowGathering, workerChunkLimits } from '../../src/apply/log-reader.js';
import type { Chunk, ChunkLimits, LogChange } from '../../src/changelog/window.js';
import { logChange } from '../support/log-change.js';

const MB = 1024 * 1024;

function change(id: number): LogChange {
  return logChange({ id });
}

/**
 * A window of changes with ids 1.. and the given bytes, read as the query reads it: the next `changes`
 * after `appliedId`, each taken while the bytes before it are under `bytes`. Notes how many changes each
 * read asked for (the query measures them) and how many it took.
 */
function window(sizes: readonly number[]) {
  const reads: { asked: number; taken: number }[] = [];
  const read = (appliedId: number, limits: ChunkLimits): Promise<Chunk> => {
    const candidates = sizes.slice(appliedId, appliedId + limits.changes);
    const changes: LogChange[] = [];
    let bytes = 0;
    for (const [i, size] of candidates.entries()) {
      if (bytes >= limits.bytes) break;
      changes.push(change(appliedId + i + 1));
      bytes += size;
    }
    reads.push({ asked: limits.changes, taken: changes.length });
    const full = changes.length >= limits.changes || bytes >= limits.bytes;
    return Promise.resolve({ changes, bytes, full });
  };
  return { read, reads };
}

const ids = (chunk: Chunk): number[] => chunk.changes.map((c) => c.id);

/** The chunks of a whole window, read from its start as the worker reads them. */
async function chunksOf(sizes: readonly number[], limits: ChunkLimits) {
  const w = window(sizes);
  const chunks: Chunk[] = [];
  let applied = 0;
  let average = 0;
  for (;;) {
    const chunk = await readInPieces(w.read, applied, limits, average);
    chunks.push(chunk);
    if (chunk.changes.length > 0) average = chunk.bytes / chunk.changes.length;
    if (!chunk.full) return { chunks, reads: w.reads };
    applied = chunk.changes.at(-1)!.id;
  }
}

describe('reading a chunk in pieces', () => {
  it('reads ordinary changes in one read of a whole batch', async () => {
    const { chunks, reads } = await chunksOf(Array<number>(12_000).fill(300), {
      changes: 5000,
      bytes: 16 * MB,
    });
    expect(chunks.map((c) => [c.changes.length, c.full])).toEqual([
      [5000, true],
      [5000, true],
      [2000, false],
    ]);
    expect(reads).toHaveLength(3);
  });

  it('takes a change larger than the bound alone, and the window goes on after it', async () => {
    const { chunks } = await chunksOf([100, 100 * MB, 100, 100], { changes: 5000, bytes: 16 * MB });
    expect(chunks.map(ids)).toEqual([
      [1, 2],
      [3, 4],
    ]);
    expect(chunks.map((c) => c.full)).toEqual([true, false]);
  });

  it('stops once the changes before the next hold the bound', async () => {
    const { chunks } = await chunksOf(Array<number>(10).fill(6 * MB), { changes: 5000, bytes: 16 * MB });
    expect(chunks.map(ids)).toEqual([[1, 2, 3], [4, 5, 6], [7, 8, 9], [10]]);
    expect(chunks.map((c) => c.bytes)).toEqual([18 * MB, 18 * MB, 18 * MB, 6 * MB]);
  });

  it('asks, after a chunk of large changes, for about as many as fit', async () => {
    const sizes = [...Array<number>(30).fill(100 * MB), ...Array<number>(6000).fill(300)];
    const { chunks, reads } = await chunksOf(sizes, { changes: 5000, bytes: 16 * MB });
    expect(chunks.slice(0, 30).every((c) => c.changes.length === 1 && c.full)).toBe(true);
    // The first read knows no sizes yet; every later one asks for no more than it takes, but the last
    // (the window ends there).
    expect(reads[0]).toEqual({ asked: 5000, taken: 1 });
    expect(reads.slice(1, -1).filter((r) => r.asked > r.taken)).toEqual([]);
    // Back to small changes: a second read makes up the batch.
    expect(chunks.slice(30).map((c) => c.changes.length)).toEqual([5000, 1000]);
    expect(reads).toHaveLength(30 + 2 + 1);
  });

  it('makes the same chunks as one read of each, whatever the sizes', async () => {
    let seed = 42;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let round = 0; round < 50; round++) {
      const sizes = Array.from({ length: 1 + Math.floor(random() * 300) }, () =>
        random() < 0.1 ? Math.floor(random() * 40_000) : Math.floor(random() * 400),
      );
      const limits = { changes: 1 + Math.floor(random() * 60), bytes: 1 + Math.floor(random() * 20_000) };
      const pieces = await chunksOf(sizes, limits);
      // One read per chunk: the model's own rule with the whole limits.
      const whole = window(sizes);
      let applied = 0;
      for (const chunk of pieces.chunks) {
        const once = await whole.read(applied, limits);
        expect(ids(chunk)).toEqual(ids(once));
        expect([chunk.bytes, chunk.full]).toEqual([once.bytes, once.full]);
        applied = chunk.changes.at(-1)?.id ?? applied;
      }
      expect(applied).toBe(sizes.length);
    }
  });
});

describe("a session's first chunks", () => {
  const asked = (ramp: ChunkRamp, links: boolean[]): number[] => links.map((short) => ramp.next(short));

  it('start small and double up to the limit while the link is short', () => {
    const ramp = new ChunkRamp(5000);
    ramp.restart();
    expect(asked(ramp, Array<boolean>(8).fill(true))).toEqual([256, 512, 1024, 2048, 4096, 5000, 5000, 5000]);
    ramp.restart();
    expect(asked(ramp, [true, true])).toEqual([256, 512]);
  });

  it('go to the limit once the link is long, and never above a small limit', () => {
    const ramp = new ChunkRamp(5000);
    ramp.restart();
    expect(asked(ramp, [false, false, false])).toEqual([256, 5000, 5000]);
    ramp.restart();
    expect(asked(ramp, [true, false, true])).toEqual([256, 512, 5000]);
    const small = new ChunkRamp(100);
    small.restart();
    expect(asked(small, [true, true])).toEqual([100, 100]);
  });
});

describe("a worker's share of the chunk limits", () => {
  const apply = { batchSize: 5000, batchBytes: 16 * 1024 * 1024 };

  it('is the whole limits up to four workers', () => {
    for (const workers of [1, 2, 4]) {
      expect(workerChunkLimits(apply, workers)).toEqual({ changes: 5000, bytes: 16 * 1024 * 1024 });
    }
  });

  it('keeps the daemon at about four workers of the whole limits beyond that', () => {
    expect(workerChunkLimits(apply, 8)).toEqual({ changes: 2500, bytes: 8 * 1024 * 1024 });
    expect(workerChunkLimits(apply, 20)).toEqual({
      changes: 1000,
      bytes: Math.floor((16 * 1024 * 1024) / 5),
    });
  });

  it('goes no lower than 500 changes and 1 MiB, nor above the configured limits', () => {
    expect(workerChunkLimits(apply, 1000)).toEqual({ changes: 500, bytes: 1024 * 1024 });
    expect(workerChunkLimits({ batchSize: 100, batchBytes: 1000 }, 1000)).toEqual({
      changes: 100,
      bytes: 1000,
    });
    expect(workerChunkLimits({ batchSize: 100, batchBytes: 1000 }, 0)).toEqual({ changes: 100, bytes: 1000 });
  });
});

describe('how long the next window gathers changes', () => {
  it("opens at once after a quiet source's window: a few hundred transactions a second, or an idle one", () => {
    expect(windowGathering(1, 5)).toBe(0);
    expect(windowGathering(3, 12)).toBe(0);
    expect(windowGathering(0, 0)).toBe(0);
    expect(windowGathering(1, 60_000)).toBe(0);
  });

  it('waits a moment after a brisk one: a change a millisecond or more, as one client writing flat out', () => {
    expect(windowGathering(3, 2.5)).toBe(10);
    expect(windowGathering(20, 10)).toBe(10);
    expect(windowGathering(49, 49)).toBe(10);
  });

  it('waits longer after a busy one, whatever its rate', () => {
    expect(windowGathering(50, 10)).toBe(50);
    expect(windowGathering(5_000, 60_000)).toBe(50);
  });
});
