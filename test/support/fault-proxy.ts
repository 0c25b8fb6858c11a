/**
 * A TCP proxy between the daemon and one server, in the test process, that the test turns faulty: it
 * delays every packet, cuts every connection, black-holes the open connections for good (half-open), or
 * holds all traffic the way a network partition does (each side's socket stays open and hears nothing)
 * until it heals, when the held bytes go on in order, as TCP retransmission would deliver them.
 */
import net from 'node:net';

interface Link {
  client: net.Socket;
  server: net.Socket;
  /** Drops every byte from now on, both ways, and never tells either side. */
  blackHoled?: boolean;
}

export class FaultProxy {
  readonly #listener: net.Server;
  readonly #links = new Set<Link>();
  #latencyMs = 0;
  #held: (() => void)[] | undefined;

  private constructor(
    listener: net.Server,
    readonly upstream: { host: string; port: number },
  ) {
    this.#listener = listener;
  }

  /** A proxy on a free local port in front of `url`'s server. */
  static async start(url: string): Promise<FaultProxy> {
    const parsed = new URL(url);
    const listener = net.createServer();
    const proxy = new FaultProxy(listener, { host: parsed.hostname, port: Number(parsed.port) });
    listener.on('connection', (client) => proxy.#accept(client));
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen(0, '127.0.0.1', () => resolve());
    });
    return proxy;
  }

  get port(): number {
    return (this.#listener.address() as net.AddressInfo).port;
  }

  /** `url` with its host and port replaced by the proxy's. */
  url(url: string): string {
    const parsed = new URL(url);
    parsed.hostname = '127.0.0.1';
    parsed.port = String(this.port);
    return parsed.toString();
  }

  /** Delay every chunk, each way, by this much (0: none). */
  setLatency(ms: number): void {
    this.#latencyMs = ms;
  }

  /** Reset every open connection, as a dropped route or a restarted middlebox would. */
  cut(): number {
    const cut = this.#links.size;
    for (const link of this.#links) {
      link.client.resetAndDestroy();
      link.server.resetAndDestroy();
    }
    this.#links.clear();
    return cut;
  }

  /**
   * Drop every byte of the connections open now, both ways and for good, without closing them: each
   * side's socket stays open and hears nothing, as when the peer's host dies or a NAT entry expires.
   * New connections work. Returns how many connections it hit.
   */
  blackHole(): number {
    for (const link of this.#links) link.blackHoled = true;
    return this.#links.size;
  }

  /** Hold all traffic, of open connections and new ones, until `heal()`. */
  partition(): void {
    this.#held ??= [];
  }

  /** Deliver what was held, in order, and forward as before. */
  heal(): void {
    const held = this.#held ?? [];
    this.#held = undefined;
    for (const send of held) send();
  }

  async close(): Promise<void> {
    this.heal();
    this.cut();
    await new Promise<void>((resolve) => this.#listener.close(() => resolve()));
  }

  #accept(client: net.Socket): void {
    const server = net.connect(this.upstream.port, this.upstream.host);
    const link: Link = { client, server };
    this.#links.add(link);
    const drop = (): void => {
      this.#links.delete(link);
      client.destroy();
      server.destroy();
    };
    for (const socket of [client, server]) {
      socket.on('error', drop);
      socket.on('close', drop);
    }
    this.#forward(link, client, server);
    this.#forward(link, server, client);
  }

  /** Copy `from` to `to`, through the latency and the partition, keeping the order of the chunks. */
  #forward(link: Link, from: net.Socket, to: net.Socket): void {
    // Chunks wait in one queue per direction, so that a delay never reorders them.
    let queue = Promise.resolve();
    from.on('data', (chunk: Buffer) => {
      const latency = this.#latencyMs;
      queue = queue.then(async () => {
        if (latency > 0) await new Promise((resolve) => setTimeout(resolve, latency));
        await this.#passed();
        if (!to.destroyed && link.blackHoled !== true) to.write(chunk);
      });
    });
  }

  /** Resolves at once, or when a partition heals. */
  #passed(): Promise<void> {
    const held = this.#held;
    if (held === undefined) return Promise.resolve();
    return new Promise((resolve) => held.push(resolve));
  }
}
