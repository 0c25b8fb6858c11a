/**
 * The HTTP face of a daemon: /metrics (Prometheus text), /healthz (the process runs) and /readyz (the
 * source answers). Plain node:http: three routes need no framework.
 */
import { createServer, type Server } from 'node:http';
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
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    const { port } = server.address() as AddressInfo;
    const host =
      this.options.host === '0.0.0.0' || this.options.host === '::' ? '127.0.0.1' : this.options.host;
    return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
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
