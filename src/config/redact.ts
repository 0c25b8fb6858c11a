/**
 * Keeping passwords out of messages, logs and status (SPEC §5). Everything that shows a connection
 * string to a person goes through `redactUrl`; messages that may quote a password some other way (a
 * driver error, a stack) go through `redactSecrets` with the secrets of the config.
 */

import type { Config } from './types.js';

const MASK = '***';

/**
 * A connection URL with its password replaced by `***`, also a `password=` query parameter. Tolerant of
 * input that does not parse as a URL (that is when it gets echoed in an error): then everything
 * between the first `:` and the last `@` of the authority is masked, erring towards hiding too much.
 */
export function redactUrl(url: string): string {
  if (typeof url !== 'string') return MASK;
  // Without `//`, `new URL` reads `user:password@host` as scheme `user:` and a path: mask it by hand.
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) return redactKeyValues(redactAuthority(url));
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = MASK;
    return redactKeyValues(parsed.toString());
  } catch {
    return redactKeyValues(redactAuthority(url));
  }
}

/** `text` with every postgres:// or postgresql:// URL in it redacted. */
export function redactUrlsIn(text: string): string {
  return text.replace(/postgres(?:ql)?:\/\/[^\s"'`<>]*/gi, (url) => redactUrl(url));
}

/** `text` with each occurrence of each (non-empty) secret replaced by `***`. */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  // Longest first, so that a secret containing another one is masked whole.
  const sorted = [...new Set(secrets)].filter((s) => s !== '').sort((a, b) => b.length - a.length);
  let result = text;
  for (const secret of sorted) result = result.split(secret).join(MASK);
  return result;
}

/**
 * The passwords in the config's URLs, in every form a message may quote them: as written in the URL
 * (percent-encoded) and decoded. For `redactSecrets`.
 */
export function configSecrets(config: Pick<Config, 'source' | 'targets'>): string[] {
  const secrets: string[] = [];
  for (const url of [config.source.url, ...config.targets.map((t) => t.url)]) {
    for (const raw of urlPasswords(url)) {
      secrets.push(raw);
      try {
        secrets.push(decodeURIComponent(raw));
      } catch {
        // A malformed escape: the raw form is all a message can contain.
      }
    }
  }
  return [...new Set(secrets)].filter((s) => s !== '');
}

function urlPasswords(url: string): string[] {
  try {
    const parsed = new URL(url);
    const fromQuery = parsed.searchParams.getAll('password');
    return [parsed.password, ...fromQuery.map((p) => encodeURIComponent(p)), ...fromQuery];
  } catch {
    return [];
  }
}

/** Mask the userinfo password of something URL-like that `new URL` refused. */
function redactAuthority(text: string): string {
  const scheme = text.indexOf('://');
  const start = scheme >= 0 ? scheme + 3 : 0;
  // The last `@`: a password may itself contain `@`, `/` or `:` when someone forgot to encode it.
  const at = text.lastIndexOf('@');
  if (at < start) return text;
  const colon = text.indexOf(':', start);
  if (colon < 0 || colon > at) return text;
  return `${text.slice(0, colon + 1)}${MASK}${text.slice(at)}`;
}

/** `password=...` in a query string or a key/value connection string. */
function redactKeyValues(text: string): string {
  return text.replace(/(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&#]*)/gi, `$1${MASK}`);
}
