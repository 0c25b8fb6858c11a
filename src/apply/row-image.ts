/**
 * Row images are JSON objects (to_json of the row), handled as text. PostgreSQL cannot take one apart
 * when a json column holds `\u0000` (valid json, but `->`, json_each and json_populate_record de-escape
 * strings, and text cannot hold NUL), so the apply side splits images here, leaving every value's text
 * exactly as captured.
 */

// Scanned by character code, and strings by indexOf: the daemon's one thread walks every image of a bulk
// apply, and this is several times faster than a loop over one-character strings.
const quote = 0x22;
const backslash = 0x5c;

function isSpace(code: number): boolean {
  return code === 0x20 || code === 0x0a || code === 0x09 || code === 0x0d;
}

function skipSpace(text: string, i: number): number {
  while (i < text.length && isSpace(text.charCodeAt(i))) i++;
  return i;
}

/** The index just past the string that starts at `i` (at its opening quote). */
function skipString(text: string, i: number): number {
  for (let from = i + 1; ;) {
    const end = text.indexOf('"', from);
    if (end < 0) throw new Error('row image: unterminated string');
    // The quote ends the string unless an odd number of backslashes escapes it.
    let before = end - 1;
    while (before > i && text.charCodeAt(before) === backslash) before--;
    if ((end - 1 - before) % 2 === 0) return end + 1;
    from = end + 1;
  }
}

/** The index just past the JSON value that starts at `i`. */
function skipValue(text: string, i: number): number {
  const first = text.charCodeAt(i);
  if (first === quote) return skipString(text, i);
  if (first !== 0x7b && first !== 0x5b) {
    // A number, true, false or null: up to the next delimiter.
    for (; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 0x2c || c === 0x7d || c === 0x5d || isSpace(c)) break;
    }
    return i;
  }
  let depth = 0;
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === quote) i = skipString(text, i) - 1;
    else if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  throw new Error('row image: unterminated value');
}

/**
 * Walk the top-level fields of a row image in order: `visit` gets each column's name and where its
 * value's JSON text starts and ends, unaltered; it returns false to stop the walk.
 */
export function walkFields(
  image: string,
  visit: (name: string, start: number, end: number) => boolean | void,
): void {
  let i = skipSpace(image, 0);
  if (image[i] !== '{') throw new Error(`row image: not an object: ${image.slice(0, 40)}`);
  i = skipSpace(image, i + 1);
  if (image[i] === '}') return;
  for (;;) {
    const keyEnd = skipString(image, i);
    // Column names seldom hold an escape: JSON.parse only for those that do (a third of the scan's time).
    const quoted = image.slice(i + 1, keyEnd - 1);
    const name = quoted.includes('\\') ? (JSON.parse(image.slice(i, keyEnd)) as string) : quoted;
    i = skipSpace(image, keyEnd);
    if (image[i] !== ':') throw new Error('row image: expected a colon');
    const start = skipSpace(image, i + 1);
    const end = skipValue(image, start);
    if (visit(name, start, end) === false) return;
    i = skipSpace(image, end);
    if (image[i] === '}') return;
    if (image[i] !== ',') throw new Error('row image: expected a comma');
    i = skipSpace(image, i + 1);
  }
}

/**
 * The top-level fields of a row image: column name → the value's JSON text, unaltered. With `wanted`,
 * stops as soon as those are found.
 */
export function rowFields(image: string, wanted?: ReadonlySet<string>): Map<string, string> {
  const fields = new Map<string, string>();
  walkFields(image, (name, start, end) => {
    if (wanted === undefined || wanted.has(name)) fields.set(name, image.slice(start, end));
    return wanted === undefined || fields.size < wanted.size;
  });
  return fields;
}

/**
 * Reads a key's JSON object text straight from row images, as objectText(key, rowFields(image, key))
 * writes it: one walk that stops at the last key column, no map of the fields. Made once per table; the
 * daemon reads a key from every change it applies.
 */
export class KeyReader {
  private readonly at: Map<string, number>;
  /** `{"a":`, `,"b":`: what goes before each key column's value. */
  private readonly prefixes: string[];
  private readonly values: string[];
  private image = '';
  private found = 0;
  private readonly visit = (name: string, start: number, end: number): boolean => {
    const at = this.at.get(name);
    if (at !== undefined) {
      this.values[at] = this.image.slice(start, end);
      this.found++;
    }
    return this.found < this.values.length;
  };

  constructor(key: readonly string[]) {
    this.at = new Map(key.map((name, i) => [name, i]));
    this.prefixes = key.map((name, i) => `${i === 0 ? '{' : ','}${JSON.stringify(name)}:`);
    this.values = key.map(() => 'null');
  }

  read(image: string): string {
    if (this.values.length === 0) return '{}';
    this.values.fill('null');
    this.image = image;
    this.found = 0;
    walkFields(image, this.visit);
    let text = '';
    for (let i = 0; i < this.values.length; i++) text += this.prefixes[i]! + this.values[i]!;
    return `${text}}`;
  }
}

/** A JSON object text of the given fields, in the given order. */
export function objectText(names: readonly string[], fields: ReadonlyMap<string, string>): string {
  return `{${names.map((n) => `${JSON.stringify(n)}:${fields.get(n) ?? 'null'}`).join(',')}}`;
}

/**
 * A key's text with every JSON number in one form, so that keys the target's equality takes as one are
 * one key here too: numeric writes its scale (1.0, 1.00), and a key that changes only in scale is the
 * same row. Strings are left as they are.
 */
export function canonicalKey(text: string): string {
  // Only a fraction can be written in more than one way (numeric's text never has an exponent).
  if (!text.includes('.')) return text;
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '"') {
      const end = skipString(text, i);
      out += text.slice(i, end);
      i = end;
    } else if (c === '-' || (c >= '0' && c <= '9')) {
      let end = i + 1;
      while (end < text.length && /[0-9.eE+-]/.test(text[end]!)) end++;
      out += canonicalNumber(text.slice(i, end));
      i = end;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** A decimal number without trailing zeros of its fraction (numeric's text never has an exponent). */
function canonicalNumber(number: string): string {
  if (!number.includes('.') || /[eE]/.test(number)) return number;
  const trimmed = number.replace(/0+$/, '').replace(/\.$/, '');
  return trimmed === '-0' ? '0' : trimmed;
}
