// The demo's live view (src/demo/shown-state.ts, live-view.ts): what a row shows of a target, from one
// status sample. A target is shown live only within the live lag; every other state carries its reason.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import type { TargetState } from '../../src/lib/status-report.js';
import { tableRows, targetSummary } from '../../src/demo/live-view.js';
import type { TargetView } from '../../src/demo/monitor.js';
import {
  errorsCell,
  liveLagSeconds,
  shownState,
  stateNote,
  type TargetSample,
} from '../../src/demo/shown-state.js';

const sample = (fields: Partial<TargetSample>): TargetSample => ({
  state: 'live',
  backlog: 0,
  lagSeconds: 0,
  errorQueue: 0,
  lastError: null,
  ...fields,
});

function view(s: TargetSample): TargetView {
  const shown = shownState(s);
  return {
    name: 'analytics',
    state: shown.state,
    reason: shown.reason,
    backlog: s.backlog,
    lagSeconds: s.lagSeconds,
    rate: 0,
    applied: 0,
    errorQueue: s.errorQueue,
    errors: errorsCell(s, shown),
  };
}

describe('shownState', () => {
  it('does not call a target live that the daemon calls live with a window of 7 s to apply', () => {
    const shown = shownState(sample({ backlog: 2288, lagSeconds: 7.3 }));
    expect(shown).toEqual({ state: 'catching_up', reason: '2,288 changes behind, oldest 7.3s old' });
    expect(targetSummary(view(sample({ backlog: 2288, lagSeconds: 7.3 })))).toBe(
      'analytics catching_up backlog 2288 lag 7.3s 0/s applied 0 errors 0',
    );
    expect(stateNote('analytics', shown)).toBe(
      'analytics: catching_up: 2,288 changes behind, oldest 7.3s old',
    );
  });

  it('shows live within the live lag, and caught up whatever the daemon said once nothing is left', () => {
    expect(shownState(sample({ backlog: 12, lagSeconds: 0.1 }))).toEqual({
      state: 'live',
      reason: undefined,
    });
    expect(shownState(sample({ state: 'catching_up' }))).toEqual({ state: 'live', reason: undefined });
    expect(shownState(sample({ state: 'catching_up', backlog: 300, lagSeconds: 0.4 })).state).toBe(
      'catching_up',
    );
    expect(shownState(sample({ state: 'syncing', backlog: 300, lagSeconds: 9 }))).toEqual({
      state: 'syncing',
      reason: undefined,
    });
  });

  it('gives a parked target the error it waits on, which the error queue does not hold', () => {
    const refused = sample({
      state: 'parked',
      backlog: 413,
      lagSeconds: 2.1,
      lastError: 'connect ECONNREFUSED 127.0.0.1:1',
    });
    const shown = shownState(refused, { kind: 'connection', message: 'connect ECONNREFUSED 127.0.0.1:1' });
    expect(shown).toEqual({
      state: 'parked',
      reason: 'parked: connection error: connect ECONNREFUSED 127.0.0.1:1',
    });
    expect(errorsCell(refused, shown)).toBe('parked: connection error: connect ECONNREFUSED 127.0.0.1:1');
    // Without the daemon's event (another process parked it): the source's record, first line only.
    expect(shownState({ ...refused, lastError: 'connect ECONNREFUSED 127.0.0.1:1\n  at x' }).reason).toBe(
      'parked: connect ECONNREFUSED 127.0.0.1:1',
    );
    const refusedChange = sample({ state: 'parked', errorQueue: 1, lastError: 'duplicate key value' });
    expect(errorsCell(refusedChange, shownState(refusedChange))).toBe(
      'parked: duplicate key value (1 in the error queue)',
    );
    expect(tableRows([view(refused)])[0]).toEqual([
      'analytics',
      'parked',
      '413',
      '2.1s',
      '0',
      '0',
      'parked: connect ECONNREFUSED 127.0.0.1:1',
    ]);
  });

  it('never shows live beside a lag beyond the live lag, and gives catching_up and parked their reason', () => {
    const states: TargetState[] = ['new', 'syncing', 'catching_up', 'live', 'parked', 'removed'];
    fc.assert(
      fc.property(
        fc.constantFrom(...states),
        fc.nat({ max: 1_000_000 }),
        fc.double({ min: 0, max: 3600, noNaN: true }),
        fc.nat({ max: 10 }),
        (state, backlog, lagSeconds, errorQueue) => {
          const s = sample({ state, backlog, lagSeconds, errorQueue, lastError: 'boom' });
          const shown = shownState(s);
          if (shown.state === 'live') expect(lagSeconds).toBeLessThanOrEqual(liveLagSeconds);
          if (shown.state === 'catching_up' || shown.state === 'parked') expect(shown.reason).toBeDefined();
          if (shown.state === 'parked') expect(errorsCell(s, shown)).not.toBe('0');
        },
      ),
    );
  });
});
