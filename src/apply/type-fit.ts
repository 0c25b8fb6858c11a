/**
 * Whether a target column's type takes the source column's values unchanged. The apply writes a value as
 * its text, which the target's column reads with its own type's input, as native logical replication
 * does: a value the type cannot hold fails (the target parks, naming it), but some are changed without
 * an error: rounded to fewer decimal places or fractional seconds, to fewer significant digits, or read
 * without the time zone offset they were written with. Those the plan warns of (plan.ts); types are as
 * format_type() writes them ('numeric(10,2)', 'timestamp(3) with time zone', 'integer[]').
 */

/** Why values of `source` change on their way into `target`, or undefined where they do not. */
export function silentChange(source: string, target: string): string | undefined {
  if (source === target) return undefined;
  // Arrays of both: their elements. An array on one side only fails at once.
  if (source.endsWith('[]') && target.endsWith('[]'))
    return silentChange(source.slice(0, -2), target.slice(0, -2));
  return numericChange(source, target) ?? timeChange(source, target);
}

const floats: Record<string, number> = { real: 6, 'double precision': 15 };

/** numeric(p,s)'s scale; undefined for numeric without one; null for a type that is not numeric. */
function numericScale(type: string): number | undefined | null {
  if (type === 'numeric') return undefined;
  const match = /^numeric\((\d+),(-?\d+)\)$/.exec(type);
  return match === null ? null : Number(match[2]);
}

const integers = new Set(['smallint', 'integer', 'bigint']);

function numericChange(source: string, target: string): string | undefined {
  const targetScale = numericScale(target);
  if (targetScale !== null && targetScale !== undefined) {
    const sourceScale = numericScale(source);
    const exact = integers.has(source) ? 0 : sourceScale;
    if (exact === null && !(source in floats)) return undefined;
    if (exact === undefined || exact === null || exact > targetScale)
      return `values are rounded to ${targetScale} decimal place(s)`;
    return undefined;
  }
  const digits = floats[target];
  if (digits === undefined) return undefined;
  const sourceDigits = floats[source];
  if (sourceDigits !== undefined) {
    return sourceDigits > digits ? `values are rounded to about ${digits} significant digits` : undefined;
  }
  // A float reads any decimal, rounded to its binary precision; integers of up to its digits exactly.
  if (numericScale(source) !== null || source === 'bigint' || (source === 'integer' && digits < 10)) {
    return `values are rounded to about ${digits} significant digits`;
  }
  return undefined;
}

/** A date and time type, its fractional digits (6 unless said), and whether it carries a zone. */
interface TimeType {
  kind: 'timestamp' | 'time' | 'interval';
  digits: number;
  zoned: boolean;
  /** An interval limited to some fields ('interval year to month'). */
  fields: string | undefined;
}

function timeType(type: string): TimeType | undefined {
  const stamp = /^(timestamp|time)(?:\((\d)\))? with(out)? time zone$/.exec(type);
  if (stamp !== null) {
    return {
      kind: stamp[1] as 'timestamp' | 'time',
      digits: stamp[2] === undefined ? 6 : Number(stamp[2]),
      zoned: stamp[3] === undefined,
      fields: undefined,
    };
  }
  const interval = /^interval(?: ([a-z ]+?))?(?:\((\d)\))?$/.exec(type);
  if (interval !== null) {
    return {
      kind: 'interval',
      digits: interval[2] === undefined ? 6 : Number(interval[2]),
      zoned: false,
      fields: interval[1],
    };
  }
  return undefined;
}

function timeChange(source: string, target: string): string | undefined {
  const s = timeType(source);
  const t = timeType(target);
  if (s === undefined || t === undefined || s.kind !== t.kind) return undefined;
  if (s.zoned && !t.zoned) {
    return 'values lose their time zone offset: one instant written by sessions in different time zones arrives as different times';
  }
  // An interval's fields cut what is below the last of them ('interval day to hour' keeps whole hours);
  // one that ends with seconds keeps all, to its digits.
  const cutAt = (fields: string | undefined) => fields?.split(' ').at(-1);
  const last = cutAt(t.fields);
  if (last !== undefined && last !== 'second' && last !== cutAt(s.fields))
    return `values are cut to whole ${last}s`;
  if (t.digits < s.digits) return `values are rounded to ${t.digits} fractional digit(s) of a second`;
  return undefined;
}
