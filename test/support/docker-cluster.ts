// TRIGSYNC_TEST_PG=docker: each cluster is a container from TRIGSYNC_TEST_PG_IMAGE (default postgres:18),
// started by @testcontainers/postgresql. Kept small and not run by default (it needs a Docker engine).
// Differences from embedded clusters: the data lives in the container (dataDir only describes it), the
// host port may change across stop/start, and if vitest dies testcontainers' Ryuk removes the containers
// (the watchdog only handles local postmasters).
import { PostgreSqlContainer, type StartedPostgreSqlContainer } from '@testcontainers/postgresql';
import { randomBytes } from 'node:crypto';
import { getContainerRuntimeClient } from 'testcontainers';
import { BaseCluster, type ClusterOptions } from './cluster.js';
import { waitFor } from './wait.js';

const IMAGE = process.env['TRIGSYNC_TEST_PG_IMAGE'] ?? 'postgres:18';
const SETTINGS = ['fsync=off', 'full_page_writes=off', 'max_connections=200'];

export class DockerCluster extends BaseCluster {
  readonly kind = 'docker';
  readonly logFile = null;
  #container: StartedPostgreSqlContainer | undefined;
  #host = '127.0.0.1';
  #port = 0;
  #serverVersion = '';
  readonly #settings: readonly string[];

  constructor(options: ClusterOptions) {
    super({
      name: options.name,
      user: options.user ?? 'postgres',
      password: options.password ?? randomBytes(12).toString('base64url'),
    });
    this.#settings = [...SETTINGS, ...(options.settings ?? [])];
  }

  get host(): string {
    return this.#host;
  }

  get port(): number {
    return this.#port;
  }

  get dataDir(): string {
    return `docker:${this.#container?.getId().slice(0, 12) ?? this.name}:/var/lib/postgresql`;
  }

  get serverVersion(): string {
    return this.#serverVersion;
  }

  async start(): Promise<void> {
    if (this.#container === undefined) {
      this.#container = await new PostgreSqlContainer(IMAGE)
        .withUsername(this.user)
        .withPassword(this.password)
        .withDatabase('postgres')
        .withCommand(['postgres', ...this.#settings.flatMap((s) => ['-c', s])])
        .start();
    } else if (!(await this.isRunning())) {
      const { container } = await getContainerRuntimeClient();
      await container.start(container.getById(this.#container.getId()));
    }
    await this.readAddress();
    const rows = await waitFor(() => this.query<{ server_version: string }>('show server_version'), {
      what: `cluster "${this.name}" to accept connections`,
      timeoutMs: 60_000,
    });
    this.#serverVersion = rows[0]?.server_version ?? '';
  }

  async stop(): Promise<void> {
    if (!(await this.isRunning()) || this.#container === undefined) return;
    // The image's stop signal is SIGINT, a fast shutdown; docker stop returns once the container exited.
    const { container } = await getContainerRuntimeClient();
    await container.stop(container.getById(this.#container.getId()), { timeout: 30 });
  }

  async kill(): Promise<void> {
    if (!(await this.isRunning()) || this.#container === undefined) return;
    const { container } = await getContainerRuntimeClient();
    await container.getById(this.#container.getId()).kill({ signal: 'SIGKILL' });
  }

  async destroy(): Promise<void> {
    await this.#container?.stop({ remove: true, removeVolumes: true }).catch(() => undefined);
    this.#container = undefined;
  }

  async isRunning(): Promise<boolean> {
    if (this.#container === undefined) return false;
    const { container } = await getContainerRuntimeClient();
    const info = await container.inspect(container.getById(this.#container.getId()));
    return info.State.Running;
  }

  async logTail(lines = 40): Promise<string> {
    if (this.#container === undefined) return '';
    const stream = await this.#container.logs({ tail: lines });
    let text = '';
    for await (const chunk of stream) text += String(chunk);
    return text;
  }

  /** Docker maps a new host port when a stopped container starts again. */
  private async readAddress(): Promise<void> {
    if (this.#container === undefined) return;
    const { container } = await getContainerRuntimeClient();
    const info = await container.inspect(container.getById(this.#container.getId()));
    const binding = info.NetworkSettings.Ports['5432/tcp']?.[0];
    this.#host = this.#container.getHost();
    this.#port = binding ? Number(binding.HostPort) : this.#container.getPort();
  }
}
