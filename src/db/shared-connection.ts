/**
 * Connections that several users share, each through a lease of its own: the workers' source sessions
 * (src/worker/worker-session.ts). A fresh backend reads the catalog for its first statements, about
 * 2,500 blocks, and counts against the source's max_connections: twenty targets took twenty such
 * backends for statements that keep each one idle most of the time.
 *
 * A lease is a pg.Client to its user. Its statements take turns with the other leases' on the one
 * connection, in the order asked, each alone; a transaction or a pipeline (holdAlone) keeps the
 * connection for the lease until it ends. While a lease holds the connection, its own further statements
 * go straight on, as on a connection of its own: a lease's statements never wait for each other, only
 * for other leases' (so a lease may overlap its own statements, as a worker's read ahead does).
 *
 * A connection that fails (its 'error' or 'end') is handed out no more; it closes once its last lease
 * ends. Every lease's statements then fail as on a lost connection of their own, and their users open
 * new sessions as they would.
 */
import type pg from 'pg';

/** Whose turn it is on one connection. */
class Turns {
  private holder: object | undefined;
  private depth = 0;
  private readonly waiting: { lease: object; go: () => void }[] = [];

  /** Undefined when `lease` holds the connection now; else a promise of its turn. */
  take(lease: object): Promise<void> | undefined {
    if (this.holder === undefined || this.holder === lease) {
      this.holder = lease;
      this.depth++;
      return undefined;
    }
    return new Promise((go) => this.waiting.push({ lease, go }));
  }

  give(lease: object): void {
    if (this.holder !== lease) return;
    if (--this.depth > 0) return;
    this.holder = undefined;
    const next = this.waiting.shift();
    if (next === undefined) return;
    // Its own statements queued behind another's: they all go now, in the order asked.
    this.holder = next.lease;
    this.depth = 1;
    for (let i = this.waiting.length - 1; i >= 0; i--) {
      const also = this.waiting[i]!;
      if (also.lease !== next.lease) continue;
      this.waiting.splice(i, 1);
      this.depth++;
      queueMicrotask(also.go);
    }
    next.go();
  }
}

class SharedConnection {
  users = 0;
  broken = false;
  readonly turns = new Turns();

  /** `broke`: called once when it breaks (fails to open, errs or ends). */
  constructor(
    readonly opening: Promise<pg.Client>,
    broke: (shared: SharedConnection) => void,
  ) {
    const breaks = (): void => {
      if (this.broken) return;
      this.broken = true;
      broke(this);
    };
    opening.then((client) => {
      client.on('error', breaks);
      client.on('end', breaks);
    }, breaks);
  }
}

/** Each lease's connection and turns. */
const leases = new WeakMap<object, { shared: SharedConnection; client: pg.Client }>();

export class SharedConnections {
  private readonly connections: SharedConnection[] = [];
  /** Connections of the same making that are one user's alone (own()). */
  private readonly owned = new Set<Promise<pg.Client>>();
  private closed = false;

  /**
   * `open` makes a connection ready for any user (joined, set up); each serves up to `usersEach` leases
   * at once.
   */
  constructor(
    private readonly open: () => Promise<pg.Client>,
    private readonly usersEach: number,
  ) {}

  /** The connections held, open or opening, broken ones still leased included. */
  get size(): number {
    return this.connections.length;
  }

  /** Open connections for `users` leases now, so that their backends are ready when leased. */
  openAhead(users: number): void {
    for (let n = Math.ceil(users / this.usersEach) - this.connections.length; n > 0; n--) this.add();
  }

  /** A lease of a connection with room; end() ends the lease, and the connection once it is unused. */
  async lease(): Promise<pg.Client> {
    if (this.closed) throw new Error('the shared connections are closed');
    const shared = this.connections.find((c) => !c.broken && c.users < this.usersEach) ?? this.add();
    shared.users++;
    let client: pg.Client;
    try {
      client = await shared.opening;
    } catch (thrown) {
      this.release(shared);
      throw thrown;
    }
    const lease = leaseOf(client, shared, () => this.release(shared));
    leases.set(lease, { shared, client });
    return lease;
  }

  /**
   * A connection made as the shared ones are, but the caller's alone: a second reader of the source
   * beside its lease. Its end() closes it; so does close().
   */
  async own(): Promise<pg.Client> {
    if (this.closed) throw new Error('the shared connections are closed');
    const opening = this.open();
    this.owned.add(opening);
    try {
      const client = await opening;
      client.once('end', () => this.owned.delete(opening));
      return client;
    } catch (thrown) {
      this.owned.delete(opening);
      throw thrown;
    }
  }

  /** Close every connection; leases still held, and owned connections, fail as on a lost connection. */
  async close(): Promise<void> {
    this.closed = true;
    const owned = [...this.owned];
    this.owned.clear();
    await Promise.all([...this.connections.splice(0).map((c) => c.opening), ...owned].map(closeQuietly));
  }

  private add(): SharedConnection {
    const shared = new SharedConnection(this.open(), (broken) => this.dropIfUnused(broken));
    this.connections.push(shared);
    return shared;
  }

  private release(shared: SharedConnection): void {
    shared.users--;
    this.dropIfUnused(shared);
  }

  /** A broken connection goes once no lease holds it: whichever of the two comes last drops it. */
  private dropIfUnused(shared: SharedConnection): void {
    if (shared.users > 0 || !shared.broken) return;
    const at = this.connections.indexOf(shared);
    if (at < 0) return;
    this.connections.splice(at, 1);
    void closeQuietly(shared.opening);
  }
}

/** Close a connection whatever state it is in: opening, open, failed or closed already. */
function closeQuietly(opening: Promise<pg.Client>): Promise<void> {
  return opening.then((client) => client.end()).catch(() => undefined);
}

/**
 * Run `work` with `client` held alone: a transaction, or statements pipelined in one round trip. On a
 * lease, no other lease's statement comes between; `work` gets the connection itself (pipeline mode is
 * set on it). On any other client, it is that client.
 */
export async function holdAlone<T>(
  client: pg.ClientBase,
  work: (connection: pg.ClientBase) => Promise<T>,
): Promise<T> {
  const leased = leases.get(client);
  if (leased === undefined) return work(client);
  const { shared, client: connection } = leased;
  const wait = shared.turns.take(client);
  if (wait !== undefined) await wait;
  try {
    return await work(connection);
  } finally {
    shared.turns.give(client);
  }
}

/** The lease: the connection, with statements that take turns and an end() that ends only the lease. */
function leaseOf(client: pg.Client, shared: SharedConnection, release: () => void): pg.Client {
  let ended = false;
  const lease: pg.Client = new Proxy(client, {
    get(target, property) {
      if (property === 'query') return query;
      if (property === 'end') return end;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  const query = async (...args: unknown[]): Promise<unknown> => {
    if (ended)
      throw Object.assign(new Error('this lease of a shared connection has ended'), { code: 'ECONNRESET' });
    const wait = shared.turns.take(lease);
    if (wait !== undefined) await wait;
    try {
      return await (client.query as (...a: unknown[]) => Promise<unknown>)(...args);
    } finally {
      shared.turns.give(lease);
    }
  };
  const end = (): Promise<void> => {
    if (!ended) {
      ended = true;
      release();
    }
    return Promise.resolve();
  };
  return lease;
}
