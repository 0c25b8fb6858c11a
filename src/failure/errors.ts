/**
 * The one error taxonomy of trigsync.
 *
 * Every failure is one of three kinds, and the kind decides what happens next:
 * - `connection`: the peer was unreachable or the session broke; retry the connection until it heals.
 * - `data`: the peer answered and refused this change (constraint, missing column, bad value);
 *   park the target behind its error queue.
 * - `config`: the configuration or the installed schema is wrong; an operator must act.
 */

export type ErrorKind = 'connection' | 'data' | 'config';

/** Base class of the errors trigsync raises itself. `where` names the key, table or target concerned. */
export class TrigsyncError extends Error {
  constructor(
    message: string,
    readonly kind: ErrorKind,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A configuration problem. `problems` lists each one as `key: what is wrong`. */
export class ConfigError extends TrigsyncError {
  readonly problems: readonly string[];
  constructor(problems: string | readonly string[], options?: { cause?: unknown }) {
    const list = typeof problems === 'string' ? [problems] : problems;
    super(
      list.length === 1 ? `${list[0]}` : `invalid configuration:\n  ${list.join('\n  ')}`,
      'config',
      options,
    );
    this.problems = list;
  }
}

/**
 * A source or target server that is a standby in recovery, which takes no writes (src/db/standby.ts).
 * `connection` where it may become a primary by itself (a failover promotes it, or the address moves to
 * one): tried again with backoff; `config` for a target, which parks until then.
 */
export class ServerIsStandby extends TrigsyncError {
  constructor(role: string, setting: string, kind: ErrorKind) {
    super(
      `${role}: the server is a standby in recovery and takes no writes (a read replica's address, or ` +
        `a failover under way); point ${setting} at its primary`,
      kind,
    );
  }
}

/** Wrong command-line use: unknown command or option, missing argument. */
export class UsageError extends TrigsyncError {
  constructor(message: string) {
    super(message, 'config');
  }
}

/** Turn anything thrown into an Error, so that callers can rely on `.message`. */
export function coerceError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  if (typeof thrown === 'string') return new Error(thrown);
  try {
    return new Error(`non-error thrown: ${JSON.stringify(thrown)}`);
  } catch {
    try {
      return new Error(`non-error thrown: ${String(thrown)}`);
    } catch {
      return new Error('non-error thrown, which cannot be shown');
    }
  }
}

/** SQLSTATE class (first two characters) → kind. Anything not listed is a data error. */
const connectionClasses = new Set([
  '08', // connection exception
  '57', // operator intervention: admin_shutdown, crash_shutdown, cannot_connect_now, query_canceled
  '53', // insufficient resources: too_many_connections, out of memory, disk full
  '28', // invalid authorization (wrong password): retried until an operator fixes it
  '3D', // invalid catalog name: the database does not exist (yet)
  '40', // transaction rollback: serialization failure, deadlock: retry
  '58', // system error (I/O)
  'XX', // internal error
]);

/** Node socket errors that mean the peer is unreachable. */
const connectionCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * SQLSTATEs of other classes that a wait or a moment explains, not a change: tried again with backoff,
 * like a deadlock, and never queued as a refused change. lock_not_available: a lock_timeout expired
 * (trigsync's sessions run without one, but a statement may set it).
 */
const transientStates = new Set(['55P03']);

/** Classify an error from pg or the network. */
export function classifyError(thrown: unknown): ErrorKind {
  if (thrown instanceof TrigsyncError) return thrown.kind;
  const code = (thrown as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && connectionCodes.has(code)) return 'connection';
  const state = sqlState(thrown);
  if (state !== undefined && transientStates.has(state)) return 'connection';
  if (state !== undefined) return connectionClasses.has(state.slice(0, 2)) ? 'connection' : 'data';
  const message = coerceError(thrown).message;
  // pg raises these without a code when the socket dies under it.
  if (
    /Connection terminated|connection timeout|Client has encountered a connection error|timeout expired/i.test(
      message,
    )
  ) {
    return 'connection';
  }
  return 'data';
}

/** The SQLSTATE of a pg error, if it has one. */
export function sqlState(thrown: unknown): string | undefined {
  const code = (thrown as { code?: unknown } | null)?.code;
  // Five characters with a digit: Node's error codes (EPIPE, EBUSY) have five letters and no digit.
  return typeof code === 'string' && /^(?=.*\d)[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/**
 * A copy (`sync`, initial sync) that could not go on. The message names the table, the step and, where
 * known, the way out; kind and SQLSTATE are the cause's, so a broken connection is still retried.
 */
export class CopyFailed extends TrigsyncError {
  readonly code: string | undefined;
  constructor(message: string, cause: unknown) {
    super(message, classifyError(cause), { cause });
    this.code = sqlState(cause);
  }
}

/**
 * A user's table whose lock trigsync gave way for (src/db/giving-way.ts): a user's transaction held it
 * longer than trigsync waits. Retried, like a deadlock: its kind is `connection`'s.
 */
export class TableBusy extends TrigsyncError {
  constructor(
    readonly table: string,
    readonly wait: string,
    cause: unknown,
    /** Set once the tries are given up: how long they went on. */
    triedForMs?: number,
  ) {
    const gaveWay =
      `waited ${wait} for its lock and gave way to the transactions that held it ` +
      '(so as never to deadlock one of them)';
    super(
      triedForMs === undefined
        ? `${table}: busy: trigsync ${gaveWay}`
        : `${table}: busy for ${Math.round(triedForMs / 1000)} s: each try ${gaveWay}; ` +
            'try again when its writers are quieter',
      'connection',
      { cause },
    );
  }
}

/**
 * A change found the target's row not as it expects (src/apply/conflicts.ts), under the `park` policy:
 * a data error whose culprit is known without halving.
 */
export class ConflictError extends TrigsyncError {
  constructor(message: string) {
    super(message, 'data');
  }
}
