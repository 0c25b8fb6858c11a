/**
 * Checks of single values. Each returns what is wrong, as the second half of a `key: what is wrong`
 * problem, or undefined when the value is fine. The convict formats (schema.ts) and the checks of
 * targets and tables (tables.ts) share them, so one kind of value gets one wording everywhere.
 */

import {
  MAX_IDENTIFIER_BYTES,
  parseIdentifier,
  parseQualifiedName,
  type QualifiedName,
} from './identifiers.js';
import type { KeyPath, Problems } from './problems.js';
import { redactUrl } from './redact.js';

/**
 * A short description of a value for a message. Strings that may hold a password (a URL or a
 * key/value connection string where a name was expected) are shown redacted.
 */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') {
    const safe = /@|password/i.test(value) ? redactUrl(value) : value;
    return JSON.stringify(safe.length > 80 ? `${safe.slice(0, 77)}...` : safe);
  }
  return typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint'
    ? String(value)
    : `a ${typeof value}`;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const urlExample = 'postgres://user:password@host:5432/dbname';

/** A connection URL that node-postgres accepts. Messages show it only redacted. */
export function pgUrlProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return `must be a URL like ${urlExample}, got ${describe(value)}`;
  if (value.trim() === '') return `must be a URL like ${urlExample}, got an empty string`;
  if (!/^postgres(?:ql)?:\/\//i.test(value)) {
    return `must start with postgres:// or postgresql://, got "${redactUrl(value)}"`;
  }
  if (!parsesAsPgUrl(value)) return `is not a valid URL: "${redactUrl(value)}"`;
  return undefined;
}

/** As pg-connection-string parses: spaces encoded, and an empty host (`user@/db`) allowed. */
function parsesAsPgUrl(url: string): boolean {
  const encoded = /\s|%[^a-f0-9]|%[a-f0-9][^a-f0-9]/i.test(url)
    ? encodeURI(url).replace(/%25(\d\d)/g, '%$1')
    : url;
  for (const candidate of [encoded, encoded.replace('@/', '@dummy/')]) {
    try {
      new URL(candidate);
      return true;
    } catch {
      // try the next form
    }
  }
  return false;
}

export function intProblem(value: unknown, min: number, max: number): string | undefined {
  if (typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max) return undefined;
  return `must be an integer from ${min} to ${max}, got ${describe(value)}`;
}

export function boolProblem(value: unknown): string | undefined {
  return typeof value === 'boolean' ? undefined : `must be true or false, got ${describe(value)}`;
}

export function enumProblem(value: unknown, allowed: readonly string[]): string | undefined {
  if (typeof value === 'string' && allowed.includes(value)) return undefined;
  return `must be one of ${allowed.join(', ')}, got ${describe(value)}`;
}

export function nonEmptyStringProblem(value: unknown): string | undefined {
  if (typeof value === 'string' && value.trim() !== '') return undefined;
  return `must be a non-empty string, got ${describe(value)}`;
}

/**
 * A name trigsync stores and derives keys from (a target, a group): `^[a-z][a-z0-9_]{0,62}$`. A target's
 * name also becomes part of an environment variable.
 */
export function storedNameProblem(value: unknown): string | undefined {
  if (typeof value === 'string' && /^[a-z][a-z0-9_]{0,62}$/.test(value)) return undefined;
  return (
    `${describe(value)}: must be a lower-case letter followed by lower-case letters, digits or _, ` +
    'at most 63 characters'
  );
}

/** One SQL identifier (a schema name): bare or double-quoted. */
export function identifierProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return `must be a name, got ${describe(value)}`;
  try {
    const name = parseIdentifier(value);
    // PostgreSQL refuses to create schemas named pg_*.
    if (name.startsWith('pg_'))
      return `${describe(value)}: names starting with pg_ are reserved by PostgreSQL`;
    return undefined;
  } catch (error) {
    return `${describe(value)}: ${(error as Error).message}`;
  }
}

/**
 * application_name: the capture triggers compare it to recognise trigsync's writes. PostgreSQL keeps
 * at most 63 bytes and turns non-ASCII characters into `?`, after which it would no longer match.
 */
export function applicationNameProblem(value: unknown): string | undefined {
  if (typeof value !== 'string' || value === '') return `must be a non-empty string, got ${describe(value)}`;
  if (!/^[\x20-\x7e]+$/.test(value)) {
    return `${describe(value)}: only printable ASCII characters, as PostgreSQL replaces the others`;
  }
  if (value.length > MAX_IDENTIFIER_BYTES) {
    return `${describe(value)}: ${value.length} characters, at most ${MAX_IDENTIFIER_BYTES}`;
  }
  return undefined;
}

export function hostProblem(value: unknown): string | undefined {
  if (typeof value === 'string' && /^[^\s/]+$/.test(value)) return undefined;
  return `must be a host name or IP address to listen on, such as 0.0.0.0 or ::, got ${describe(value)}`;
}

export function listProblem(value: unknown): string | undefined {
  return Array.isArray(value) ? undefined : `must be a list, got ${describe(value)}`;
}

/** A known key that might have been meant instead of `key`, for "did you mean" hints. */
export function suggestKey(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3; // more than two edits away is no longer a typo
  for (const candidate of known) {
    const d = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best;
}

export function unknownKeyMessage(key: string, known: readonly string[]): string {
  const suggestion = suggestKey(key, known);
  return suggestion === undefined ? 'unknown key' : `unknown key (did you mean "${suggestion}"?)`;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/** A schema-qualified name from the file; `what` says what was expected (`a table name such as ...`). */
export function parseName(
  value: unknown,
  path: KeyPath,
  problems: Problems,
  what: string,
): QualifiedName | undefined {
  if (typeof value !== 'string') {
    problems.add(path, `must be ${what}, got ${describe(value)}`);
    return undefined;
  }
  try {
    return parseQualifiedName(value);
  } catch (error) {
    problems.add(path, `${describe(value)}: ${(error as Error).message}`);
    return undefined;
  }
}

/** Each key of `entry` that is not among `known` is a problem, with the keys it may have meant. */
export function checkKeys(
  entry: Record<string, unknown>,
  known: readonly string[],
  path: KeyPath,
  problems: Problems,
) {
  for (const key of Object.keys(entry)) {
    if (!known.includes(key)) problems.add([...path, key], unknownKeyMessage(key, known));
  }
}
