/**
 * The HTTP face of a daemon: /metrics (Prometheus text), /healthz (the process runs) and /readyz (the
 * source answers). Plain node:http: three routes need no framework.
 */
import { createServer, get, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import type { Registry } from 'prom-client';

export interface MetricsServerOptions {
  host: string;
  port: number;
  registry: Registry;
  /** Whether /readyz says ready, and if not, why. */
  readiness: () => { ready: boolean; reason?: string };
}

export class MetricsServer {
  private server: Server | undefined;

  constructor(private readonly options: MetricsServerOptions) {}

  /** Listen; resolves with the base URL (the port resolved when 0 was asked). */
  async start(): Promise<string> {
    const server = createServer((request, response) => {
      this.answer(request.url ?? '/')
        .then(({ status, type, body }) => {
          response.writeHead(status, { 'content-type': type }).end(body);
        })
        .catch((thrown: unknown) => {
          response.writeHead(500, { 'content-type': 'text/plain' }).end(String(thrown));
        });
    });
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.options.port, this.options.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (thrown) {
      if ((thrown as { code?: unknown }).code !== 'EADDRINUSE') throw thrown;
      const taken = new Error(await portTaken(this.options.host, this.options.port), { cause: thrown });
      throw Object.assign(taken, { code: 'EADDRINUSE' });
    }
    this.server = server;
    const { port } = server.address() as AddressInfo;
    return baseUrl(this.options.host, port);
  }

  private async answer(url: string): Promise<{ status: number; type: string; body: string }> {
    const path = url.split('?')[0];
    const text = 'text/plain; charset=utf-8';
    if (path === '/metrics') {
      const { registry } = this.options;
      return { status: 200, type: registry.contentType, body: await registry.metrics() };
    }
    if (path === '/healthz') return { status: 200, type: text, body: 'ok\n' };
    if (path === '/readyz') {
      const { ready, reason } = this.options.readiness();
      return ready
        ? { status: 200, type: text, body: 'ready\n' }
        : { status: 503, type: text, body: `not ready: ${reason ?? 'unknown'}\n` };
    }
    return { status: 404, type: text, body: 'not found: try /metrics, /healthz or /readyz\n' };
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** The URL of a server listening on `host` (every address: this host's loopback). */
function baseUrl(host: string, port: number): string {
  const local = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return `http://${local.includes(':') ? `[${local}]` : local}:${port}`;
}

/** How long a port's holder has to answer /metrics before it counts as another program. */
const probeTimeoutMs = 2_000;

/**
 * Why the port is taken: the holder's /metrics says whether it is a trigsync daemon (the usual cause: a
 * second `start` on one host), and if so whether it leads and for which targets.
 */
async function portTaken(host: string, port: number): Promise<string> {
  const where = `metrics port ${port} on ${host}`;
  const metrics = (await fetchText(`${baseUrl(host, port)}/metrics`)) ?? '';
  const leader = /^trigsync_leader (\S+)$/m.exec(metrics)?.[1];
  if (leader === undefined)
    return `${where} is taken by another program: free the port, or set another metrics.port`;
  const labels = metrics.matchAll(/^trigsync_apply_errors_total\{[^}]*target="([^"]*)"/gm);
  const targets = [...new Set([...labels].map((m) => m[1]))];
  const of = targets.length === 0 ? 'no targets' : `targets ${targets.join(', ')}`;
  const role = Number(leader) === 1 ? `the leader, applying to ${of}` : `standing by, for ${of}`;
  return (
    `${where} is taken by another trigsync daemon (${role}): stop that daemon, or give this one another ` +
    'metrics.port (then, on the same source and group, it stands by while the other leads)'
  );
}

/** The body of a 200 answer, or undefined: no answer in time, not HTTP, another status. */
function fetchText(url: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const request = get(url, { timeout: probeTimeoutMs }, (response) => {
      if (response.statusCode !== 200) {
        response.resume();
        resolve(undefined);
        return;
      }
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve(body));
      response.on('error', () => resolve(undefined));
    });
    request.on('timeout', () => request.destroy());
    request.on('error', () => resolve(undefined));
  });
}
