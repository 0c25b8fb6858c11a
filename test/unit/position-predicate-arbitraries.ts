// Positions and changes generated for the tests of the applied-by-position rule (src/changelog/applied-by.ts):
// test/unit/position-predicate.test.ts (the TypeScript twin alone) and test/replication/applied-by.test.ts
// (the SQL against it). Transaction ids come from a small range, so that a change's txid often falls
// below a snapshot's xmin, in its xip list, between them, at its xmax and above; in the first epoch or the
// second (xid8 past 2^32); change ids and appliedId overlap.
import fc from 'fast-check';

import type { AppliedPosition, LoggedChange } from '../../src/changelog/applied-by.js';

/** A pg_snapshot in text form that PostgreSQL accepts: xmin <= xip (ascending) < xmax. */
export function snapshotText(base: bigint): fc.Arbitrary<string> {
  return fc
    .tuple(fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 8 }))
    .chain(([xmin, width]) =>
      fc
        .subarray(Array.from({ length: width }, (_, i) => xmin + i))
        .map(
          (xip) =>
            `${base + BigInt(xmin)}:${base + BigInt(xmin + width)}:${xip.map((x) => base + BigInt(x)).join(',')}`,
        ),
    );
}

export interface PredicateCase {
  position: AppliedPosition;
  change: LoggedChange;
  /** Another snapshot, in which the change may be visible (the source's now, a window's end). */
  at: string;
}

/** Where xids start: the first epoch, or the second. */
const bases = [3n, (1n << 32n) + 3n];

export const predicateCase: fc.Arbitrary<PredicateCase> = fc.constantFrom(...bases).chain((base) =>
  fc
    .record({
      from: snapshotText(base),
      to: fc.option(snapshotText(base), { nil: undefined }),
      appliedId: fc.integer({ min: 0, max: 12 }),
      id: fc.integer({ min: 1, max: 12 }),
      txid: fc.integer({ min: 0, max: 30 }).map((x) => String(base + BigInt(x))),
      at: snapshotText(base),
    })
    .map((r) => ({
      position: {
        from: { snapshot: r.from },
        to: r.to === undefined ? undefined : { snapshot: r.to },
        appliedId: r.appliedId,
      },
      change: { id: r.id, txid: r.txid },
      at: r.at,
    })),
);
