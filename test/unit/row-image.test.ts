// The row scanner (src/apply/row-image.ts): row images are split as text, each value kept byte for byte,
// because PostgreSQL cannot take apart an image whose json column holds \u0000. No database.
import fc, { type JsonValue } from 'fast-check';
import { describe, expect, it } from 'vitest';

import { canonicalKey, KeyReader, objectText, rowFields } from '../../src/apply/row-image.js';

/** Characters a JSON scanner is likely to trip on, and any other code point. */
const tricky = fc.oneof(
  fc.constantFrom(...'"\\\u0000\n\t\u001f/:,{}[] é\u2028😀'),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
);
const names = fc.string({ unit: tricky });
const values = fc.jsonValue({ stringUnit: tricky, maxDepth: 4 });
// A row as its JSON text holds it: -0 is written 0.
const rows = fc
  .dictionary(names, values, { noNullPrototype: true, maxKeys: 12 })
  .map((row) => JSON.parse(JSON.stringify(row)) as Record<string, JsonValue>);

/** Whitespace between tokens: none (as to_json writes), a space (jsonb), or any JSON whitespace (json). */
const layouts = fc.oneof(
  fc.constant(['']),
  fc.constant([' ']),
  fc.array(fc.constantFrom('', ' ', '\n', '\t', '\r\n', '  \t'), { minLength: 1, maxLength: 8 }),
);

/**
 * A row image of `row`, and the text written for each of its values, with the next gap of `layout`, in
 * turn, wherever JSON allows whitespace.
 */
function rowImage(row: Record<string, JsonValue>, layout: readonly string[]) {
  let next = 0;
  const gap = (): string => layout[next++ % layout.length]!;
  const list = (items: string[]): string =>
    items.map((item, i) => (i === 0 ? '' : `${gap()},${gap()}`) + item).join('');
  const member = (name: string, text: string): string => `${JSON.stringify(name)}${gap()}:${gap()}${text}`;
  const write = (value: JsonValue): string => {
    if (Array.isArray(value)) return `[${gap()}${list(value.map(write))}${gap()}]`;
    if (value !== null && typeof value === 'object') {
      return `{${gap()}${list(Object.entries(value).map(([n, v]) => member(n, write(v!))))}${gap()}}`;
    }
    return JSON.stringify(value);
  };
  const texts = new Map(Object.entries(row).map(([n, v]) => [n, write(v)]));
  const members = [...texts].map(([n, text]) => member(n, text));
  return { image: `${gap()}{${gap()}${list(members)}${gap()}}${gap()}`, texts };
}

describe('rowFields', () => {
  it('gives every top-level field of any row image with its value text exactly as written', () => {
    fc.assert(
      fc.property(rows, layouts, (row, layout) => {
        const { image, texts } = rowImage(row, layout);
        const fields = rowFields(image);
        expect([...fields]).toEqual([...texts]);
        for (const [name, text] of fields) expect(JSON.parse(text)).toEqual(row[name]);
      }),
    );
  });

  it('stops at the fields it is asked for, and gives those as a full scan does', () => {
    const rowsAndWanted = rows.chain((row) =>
      fc.tuple(fc.constant(row), fc.subarray(Object.keys(row)), fc.boolean()),
    );
    fc.assert(
      fc.property(rowsAndWanted, layouts, ([row, wanted, missing], layout) => {
        const { image } = rowImage(row, layout);
        const all = rowFields(image);
        // A name that is not in the row makes it scan to the end.
        const asked = new Set(missing ? [...wanted, '\u0000not a column'] : wanted);
        const expected = [...all].filter(([name]) => asked.has(name));
        expect([...rowFields(image, asked)]).toEqual(expected);
      }),
    );
  });

  it('reads a key as objectText of the key fields writes it, reused across images', () => {
    const rowsAndKey = rows.chain((row) =>
      fc.tuple(fc.constant(row), fc.subarray(Object.keys(row)), fc.boolean()),
    );
    fc.assert(
      fc.property(fc.array(rowsAndKey, { minLength: 1, maxLength: 4 }), layouts, (cases, layout) => {
        // One reader per key, as each table has one: what it read last must not leak into the next.
        for (const [row, key, missing] of cases) {
          const names = missing ? [...key, '\u0000not a column'] : key;
          const reader = new KeyReader(names);
          for (const image of [rowImage(row, layout).image, rowImage({}, layout).image]) {
            expect(reader.read(image)).toBe(objectText(names, rowFields(image, new Set(names))));
          }
        }
      }),
    );
  });

  it('reads no further than the last field it wants', () => {
    const image = '{"id":1,"v":"x","rest": not json at all';
    expect(rowFields(image, new Set(['v', 'id']))).toEqual(
      new Map([
        ['id', '1'],
        ['v', '"x"'],
      ]),
    );
    expect(() => rowFields(image)).toThrow(/row image/);
  });

  it('reads the empty object, nested values, escaped names and numbers as PostgreSQL writes them', () => {
    expect(rowFields('{}')).toEqual(new Map());
    expect(rowFields(' { } ')).toEqual(new Map());
    expect(
      rowFields(
        '{"a":{"b":[1,{"c":"}]"}]},"say \\"hi\\"":"\\u0000\\\\","c:\\\\d":-1.5E-7,"e":1e+21,"f":[],"g":null,"h":true}',
      ),
    ).toEqual(
      new Map([
        ['a', '{"b":[1,{"c":"}]"}]}'],
        ['say "hi"', '"\\u0000\\\\"'],
        ['c:\\d', '-1.5E-7'],
        ['e', '1e+21'],
        ['f', '[]'],
        ['g', 'null'],
        ['h', 'true'],
      ]),
    );
    // jsonb's text: a space after every colon and comma.
    expect(rowFields('{"a": [1, 2], "b": {"c": "d"}}')).toEqual(
      new Map([
        ['a', '[1, 2]'],
        ['b', '{"c": "d"}'],
      ]),
    );
  });

  it('refuses text that is not a row image', () => {
    expect(() => rowFields('')).toThrow(/not an object/);
    expect(() => rowFields('[1]')).toThrow(/not an object/);
    expect(() => rowFields('{"a":"x}')).toThrow(/unterminated string/);
    expect(() => rowFields('{"a":[1,{"b":2}')).toThrow(/unterminated value/);
    expect(() => rowFields('{"a" 1}')).toThrow(/expected a colon/);
    expect(() => rowFields('{"a":1 "b":2}')).toThrow(/expected a comma/);
  });
});

describe('objectText', () => {
  it('rebuilds a row image that parses to the same row, fields in the order asked', () => {
    fc.assert(
      fc.property(rows, layouts, (row, layout) => {
        const fields = rowFields(rowImage(row, layout).image);
        const names = Object.keys(row);
        expect(JSON.parse(objectText(names, fields))).toEqual(row);
        const reversed = [...names].reverse();
        expect([...rowFields(objectText(reversed, fields)).keys()]).toEqual(reversed);
      }),
    );
  });

  it('writes null for a field it does not have, and keeps value texts as they are', () => {
    const fields = new Map([['a', '{"x": "\\u0000"}']]);
    expect(objectText(['a', 'b"c'], fields)).toBe('{"a":{"x": "\\u0000"},"b\\"c":null}');
    expect(objectText([], fields)).toBe('{}');
  });
});

describe('canonicalKey', () => {
  /** numeric's text: no exponent, no leading zeros, no -0. */
  const decimals = fc
    .tuple(fc.boolean(), fc.bigInt({ min: 0n, max: 10n ** 30n }), fc.stringMatching(/^[0-9]{0,8}$/))
    .map(([negative, whole, fraction]) => {
      const zero = whole === 0n && /^0*$/.test(fraction);
      return `${negative && !zero ? '-' : ''}${whole}${fraction === '' ? '' : `.${fraction}`}`;
    });
  // Strings that look like numbers too, which must not change.
  const strings = fc
    .string({ unit: fc.oneof(fc.constantFrom('0', '1', '.', '-', 'e'), tricky) })
    .map((s) => JSON.stringify(s));
  /** A key's columns: decimals and strings, each decimal with a number of zeros to add to its scale. */
  const keys = fc.array(fc.tuple(fc.oneof(decimals, strings), fc.nat(4)), { minLength: 1, maxLength: 4 });
  const keyText = (columns: readonly string[]): string => `[${columns.join(',')}]`;
  const rescaled = (text: string, zeros: number): string =>
    text.startsWith('"') || zeros === 0
      ? text
      : `${text}${text.includes('.') ? '' : '.'}${'0'.repeat(zeros)}`;

  it('makes keys that differ only in the scale of their numbers one key', () => {
    fc.assert(
      fc.property(keys, (columns) => {
        const key = keyText(columns.map(([text]) => text));
        const scaled = keyText(columns.map(([text, zeros]) => rescaled(text, zeros)));
        expect(canonicalKey(scaled)).toBe(canonicalKey(key));
      }),
    );
  });

  it('keeps every value of the key, and strings byte for byte', () => {
    fc.assert(
      fc.property(keys, (columns) => {
        const key = keyText(columns.map(([text, zeros]) => rescaled(text, zeros)));
        const canonical = canonicalKey(key);
        expect(JSON.parse(canonical)).toEqual(JSON.parse(key));
        for (const [text] of columns) if (text.startsWith('"')) expect(canonical).toContain(text);
      }),
    );
  });

  it('trims the zeros of a fraction and nothing else', () => {
    expect(canonicalKey('{"id":1.50}')).toBe('{"id":1.5}');
    expect(canonicalKey('[100.00,-2.0,10,0.0,-0.00]')).toBe('[100,-2,10,0,0]');
    expect(canonicalKey('["1.50",1.50]')).toBe('["1.50",1.5]');
    expect(canonicalKey('{"a\\"1.0":2.10}')).toBe('{"a\\"1.0":2.1}');
    // A double's exponent form is left alone; so is a key without a fraction.
    expect(canonicalKey('[1.50e3]')).toBe('[1.50e3]');
    expect(canonicalKey('{"id":100}')).toBe('{"id":100}');
  });
});
