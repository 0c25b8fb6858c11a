/**
 * A connection pooler in the test process, as PgBouncer pools: in `transaction` mode a client's session
 * borrows a server connection for each transaction and gives it back when the server is idle again, so
 * the next transaction of the same session, or of another, may run on another server process and finds
 * the last one's session state (a SET, a LISTEN, a session advisory lock) wherever it was left. In
 * `session` mode a client keeps one server connection for as long as it is connected. Either way the
 * client is told a process id and cancel key of the pooler's own, not the server's.
 *
 * Just the protocol a pooler needs: the client's startup is answered without authentication, and server
 * connections are opened by node-postgres (which authenticates) and then taken over byte for byte.
 */
import { randomInt } from 'node:crypto';
import net from 'node:net';

import pg from 'pg';

export type PoolMode = 'transaction' | 'session';

/** One server connection, taken over from the node-postgres client that opened it. */
interface ServerConnection {
  socket: net.Socket;
  /** The client it serves now, if any. */
  client?: ClientSession | undefined;
  /** Queries and Syncs sent and not yet answered by a ReadyForQuery. */
  pending: number;
  /** An extended-protocol message sent since the last Sync: the session is mid-request. */
  unsynced: boolean;
  /** Bytes received not yet split into messages. */
  buffered: Buffer;
}

interface ClientSession {
  socket: net.Socket;
  applicationName: string;
  server?: ServerConnection | undefined;
  /** Messages received while a server connection was being found. */
  waiting: Buffer[];
  connecting: boolean;
}

const sslRequestCode = 80877103;
const gssRequestCode = 80877104;
const cancelRequestCode = 80877102;

export class TestPooler {
  readonly #listener: net.Server;
  readonly #idle: ServerConnection[] = [];
  readonly #all = new Set<ServerConnection>();
  readonly #clients = new Set<net.Socket>();

  private constructor(
    listener: net.Server,
    private readonly upstream: string,
    readonly mode: PoolMode,
  ) {
    this.#listener = listener;
  }

  /** A pooler on a free local port in front of `url`'s database. */
  static async start(url: string, mode: PoolMode): Promise<TestPooler> {
    const listener = net.createServer();
    const pooler = new TestPooler(listener, url, mode);
    listener.on('connection', (socket) => pooler.#accept(socket));
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen(0, '127.0.0.1', () => resolve());
    });
    return pooler;
  }

  /** The upstream URL through the pooler. */
  get url(): string {
    const parsed = new URL(this.upstream);
    parsed.hostname = '127.0.0.1';
    parsed.port = String((this.#listener.address() as net.AddressInfo).port);
    return parsed.toString();
  }

  async close(): Promise<void> {
    for (const socket of this.#clients) socket.destroy();
    for (const server of this.#all) server.socket.destroy();
    await new Promise<void>((resolve) => this.#listener.close(() => resolve()));
  }

  #accept(socket: net.Socket): void {
    this.#clients.add(socket);
    // Messages go on one by one: without this, Nagle's algorithm holds each behind the last's ACK.
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    let buffered = Buffer.alloc(0);
    let session: ClientSession | undefined;
    socket.on('close', () => {
      this.#clients.delete(socket);
      if (session !== undefined) this.#release(session, true);
    });
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (session === undefined) {
        // The startup packet: a length, a code, and for a startup the parameters.
        if (buffered.length < 8 || buffered.length < buffered.readInt32BE(0)) return;
        const length = buffered.readInt32BE(0);
        const code = buffered.readInt32BE(4);
        const packet = buffered.subarray(8, length);
        buffered = buffered.subarray(length);
        if (code === sslRequestCode || code === gssRequestCode) {
          socket.write('N');
          return;
        }
        if (code === cancelRequestCode) {
          socket.destroy();
          return;
        }
        session = {
          socket,
          applicationName: startupParameter(packet, 'application_name'),
          waiting: [],
          connecting: false,
        };
        socket.write(greeting());
      }
      for (;;) {
        if (buffered.length < 5 || buffered.length < 1 + buffered.readInt32BE(1)) return;
        const size = 1 + buffered.readInt32BE(1);
        const message = buffered.subarray(0, size);
        buffered = buffered.subarray(size);
        if (message[0] === 0x58) {
          // Terminate: the client's end, not the server connection's.
          socket.end();
          return;
        }
        this.#fromClient(session, message);
      }
    });
  }

  #fromClient(session: ClientSession, message: Buffer): void {
    session.waiting.push(message);
    if (session.server !== undefined) {
      this.#flush(session);
      return;
    }
    if (session.connecting) return;
    const idle = this.#idle.pop();
    if (idle !== undefined) {
      this.#attach(session, idle);
      return;
    }
    session.connecting = true;
    this.#open(session.applicationName).then(
      (server) => {
        session.connecting = false;
        if (session.socket.destroyed) this.#idle.push(server);
        else this.#attach(session, server);
      },
      () => session.socket.destroy(),
    );
  }

  #attach(session: ClientSession, server: ServerConnection): void {
    session.server = server;
    server.client = session;
    this.#flush(session);
  }

  #flush(session: ClientSession): void {
    const server = session.server!;
    for (const message of session.waiting) {
      // A simple query and a Sync each end in one ReadyForQuery.
      if (message[0] === 0x51 || message[0] === 0x53) server.pending++;
      server.unsynced = message[0] !== 0x51 && message[0] !== 0x53 && message[0] !== 0x48;
      server.socket.write(message);
    }
    session.waiting = [];
  }

  /** The session's server connection back to the pool: when idle in transaction mode, or at its end. */
  #release(session: ClientSession, ended: boolean): void {
    const server = session.server;
    if (server === undefined) return;
    session.server = undefined;
    server.client = undefined;
    // A client gone mid-transaction leaves a server connection nobody can finish: dropped.
    if (ended && server.pending > 0) {
      this.#all.delete(server);
      server.socket.destroy();
      return;
    }
    // One of session mode keeps its client's session state: reset first, as PgBouncer's
    // server_reset_query does, and pooled once the reset is answered (#fromServer).
    if (this.mode === 'session') {
      server.pending++;
      server.socket.write(message(0x51, Buffer.from('discard all\0')));
      return;
    }
    this.#idle.push(server);
  }

  async #open(applicationName: string): Promise<ServerConnection> {
    const client = new pg.Client({ connectionString: this.upstream, application_name: applicationName });
    client.on('error', () => undefined);
    await client.connect();
    // node-postgres keeps its socket here; from now on its bytes are the pooler's.
    const socket = (client as unknown as { connection: { stream: net.Socket } }).connection.stream;
    socket.removeAllListeners('data');
    socket.setNoDelay(true);
    const server: ServerConnection = { socket, pending: 0, unsynced: false, buffered: Buffer.alloc(0) };
    this.#all.add(server);
    socket.on('close', () => {
      this.#all.delete(server);
      const at = this.#idle.indexOf(server);
      if (at >= 0) this.#idle.splice(at, 1);
      server.client?.socket.destroy();
    });
    socket.on('data', (chunk: Buffer) => this.#fromServer(server, chunk));
    return server;
  }

  #fromServer(server: ServerConnection, chunk: Buffer): void {
    server.buffered = Buffer.concat([server.buffered, chunk]);
    for (;;) {
      const buffered = server.buffered;
      if (buffered.length < 5 || buffered.length < 1 + buffered.readInt32BE(1)) return;
      const size = 1 + buffered.readInt32BE(1);
      const message = buffered.subarray(0, size);
      server.buffered = buffered.subarray(size);
      const session = server.client;
      if (session === undefined) {
        // The answer to a reset: the connection is pooled. A notification on a server connection
        // nobody holds reaches nobody, as in PgBouncer.
        if (message[0] === 0x5a && --server.pending === 0) this.#idle.push(server);
        continue;
      }
      session.socket.write(message);
      if (message[0] !== 0x5a) continue;
      server.pending--;
      // ReadyForQuery, idle ('I'), nothing else asked: in transaction mode the connection goes back.
      const idle = message[5] === 0x49 && server.pending === 0 && !server.unsynced;
      if (idle && this.mode === 'transaction') this.#release(session, false);
    }
  }
}

/** A startup parameter's value, '' if absent. */
function startupParameter(packet: Buffer, name: string): string {
  const parts = packet.toString('utf8').split('\0');
  for (let i = 0; i + 1 < parts.length; i += 2) if (parts[i] === name) return parts[i + 1]!;
  return '';
}

/** Authentication ok, the parameters node-postgres reads, a key of the pooler's own, ready. */
function greeting(): Buffer {
  const messages = [message(0x52, int32(0))];
  for (const [name, value] of [
    ['client_encoding', 'UTF8'],
    ['standard_conforming_strings', 'on'],
    ['integer_datetimes', 'on'],
  ] as const) {
    messages.push(message(0x53, Buffer.from(`${name}\0${value}\0`)));
  }
  messages.push(
    message(0x4b, Buffer.concat([int32(randomInt(1, 2 ** 31 - 1)), int32(randomInt(1, 2 ** 31 - 1))])),
  );
  messages.push(message(0x5a, Buffer.from('I')));
  return Buffer.concat(messages);
}

function message(type: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([type]), int32(body.length + 4), body]);
}

function int32(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeInt32BE(value);
  return buffer;
}
