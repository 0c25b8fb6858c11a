// Which source and target column types change values on the way without an error (src/apply/type-fit.ts),
// as format_type() names them.
import { describe, expect, it } from 'vitest';

import { silentChange } from '../../src/apply/type-fit.js';

describe('silentChange', () => {
  it('lets every widening and equal type through', () => {
    for (const [source, target] of [
      ['numeric(10,2)', 'numeric(10,2)'],
      ['numeric(10,2)', 'numeric(12,4)'],
      ['numeric(10,2)', 'numeric'],
      ['integer', 'numeric(12,2)'],
      ['bigint', 'numeric'],
      ['smallint', 'real'],
      ['integer', 'double precision'],
      ['real', 'double precision'],
      ['timestamp(3) with time zone', 'timestamp with time zone'],
      ['timestamp without time zone', 'timestamp with time zone'],
      ['time(0) without time zone', 'time(2) without time zone'],
      ['interval year to month', 'interval'],
      ['interval', 'interval day to second'],
      ['interval hour', 'interval day to hour'],
      ['interval', 'interval day to second'],
      ['interval hour', 'interval day to hour'],
      ['interval(3)', 'interval(3)'],
      ['numeric(10,2)[]', 'numeric[]'],
      ['character varying(20)', 'text'],
      ['text', 'character varying(5)'],
      ['integer', 'smallint'],
      ['numeric', 'integer'],
      ['my_domain', 'text'],
    ]) {
      expect(silentChange(source!, target!), `${source} -> ${target}`).toBeUndefined();
    }
  });

  it('names what changes where values are rounded, cut or lose their offset', () => {
    expect(silentChange('numeric(12,4)', 'numeric(10,2)')).toBe('values are rounded to 2 decimal place(s)');
    expect(silentChange('numeric', 'numeric(20,6)')).toBe('values are rounded to 6 decimal place(s)');
    expect(silentChange('double precision', 'numeric(12,3)')).toBe(
      'values are rounded to 3 decimal place(s)',
    );
    expect(silentChange('double precision', 'real')).toBe('values are rounded to about 6 significant digits');
    expect(silentChange('numeric(10,2)', 'double precision')).toBe(
      'values are rounded to about 15 significant digits',
    );
    expect(silentChange('bigint', 'double precision')).toBe(
      'values are rounded to about 15 significant digits',
    );
    expect(silentChange('integer', 'real')).toBe('values are rounded to about 6 significant digits');
    expect(silentChange('timestamp with time zone', 'timestamp(0) with time zone')).toBe(
      'values are rounded to 0 fractional digit(s) of a second',
    );
    expect(silentChange('time(6) without time zone', 'time(3) without time zone')).toBe(
      'values are rounded to 3 fractional digit(s) of a second',
    );
    expect(silentChange('interval', 'interval(1)')).toBe(
      'values are rounded to 1 fractional digit(s) of a second',
    );
    expect(silentChange('interval', 'interval year to month')).toBe('values are cut to whole months');
    expect(silentChange('interval day to second', 'interval day to hour')).toBe(
      'values are cut to whole hours',
    );
    expect(silentChange('timestamp(3) with time zone', 'timestamp(3) without time zone')).toBe(
      'values lose their time zone offset: one instant written by sessions in different time zones arrives as different times',
    );
    expect(silentChange('numeric(12,4)[]', 'numeric(10,2)[]')).toBe(
      'values are rounded to 2 decimal place(s)',
    );
  });
});
