/**
 * Row images are JSON objects (to_json of the row), handled as text. PostgreSQL cannot take one apart
 * when a json column holds `\u0000` (valid json, but `->`, json_each and json_populate_record de-escape
 * strings, and text cannot hold NUL), so the apply side splits images here, leaving every value's text
 * exactly as captured.
 */

function skipSpace(text: string, i: number): number {
  while (i < text.length && (text[i] === ' ' || text[i] === '\n' || text[i] === '\t' || text[i] === '\r'))
    i++;
  return i;
}

/** The index just past the string that starts at `i` (at its opening quote). */
function skipString(text: string, i: number): number {
  for (i++; i < text.length; i++) {
    const c = text[i];
    if (c === '\\') i++;
    else if (c === '"') return i + 1;
  }
  throw new Error('row image: unterminated string');
}

/** The index just past the JSON value that starts at `i`. */
function skipValue(text: string, i: number): number {
  const first = text[i];
  if (first === '"') return skipString(text, i);
  if (first !== '{' && first !== '[') {
    while (i < text.length && !',}] \n\t\r'.includes(text[i]!)) i++;
    return i;
  }
  let depth = 0;
  for (; i < text.length; i++) {
    const c = text[i];
    if (c === '"') i = skipString(text, i) - 1;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  throw new Error('row image: unterminated value');
}

/**
 * The top-level fields of a row image: column name → the value's JSON text, unaltered. With `wanted`,
 * stops as soon as those are found.
 */
export function rowFields(image: string, wanted?: ReadonlySet<string>): Map<string, string> {
  const fields = new Map<string, string>();
  let i = skipSpace(image, 0);
  if (image[i] !== '{') throw new Error(`row image: not an object: ${image.slice(0, 40)}`);
  i = skipSpace(image, i + 1);
  if (image[i] === '}') return fields;
  for (;;) {
    const keyEnd = skipString(image, i);
    // Column names seldom hold an escape: JSON.parse only for those that do (a third of the scan's time).
    const quoted = image.slice(i + 1, keyEnd - 1);
    const name = quoted.includes('\\') ? (JSON.parse(image.slice(i, keyEnd)) as string) : quoted;
    i = skipSpace(image, keyEnd);
    if (image[i] !== ':') throw new Error('row image: expected a colon');
    const start = skipSpace(image, i + 1);
    const end = skipValue(image, start);
    if (wanted === undefined || wanted.has(name)) fields.set(name, image.slice(start, end));
    if (wanted !== undefined && fields.size === wanted.size) return fields;
    i = skipSpace(image, end);
    if (image[i] === '}') return fields;
    if (image[i] !== ',') throw new Error('row image: expected a comma');
    i = skipSpace(image, i + 1);
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
