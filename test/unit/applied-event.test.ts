// What a committed batch tells the metrics (src/apply/applied-event.ts): per table and operation, and the
// latencies grouped by capture time, each group counted once per change (an update's two images once).
import { describe, expect, it } from 'vitest';

import { appliedEvent, runAppliedEvent } from '../../src/apply/applied-event.js';
import type { TargetPlan } from '../../src/apply/plan.js';
import { logChange } from '../support/log-change.js';
import { tablePlan } from '../support/table-plan.js';

const plan: TargetPlan = {
  target: 'dst',
  tables: new Map([
    [1, tablePlan(1, 'orders', 0)],
    [2, tablePlan(2, 'lines', 1)],
  ]),
  readQuery: '',
  warnings: [],
};

describe('appliedEvent', () => {
  it("counts each table's operations and groups latencies by capture time", () => {
    const now = Date.now();
    const changes = [
      logChange({ relid: 1, op: 'I', capturedMs: now - 2000 }),
      logChange({ relid: 2, op: 'I', capturedMs: now - 2000 }),
      logChange({ relid: 2, op: 'I', capturedMs: now - 2000 }),
      logChange({ relid: 1, op: 'V', capturedMs: now - 1000 }),
      logChange({ relid: 1, op: 'U', capturedMs: now - 1000 }),
      logChange({ relid: 2, op: 'D', capturedMs: now - 500 }),
      logChange({ relid: 2, op: 'T', capturedMs: now - 2000 }),
      // A table the plan does not hold: neither counted nor timed.
      logChange({ relid: 9, op: 'I', capturedMs: now - 100 }),
    ];
    const event = appliedEvent('dst', plan, changes, 12);
    expect(event.counts).toEqual([
      { table: 'public.orders', insert: 1, update: 1, delete: 0, truncate: 0 },
      { table: 'public.lines', insert: 2, update: 0, delete: 1, truncate: 1 },
    ]);
    expect(event.latencies.map((l) => l.changes)).toEqual([3, 1, 1, 1]);
    expect(event.latencies.map((l) => Math.round(l.seconds))).toEqual([2, 1, 1, 2]);
    expect(event.latencies.reduce((n, l) => n + l.changes, 0)).toBe(6);
  });

  it("gives a run's capture times as they were grouped on the source", () => {
    const now = Date.now();
    const event = runAppliedEvent(
      'dst',
      plan,
      {
        changes: 7,
        lastId: 70,
        inserts: true,
        tables: [
          { relid: 1, changes: 3 },
          { relid: 2, changes: 4 },
        ],
        captured: [
          { ms: now - 3000, changes: 5 },
          { ms: now - 1000, changes: 2 },
        ],
      },
      5,
    );
    expect(event.latencies.map((l) => [Math.round(l.seconds), l.changes])).toEqual([
      [3, 5],
      [1, 2],
    ]);
    expect(event.copiedThrough).toBe(7);
  });
});
