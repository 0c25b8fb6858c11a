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
  // pg_snapshot's text form, as the server writes it: xmin <= every xip < xmax, in decimal.
  const parts = snapshotText.exec(text);
  const snapshot =
    parts === null
      ? undefined
      : {
          xmin: BigInt(parts[1]!),
          xmax: BigInt(parts[2]!),
          xip: new Set(parts[3] === undefined ? [] : parts[3].split(',').map(BigInt)),
        };
  if (
    snapshot === undefined ||
    snapshot.xmin > snapshot.xmax ||
    [...snapshot.xip].some((x) => x < snapshot.xmin || x >= snapshot.xmax)
  )
    throw new Error(`not a pg_snapshot: ${JSON.stringify(text)}`);
  return snapshot;
}

const snapshotText = /^(\d+):(\d+):(\d+(?:,\d+)*)?$/;

/** pg_visible_in_snapshot(): committed before the snapshot was taken (the caller knows it committed). */
export function visibleIn(txid: string, snapshot: Snapshot): boolean {
  const xid = BigInt(txid);
  return xid < snapshot.xmin || (xid < snapshot.xmax && !snapshot.xip.has(xid));
}

/**
 * `later` sees every transaction that `earlier` sees: the xids below earlier's xmax that it does not list
 * as running are all below later's xmax, and later lists none of them as running. Where a long
 * transaction runs (on any database of the server: xids are the server's), a later snapshot's xmin
 * stays behind it; asking, as this once did, that every transaction the earlier one saw had ended before
 * the later one's xmin then failed for every pair of snapshots, and workers at one position shared no
 * tick while it ran.
 */
export function seesAllOf(later: Snapshot, earlier: Snapshot): boolean {
  if (later.xmax < earlier.xmax) {
    // Those in between are seen by earlier unless it lists them all as running.
    let listed = 0n;
    for (const xid of earlier.xip) if (xid >= later.xmax) listed++;
    if (listed !== earlier.xmax - later.xmax) return false;
  }
  for (const xid of later.xip) if (xid < earlier.xmax && !earlier.xip.has(xid)) return false;
  return true;
}
