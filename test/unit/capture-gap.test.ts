// What is said of a capture found off (src/capture/triggers.ts, src/capture/table-set.ts): the triggers
// grouped by table and by what was done to them, and the advice that names the copy which closes it.
import { describe, expect, it } from 'vitest';

import { copyAdvice, copyingReason } from '../../src/capture/table-set.js';
import { captureGapWhy, originOnlyAdvice } from '../../src/capture/triggers.js';

describe('a capture gap in words', () => {
  it('groups the triggers by table and by what stopped them', () => {
    expect(
      captureGapWhy([
        { trigger: 'trigsync_capture_insert', table: 'public.events_2', how: 'disabled' },
        { trigger: 'trigsync_capture_update', table: 'public.events_2', how: 'disabled' },
        { trigger: 'trigsync_capture_delete', table: 'public.events', how: 'dropped' },
        { trigger: 'trigsync_capture_truncate', table: 'public.events_2', how: 'disabled' },
      ]),
    ).toBe(
      'its capture was off: capture triggers trigsync_capture_insert, trigsync_capture_update, ' +
        'trigsync_capture_truncate on public.events_2 disabled; capture trigger trigsync_capture_delete ' +
        'on public.events dropped',
    );
  });

  it('says why a target may lack a table, and how a copy target takes it', () => {
    const gap = { target: 'b', table: 'public.items', since: '2026-12-05T00:00:00.000Z' };
    expect(
      copyAdvice({ ...gap, why: 'its capture was off: capture trigger x on public.items disabled' }),
    ).toBe(
      'target b may lack rows or changes of public.items from before 2026-12-05T00:00:00.000Z (its capture ' +
        'was off: capture trigger x on public.items disabled); copy it with `trigsync sync b --table public.items`',
    );
    expect(copyAdvice({ ...gap, why: null })).toMatch(/\(it did not take that table all along\)/);
    expect(copyingReason({ ...gap, why: null })).toBe('which it takes anew');
    expect(copyingReason({ ...gap, why: 'its capture was off: …' })).toBe(
      'which it may lack writes of (its capture was off: …)',
    );
  });

  it("names the owner's statement with the schema's trigger names, quoted only where needed", () => {
    expect(originOnlyAdvice('Sync Schema', ['public.orders'])).toContain(
      '`alter table T enable always trigger "Sync Schema_capture_insert", enable always trigger ' +
        '"Sync Schema_capture_update", enable always trigger "Sync Schema_capture_delete", enable always ' +
        'trigger "Sync Schema_capture_truncate"`',
    );
  });
});
