/**
 * PostgreSQL identifiers: parsing the names written in the config, displaying them, and quoting them
 * for SQL. `ident()` is the project's single quoting helper; every identifier that reaches SQL text
 * goes through it, so that a table named `Order Lines` or `a"b` can never break or inject a statement.
 */

/** A schema-qualified name, holding the exact names as stored in the catalog (unquoted, case kept). */
export interface QualifiedName {
  schema: string;
  name: string;
}

/** NAMEDATALEN - 1: PostgreSQL silently truncates longer names, so a longer one would never match. */
export const MAX_IDENTIFIER_BYTES = 63;

/**
 * Keywords that cannot be a table, schema or column name without quotes: PostgreSQL's "reserved" and
 * "reserved (can be function or type)" categories. Display forms quote them so that they can be pasted
 * into SQL as they are.
 */
const reservedKeywords = new Set([
  ...['all', 'analyse', 'analyze', 'and', 'any', 'array', 'as', 'asc', 'asymmetric', 'authorization'],
  ...['binary', 'both', 'case', 'cast', 'check', 'collate', 'collation', 'column', 'concurrently'],
  ...['constraint', 'create', 'cross', 'current_catalog', 'current_date', 'current_role'],
  ...['current_schema', 'current_time', 'current_timestamp', 'current_user', 'default', 'deferrable'],
  ...['desc', 'distinct', 'do', 'else', 'end', 'except', 'false', 'fetch', 'for', 'foreign', 'freeze'],
  ...['from', 'full', 'grant', 'group', 'having', 'ilike', 'in', 'initially', 'inner', 'intersect'],
  ...['into', 'is', 'isnull', 'join', 'lateral', 'leading', 'left', 'like', 'limit', 'localtime'],
  ...['localtimestamp', 'natural', 'not', 'notnull', 'null', 'offset', 'on', 'only', 'or', 'order'],
  ...['outer', 'overlaps', 'placing', 'primary', 'references', 'returning', 'right', 'select'],
  ...['session_user', 'similar', 'some', 'symmetric', 'system_user', 'table', 'tablesample', 'then'],
  ...['to', 'trailing', 'true', 'union', 'unique', 'user', 'using', 'variadic', 'verbose', 'when'],
  ...['where', 'window', 'with'],
]);

/** Parse `schema.table` or `table` (schema = `defaultSchema`), each part bare or double-quoted. */
export function parseQualifiedName(text: string, defaultSchema = 'public'): QualifiedName {
  const parts = parseParts(text, 2);
  const [first, second] = parts;
  if (first === undefined) throw new Error('empty name'); // parseParts never returns no part
  return second === undefined ? { schema: defaultSchema, name: first } : { schema: first, name: second };
}

/** Parse one identifier (a column, a schema): bare (folded to lower case) or double-quoted. */
export function parseIdentifier(text: string): string {
  const [only] = parseParts(text, 1);
  if (only === undefined) throw new Error('empty name');
  return only;
}

/** Parse a column name; the same rules as any single identifier. */
export function parseColumnName(text: string): string {
  return parseIdentifier(text);
}

/** Display form of one identifier: bare when PostgreSQL would read it back unchanged, else quoted. */
export function formatIdentifier(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) && !reservedKeywords.has(name) ? name : quote(name);
}

/** Canonical display form, e.g. `public.orders`, `public."Order Lines"`; parses back to the same name. */
export function formatQualifiedName(q: QualifiedName): string {
  return `${formatIdentifier(q.schema)}.${formatIdentifier(q.name)}`;
}

/** One identifier quoted for SQL text, always: `"a""b"`. Throws on a name PostgreSQL could not hold. */
export function ident(name: string): string {
  if (typeof name !== 'string' || name === '') throw new Error('invalid SQL identifier: empty name');
  if (name.includes('\0')) throw new Error(`invalid SQL identifier ${JSON.stringify(name)}: contains NUL`);
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > MAX_IDENTIFIER_BYTES) {
    // PostgreSQL would truncate it and then address another object than the one meant.
    throw new Error(
      `invalid SQL identifier ${JSON.stringify(name)}: ${bytes} bytes, at most ${MAX_IDENTIFIER_BYTES}`,
    );
  }
  return quote(name);
}

/** `"schema"."name"` for SQL text. */
export function qualifiedIdent(q: QualifiedName): string {
  return `${ident(q.schema)}.${ident(q.name)}`;
}

/** A string literal for SQL text, where a bind parameter cannot go (DDL, trigger arguments). */
export function sqlLiteral(text: string): string {
  const quoted = text.replaceAll("'", "''");
  // An E'' literal reads a backslash as an escape whatever the server's standard_conforming_strings; a
  // plain one reads it so where that is off (a database or role may set it), and 'a\tb' would be a tab.
  return text.includes('\\') ? `E'${quoted.replaceAll('\\', '\\\\')}'` : `'${quoted}'`;
}

/** Two qualified names denote the same table. */
export function sameName(a: QualifiedName, b: QualifiedName): boolean {
  return a.schema === b.schema && a.name === b.name;
}

/** Two lists name the same tables in the same order. */
export function sameNames(a: readonly QualifiedName[], b: readonly QualifiedName[]): boolean {
  return a.length === b.length && a.every((n, i) => sameName(n, b[i]!));
}

function quote(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * Split `text` into at most `maxParts` dot-separated identifiers. Positions in messages count
 * characters (code points) from 1, as PostgreSQL's own error positions do.
 */
function parseParts(text: string, maxParts: number): string[] {
  if (typeof text !== 'string') throw new Error(`expected a name as a string, got ${typeof text}`);
  const chars = Array.from(text);
  let i = 0;
  let end = chars.length;
  while (i < end && isSpace(chars[i])) i++;
  while (end > i && isSpace(chars[end - 1])) end--;
  if (i === end) throw new Error('empty name');

  const parts: string[] = [];
  for (;;) {
    const start = i;
    let name: string;
    if (chars[i] === '"') {
      [name, i] = readQuoted(chars, i, end);
    } else {
      if (i === end) throw new Error(`empty name after "." at position ${i}`);
      if (chars[i] === '.') throw new Error(`empty name before "." at position ${i + 1}`);
      if (!isIdentStart(chars[i])) throw invalidCharacter(chars[i], i);
      i++;
      while (i < end && isIdentCont(chars[i])) i++;
      // Bare names fold to lower case; like PostgreSQL in UTF-8, only ASCII letters fold.
      name = chars
        .slice(start, i)
        .join('')
        .replace(/[A-Z]+/g, (s) => s.toLowerCase());
    }
    const bytes = Buffer.byteLength(name, 'utf8');
    if (bytes > MAX_IDENTIFIER_BYTES) {
      throw new Error(
        `name too long at position ${start + 1}: ${bytes} bytes, at most ${MAX_IDENTIFIER_BYTES} ` +
          '(PostgreSQL would truncate it)',
      );
    }
    parts.push(name);
    if (i === end) return parts;
    if (chars[i] !== '.') throw invalidCharacter(chars[i], i);
    if (parts.length === maxParts) {
      throw new Error(
        maxParts === 1
          ? `unexpected "." at position ${i + 1}: expected one name (double-quote a name that contains a dot)`
          : `too many dots at position ${i + 1}: expected table or schema.table ` +
              '(double-quote a name that contains a dot)',
      );
    }
    i++;
  }
}

/** Read a double-quoted identifier starting at `chars[start]`; returns the name and the index after it. */
function readQuoted(chars: string[], start: number, end: number): [string, number] {
  let name = '';
  let i = start + 1;
  for (;;) {
    if (i >= end)
      throw new Error(`unbalanced double quote: the quote at position ${start + 1} is not closed`);
    const c = chars[i];
    if (c === '"') {
      if (chars[i + 1] === '"' && i + 1 < end) {
        name += '"';
        i += 2;
        continue;
      }
      i++;
      break;
    }
    if (c === '\0') throw new Error(`invalid character NUL at position ${i + 1}`);
    name += c;
    i++;
  }
  if (name === '') throw new Error(`empty quoted name "" at position ${start + 1}`);
  return [name, i];
}

function invalidCharacter(c: string | undefined, index: number): Error {
  const shown = c !== undefined && /^[\p{L}\p{N}\p{P}\p{S} ]$/u.test(c) ? `'${c}'` : codePoint(c);
  return new Error(
    `invalid character ${shown} at position ${index + 1} ` +
      '(a name with characters other than letters, digits, _ and $ must be double-quoted)',
  );
}

function codePoint(c: string | undefined): string {
  const n = c?.codePointAt(0) ?? 0;
  return `U+${n.toString(16).toUpperCase().padStart(4, '0')}`;
}

function isSpace(c: string | undefined): boolean {
  return c !== undefined && /^\s$/u.test(c);
}

/** PostgreSQL's scanner: ident_start [A-Za-z\200-\377_], i.e. any non-ASCII character too. */
function isIdentStart(c: string | undefined): boolean {
  return c !== undefined && (/^[A-Za-z_]$/.test(c) || c.codePointAt(0)! >= 0x80);
}

/** ident_cont adds digits and `$`. */
function isIdentCont(c: string | undefined): boolean {
  return c !== undefined && (isIdentStart(c) || /^[0-9$]$/.test(c));
}
