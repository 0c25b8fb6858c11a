/** Connections to the source and the targets, always under trigsync's application_name. */
import type { Socket } from 'node:net';

import pg from 'pg';

import type { Config } from '../config/types.js';
import { classifyError, coerceError, TrigsyncError } from '../failure/errors.js';
import { announcedPid, refuseTransactionPooler } from './pooler.js';
import { holdAlone } from './shared-connection.js';

export interface ConnectOptions {
  applicationName: string;
  /** Give up connecting after this long (ms). */
  connectTimeoutMs?: number;
  /** Give up the connection when a query in flight hears nothing from the server this long (ms). */
  silenceTimeoutMs?: number;
  /**
   * The database as errors name it: `source` or `target NAME` (sourceDatabase, targetDatabase). Given,
   * a failure to connect and a connection that breaks under a query throw a DatabaseConnectionError
   * that names it; an error of the statement itself (a constraint, a missing table) is left as it is.
   */
  database?: string;
}

/** How errors name the source. */
export const sourceDatabase = 'source';

/** How errors name a target. */
export function targetDatabase(name: string): string {
  return `target ${name}`;
}

/**
 * A connection to a named database could not be opened, or broke. The message names the database;
 * kind and `code` (the SQLSTATE, or Node's network code) are the cause's, so the taxonomy
 * (src/failure/errors.ts) treats it as it treats the cause: a refused connection is still retried.
 */
export class DatabaseConnectionError extends TrigsyncError {
  readonly code: string | undefined;
  /** What went wrong, without the database's name. */
  readonly reason: string;
  constructor(
    readonly database: string,
    cause: unknown,
  ) {
    const reason = causeMessage(cause);
    super(`${database}: ${reason}`, classifyError(cause), { cause });
    this.reason = reason;
    const code = (cause as { code?: unknown } | null)?.code;
    this.code = typeof code === 'string' ? code : undefined;
  }
}

/**
 * The cause's message. Node reports a refused connection to a name with several addresses (localhost:
 * ::1 and 127.0.0.1) as an AggregateError without a message of its own: its parts' messages then.
 */
function causeMessage(cause: unknown): string {
  const error = coerceError(cause);
  if (error.message !== '') return error.message;
  const parts = error instanceof AggregateError ? error.errors.map((e) => coerceError(e).message) : [];
  const code = (cause as { code?: unknown }).code;
  return parts.filter((m) => m !== '').join('; ') || (typeof code === 'string' ? code : 'connection failed');
}

/** `thrown` naming `database`, when it is a connection error not named yet; else as it is. */
export function nameDatabase(database: string | undefined, thrown: unknown): unknown {
  if (database === undefined || thrown instanceof DatabaseConnectionError) return thrown;
  return classifyError(thrown) === 'connection' ? new DatabaseConnectionError(database, thrown) : thrown;
}

// int8 (change ids, counts) as a JS number: exact up to 2^53, which at 100k changes a second
// lasts millennia. Row images never pass through here as json: they are always read as text.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

export function clientConfig(url: string, options: ConnectOptions): pg.ClientConfig {
  return {
    connectionString: url,
    application_name: options.applicationName,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
    // A peer that vanishes without a FIN (a dead host, a dropped route) is noticed in minutes, not hours.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  };
}

/** What every long-lived connection of the daemon uses: its application_name, and the silence limit. */
export function daemonConnectOptions(config: Config): ConnectOptions {
  return { applicationName: config.applicationName, silenceTimeoutMs: config.apply.silenceTimeoutMs };
}

/**
 * Something opened ahead of its use (a worker's connections, while the leader installs on the source):
 * taken once, or closed by discard(). A failure to open shows when it is taken.
 */
export class Early<T> {
  private opening: Promise<T> | undefined;

  constructor(
    opening: Promise<T>,
    private readonly close: (opened: T) => Promise<void>,
  ) {
    this.opening = opening;
    // Not a rejection nobody handles: it is awaited when taken, or dropped by discard().
    this.opening.catch(() => undefined);
  }

  /** What is being opened, the first time; undefined after, or after discard(). */
  take(): Promise<T> | undefined {
    const opening = this.opening;
    this.opening = undefined;
    return opening;
  }

  /** Close it, unless it was taken. */
  discard(): void {
    void this.take()?.then(
      (opened) => this.close(opened).catch(() => undefined),
      () => undefined,
    );
  }
}

/** A connection opened ahead of its use. */
export class EarlyConnection extends Early<pg.Client> {
  constructor(open: () => Promise<pg.Client>) {
    super(open(), (client) => client.end());
  }
}

/**
 * No limit of the server's on trigsync's sessions: statement_timeout, idle_in_transaction_session_timeout,
 * idle_session_timeout (PostgreSQL 14) and transaction_timeout (17) are often set on a database or a role
 * for its applications, and would cancel every initial copy of a large table or a verify (each tried
 * again from the start, for ever), or end the sessions that rightly wait idle (the doorbell's, a quiet
 * target's). pg_dump lifts
 * the same limits. So is lock_timeout: a change waiting on a target row that an application holds
 * locked expired and went to the error queue as refused, parking the target for the data-error delay
 * (measured); native logical replication's apply waits for the lock. trigsync bounds its own waits:
 * lock_timeout where it waits on users' locks for its DDL (giving-way.ts), the silence watch on the
 * network. And READ COMMITTED unless a transaction asks for
 * more: under a default of SERIALIZABLE, the daemon's reads of the change log, which every writer
 * inserts into, would take part in the writers' serialization checks, and fail them or itself. Dates
 * and intervals in the forms node-postgres parses: under DateStyle 'SQL, DMY' it read every timestamp as
 * null. Transactions that may write where a database or role is read-only by default
 * (default_transaction_read_only, a guard for applications), as pg_dump's output sets it and as native
 * logical replication's apply writes: trigsync writes only where its config says. One round trip at
 * connect: options in the startup packet would be refused by a pgbouncer. Set only where the session's
 * server process is the one that announced itself at connect (setSessionUp).
 */
const sessionLimits = `select set_config('statement_timeout', '0', false),
  set_config('lock_timeout', '0', false),
  set_config('default_transaction_isolation', 'read committed', false),
  set_config('default_transaction_read_only', 'off', false),
  set_config('datestyle', 'ISO', false), set_config('intervalstyle', 'postgres', false),
  set_config('idle_in_transaction_session_timeout', '0', false),
  (select set_config('idle_session_timeout', '0', false)
    where current_setting('server_version_num')::int >= 140000),
  (select set_config('transaction_timeout', '0', false)
    where current_setting('server_version_num')::int >= 170000)`;

/** A client not connected yet, that an idle server's going away does not crash the process with. */
function newClient(url: string, options: ConnectOptions): pg.Client {
  const client = new pg.Client(clientConfig(url, options));
  // An idle client whose server goes away emits 'error'; without a listener that would crash the process.
  client.on('error', () => undefined);
  return client;
}

/** Open one client; the caller ends it. */
export async function connect(url: string, options: ConnectOptions): Promise<pg.Client> {
  const client = newClient(url, options);
  const { database } = options;
  try {
    await client.connect();
    await setSessionUp(client, url, options);
    if (options.silenceTimeoutMs !== undefined) watchSilence(client, options.silenceTimeoutMs);
  } catch (thrown) {
    await client.end().catch(() => undefined);
    // Whatever stops the connection from opening (refused, a password, no such database) is about it.
    throw database === undefined || thrown instanceof TrigsyncError
      ? thrown
      : new DatabaseConnectionError(database, thrown);
  }
  if (database !== undefined) nameBrokenConnection(client, database);
  return client;
}

/**
 * The session's limits, in the same round trip where the server process is the one that announced
 * itself at connect. Where it is not, something stands between (a pooler, a proxy): the limits wait
 * until refuseTransactionPooler has found that the session keeps its server process, since a pooler in
 * transaction mode would leave them to other clients' sessions.
 */
async function setSessionUp(client: pg.Client, url: string, options: ConnectOptions): Promise<void> {
  const direct = await client.query({
    text: `${sessionLimits} where pg_catalog.pg_backend_pid() = $1`,
    values: [announcedPid(client)],
  });
  if (direct.rowCount === 1) return;
  await refuseTransactionPooler(client, () => openProbe(url, options), reachedAs(url, options));
  await client.query(sessionLimits);
}

/** A bare session to `url`, for refuseTransactionPooler: connect()'s failures are named there. */
async function openProbe(url: string, options: ConnectOptions): Promise<pg.Client> {
  const probe = newClient(url, options);
  await probe.connect().catch(async (thrown: unknown) => {
    await probe.end().catch(() => undefined);
    throw thrown;
  });
  return probe;
}

/** The database as errors name it, else the URL's host, port and database, never its password. */
function reachedAs(url: string, options: ConnectOptions): string {
  if (options.database !== undefined) return options.database;
  try {
    const parsed = new URL(url);
    return `${parsed.host}${parsed.pathname}`;
  } catch {
    return 'the server';
  }
}

/** A query's rejection for a broken connection names the database (see ConnectOptions.database). */
function nameBrokenConnection(client: pg.Client, database: string): void {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  client.query = ((...args: unknown[]) => {
    const result = query(...args);
    // Only queries that return a promise: a callback's or a stream's (COPY) errors are their own.
    if (!(result instanceof Promise)) return result;
    return result.catch((thrown: unknown) => {
      throw nameDatabase(database, thrown);
    });
  }) as typeof client.query;
}

/**
 * Destroy the client's socket when a query has been waiting `silenceMs` without a byte from the server.
 * A half-open connection (the peer gone without a FIN or RST, packets black-holed) otherwise leaves the
 * query waiting until TCP keepalive gives up, over ten minutes with the kernel's defaults, and Node
 * cannot shorten its probes. Only queries that return a promise count: a COPY is a stream whose progress
 * its own pipeline sees, and it may send for minutes while the server says nothing.
 * pg keeps its socket at `connection.stream`, not a public API: checked at connect, so a pg that moves it
 * fails every connection loudly rather than losing the watch.
 */
function watchSilence(client: pg.Client, silenceMs: number): void {
  const socket = (client as unknown as { connection?: { stream?: Socket } }).connection?.stream;
  if (socket === undefined || typeof socket.destroy !== 'function') {
    throw new Error('pg.Client has no connection.stream: cannot watch for silent connections');
  }
  let heardAt = Date.now();
  let waiting = 0;
  // Heard by the bytes read, not a 'data' listener: a COPY TO (pg-copy-streams) takes the socket's one
  // listener, pg's, for its stream, and refuses a socket with another.
  let bytesHeard = socket.bytesRead;
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  client.query = ((...args: unknown[]) => {
    const result = query(...args);
    if (result instanceof Promise) {
      // Silence counts from the first query sent after an idle spell, not from the last reply.
      if (waiting++ === 0) heardAt = Date.now();
      const settled = (): void => void waiting--;
      result.then(settled, settled);
    }
    return result;
  }) as typeof client.query;
  const timer = setInterval(
    () => {
      if (socket.bytesRead !== bytesHeard) {
        bytesHeard = socket.bytesRead;
        heardAt = Date.now();
      }
      if (waiting === 0 || Date.now() - heardAt < silenceMs) return;
      clearInterval(timer);
      // ETIMEDOUT: the taxonomy (src/failure/errors.ts) counts it a connection failure, retried.
      const silent = Object.assign(
        new Error(`no answer from the server for ${silenceMs} ms: connection given up`),
        { code: 'ETIMEDOUT' },
      );
      socket.destroy(silent);
    },
    Math.min(1_000, Math.max(10, silenceMs / 4)),
  );
  timer.unref();
  socket.once('close', () => clearInterval(timer));
}

/** Run `work` with a fresh client and close it afterwards, whatever happens. */
export async function withClient<T>(
  url: string,
  options: ConnectOptions,
  work: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = await connect(url, options);
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Run `work` in a transaction on `client`: committed if it resolves, rolled back if it throws. */
export async function inTransaction<T>(client: pg.ClientBase, work: () => Promise<T>): Promise<T> {
  // A connection shared by leases is held alone until the end (shared-connection.ts).
  return holdAlone(client, async () => {
    await client.query('begin');
    try {
      const result = await work();
      await client.query('commit');
      return result;
    } catch (thrown) {
      await client.query('rollback').catch(() => undefined);
      throw thrown;
    }
  });
}
