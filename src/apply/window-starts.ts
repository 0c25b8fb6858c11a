/**
 * Window starts as the SharedLog keys its chunks by them (src/apply/shared-log.ts). Two window starts
 * that see the same changes of the log (sameChanges) make windows to one tick that hold the same changes,
 * so a chunk is keyed by the first start seen of those that see the same. Targets stopped at different
 * idle ticks so read a backlog once, not once each: their stored starts differ only by ticks that saw no
 * new change.
 */
import type pg from 'pg';

import { sameChanges } from '../changelog/same-changes.js';
import type { Position } from '../changelog/window.js';

/**
 * A new window start is compared with at most this many earlier ones (newest first), each comparison
 * one bounded probe of the log's txid index; the starts kept for comparing are as many.
 */
const startsCompared = 3;
/** Window starts remembered with the start that stands for them; the oldest are forgotten first. */
export const startsKept = 256;

export class WindowStarts {
  /** By startKey: the key of the start that stands for it (itself, or one that sees the same). */
  readonly #starts = new Map<string, Promise<string>>();
  /** Starts that stand for themselves, newest last: a new start is compared with these. */
  readonly #standing: Position['from'][] = [];

  /** `counts.startsMerged` counts the starts found to see the same changes as an earlier one. */
  constructor(
    private readonly schema: string,
    private readonly counts: { startsMerged: number },
  ) {}

  /**
   * The key of the start that stands for `from`: found once per start, on `source`. A lone reader
   * (`alone`) shares no chunk with another: its starts need no comparison, which costs a round trip to
   * the source at every window (0.6 ms of a live change's 3 on loopback).
   */
  standIn(source: pg.ClientBase, from: Position['from'], alone: boolean): Promise<string> {
    const key = startKey(from);
    const known = this.#starts.get(key);
    if (known !== undefined) return known;
    const found = this.find(source, from, key, alone);
    this.#starts.set(key, found);
    // A failed comparison (the worker's connection) is tried again at the next read.
    found.catch(() => {
      if (this.#starts.get(key) === found) this.#starts.delete(key);
    });
    for (const old of this.#starts.keys()) {
      if (this.#starts.size <= startsKept) break;
      this.#starts.delete(old);
    }
    return found;
  }

  private async find(
    source: pg.ClientBase,
    from: Position['from'],
    key: string,
    alone: boolean,
  ): Promise<string> {
    const compared = new Set<string>();
    // Starts that stand for themselves may be added while a comparison runs: compare with those too.
    while (!alone && compared.size < startsCompared) {
      const other = this.#standing.findLast((s) => !compared.has(startKey(s)));
      if (other === undefined) break;
      compared.add(startKey(other));
      if (await sameChanges(source, this.schema, from, other)) {
        this.counts.startsMerged++;
        return startKey(other);
      }
    }
    this.#standing.push(from);
    if (this.#standing.length > startsCompared) this.#standing.shift();
    return key;
  }
}

/** A window start as a key. */
export function startKey(from: Position['from']): string {
  return [from.snapshot, from.idBound, from.nextXid].join('|');
}
