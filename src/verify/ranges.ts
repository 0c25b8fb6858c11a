/**
 * Comparing one table on two servers without moving it: both sides hash their rows per primary-key
 * range in the database (count and sum of 64-bit row hashes, which no row order changes); only a range
 * whose figures differ is cut again, and only a range of at most `leafRows` rows is fetched, as keys and
 * row hashes, and diffed by key. Almost equal tables thus cost one hashing scan per side plus a few
 * small ranges, whatever their size.
 */
import {
  keyId,
  wholeTable,
  type Key,
  type KeyRange,
  type KeyedRow,
  type RangeHash,
  type TableSide,
} from './table-side.js';

export type DifferenceKind = 'missing' | 'extra' | 'different';

export interface Difference {
  key: Key;
  /** missing: on the source, not on the target; extra: on the target only; different: on both, unequal. */
  kind: DifferenceKind;
}

export interface NarrowingOptions {
  /** A range with at most this many rows (on its larger side) is fetched and diffed by key. */
  leafRows: number;
  /** Buckets of the first pass over the whole table, at most. */
  topBuckets: number;
  /** Sub-ranges a differing range is cut into. */
  splitBuckets: number;
  /** Pages the first pass samples for its split points. */
  sampleBlocks: number;
  /** Differences kept; more are only counted. */
  keep: number;
}

export const defaultNarrowing: NarrowingOptions = {
  leafRows: 1000,
  topBuckets: 64,
  splitBuckets: 16,
  sampleBlocks: 256,
  keep: 10_000,
};

export interface TableComparison {
  sourceRows: number;
  targetRows: number;
  /** The first `keep` differences, in key order of the ranges they were found in. */
  differences: Difference[];
  differencesTotal: number;
}

/** Deeper than this, a range is diffed as it is: a guard against keys that repeat on a target. */
const maxDepth = 24;

function sameHash(a: RangeHash, b: RangeHash): boolean {
  return a.count === b.count && a.hash === b.hash;
}

/** Diff two sides' rows of the same keys: what the source has and the target lacks, and so on. */
export function diffRows(source: Map<string, KeyedRow>, target: Map<string, KeyedRow>): Difference[] {
  const differences: Difference[] = [];
  for (const [id, row] of source) {
    const other = target.get(id);
    if (other === undefined) differences.push({ key: row.key, kind: 'missing' });
    else if (other.hash !== row.hash) differences.push({ key: row.key, kind: 'different' });
  }
  for (const [id, row] of target) {
    if (!source.has(id)) differences.push({ key: row.key, kind: 'extra' });
  }
  return differences;
}

/**
 * Compare one table; both sides must already be in their snapshots. The rows of `byKey` (keys changed
 * between the two snapshots) are left out of the ranges and compared by key.
 */
export async function compareTable(
  source: TableSide,
  target: TableSide,
  options: NarrowingOptions = defaultNarrowing,
  byKey: readonly Key[] = [],
): Promise<TableComparison> {
  const result: TableComparison = { sourceRows: 0, targetRows: 0, differences: [], differencesTotal: 0 };

  const found = (differences: readonly Difference[]): void => {
    result.differencesTotal += differences.length;
    const room = options.keep - result.differences.length;
    if (room > 0) result.differences.push(...differences.slice(0, room));
  };

  const leaf = async (range: KeyRange): Promise<void> => {
    const [left, right] = await Promise.all([source.fetchRange(range), target.fetchRange(range)]);
    found(diffRows(left, right));
  };

  /** Descend into each bucket of `range` (cut at `splits`) whose figures differ. */
  const descend = async (
    range: KeyRange,
    splits: readonly Key[],
    left: RangeHash[],
    right: RangeHash[],
    depth: number,
  ): Promise<void> => {
    for (let i = 0; i < left.length; i++) {
      if (sameHash(left[i]!, right[i]!)) continue;
      const bucket = {
        lo: i === 0 ? range.lo : splits[i - 1],
        hi: i === splits.length ? range.hi : splits[i],
      };
      await narrow(bucket, left[i]!, right[i]!, depth + 1);
    }
  };

  const narrow = async (range: KeyRange, left: RangeHash, right: RangeHash, depth: number): Promise<void> => {
    const count = Math.max(left.count, right.count);
    // Split points come from the side with more rows there: the other may have none at all.
    const larger = left.count >= right.count ? source : target;
    const splits =
      count > options.leafRows && depth < maxDepth
        ? await larger.splitRange(range, count, options.splitBuckets)
        : [];
    if (splits.length === 0) return leaf(range);
    const [subLeft, subRight] = await Promise.all([
      source.hashBuckets(range, splits),
      target.hashBuckets(range, splits),
    ]);
    return descend(range, splits, subLeft, subRight, depth);
  };

  source.exclude(byKey);
  target.exclude(byKey);
  const splits = await source.splitTable(options);
  const [left, right] = await Promise.all([
    source.hashBuckets(wholeTable, splits),
    target.hashBuckets(wholeTable, splits),
  ]);
  result.sourceRows = left.reduce((n, h) => n + h.count, 0);
  result.targetRows = right.reduce((n, h) => n + h.count, 0);
  await descend(wholeTable, splits, left, right, 0);
  const [keyedLeft, keyedRight] = await Promise.all([source.fetchKeys(byKey), target.fetchKeys(byKey)]);
  result.sourceRows += keyedLeft.size;
  result.targetRows += keyedRight.size;
  found(diffRows(keyedLeft, keyedRight));
  return result;
}

/** Compare the rows of given keys again, on both sides as they are now. */
export async function recheckKeys(
  source: TableSide,
  target: TableSide,
  keys: readonly Key[],
): Promise<Difference[]> {
  const [left, right] = await Promise.all([source.fetchKeys(keys), target.fetchKeys(keys)]);
  const differences = diffRows(left, right);
  // In the order they were first found.
  const order = new Map(keys.map((key, i) => [keyId(key), i]));
  return differences.sort((a, b) => order.get(keyId(a.key))! - order.get(keyId(b.key))!);
}
