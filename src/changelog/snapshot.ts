/**
 * pg_snapshot values in JavaScript (`xmin:xmax:xip,...`, xid8 in text): which transactions one sees,
 * and whether a later one sees at least as much. Transaction ids are compared as BigInt.
 */

export interface Snapshot {
  xmin: bigint;
  xmax: bigint;
  xip: ReadonlySet<bigint>;
}

export function parseSnapshot(text: string): Snapshot {
  const [xmin, xmax, xip] = text.split(':');
  if (xmin === undefined || xmax === undefined || xip === undefined)
    throw new Error(`not a pg_snapshot: ${text}`);
  return {
    xmin: BigInt(xmin),
    xmax: BigInt(xmax),
    xip: new Set(xip === '' ? [] : xip.split(',').map(BigInt)),
  };
}

/** pg_visible_in_snapshot(): committed before the snapshot was taken (the caller knows it committed). */
export function visibleIn(txid: string, snapshot: Snapshot): boolean {
  const xid = BigInt(txid);
  return xid < snapshot.xmin || (xid < snapshot.xmax && !snapshot.xip.has(xid));
}

/** `later` sees every transaction that `earlier` sees: all of them had ended before `later.xmin`. */
export function seesAllOf(later: Snapshot, earlier: Snapshot): boolean {
  return later.xmin >= earlier.xmax;
}
