/**
 * The daemon: serves /metrics, checks the config against the source, then stands for leader of its
 * group (src/daemon/leadership.ts). Each term as leader installs what is missing (only the leader's
 * config shapes the source: a standby with a stale config must not drop triggers; another group's
 * tables and targets are left as they are) and runs the listener, the pruner (one group's prunes at a
 * time: src/changelog/pruner.ts) and one worker per target of its group. Leader or not, it samples the source's status for the metrics and
 * /readyz.
 *
 * Starts in dependency order and stops in reverse; stop lets each worker finish (commit or roll back)
 * the batch in flight before the leader's lock is released.
 */
import type pg from 'pg';

import { SharedLog, type SharedLogCounts } from '../apply/shared-log.js';
import { TargetWorker } from '../worker/worker.js';
import { EarlySessions, StartConnections, workerSourceConnections } from '../worker/early-session.js';
import { sourceOrigin } from '../capture/install.js';
import { CaptureWatcher } from '../capture/capture-watcher.js';
import { assertSchemaKnown, latestVersion } from '../capture/migrations.js';
import { installedAsConfigured } from '../capture/install-digest.js';
import { describeSourceTables, type SourceTables } from '../capture/source-tables.js';
import type { Config } from '../config/types.js';
import { connect, daemonConnectOptions, EarlyConnection, sourceDatabase } from '../db/connect.js';
import { assertPrimary } from '../db/standby.js';
import type { TermFence } from '../db/term-fence.js';
import type { SharedConnections } from '../db/shared-connection.js';
import { classifyError, coerceError, ConfigError } from '../failure/errors.js';
import { TrigsyncEvents } from '../lib/events.js';
import type { Logger } from '../lib/logger.js';
import { RetryLoop, type Runnable } from '../lib/runnable.js';
import { installSource } from '../operator/install-source.js';
import { requestSync } from '../sync/requests.js';
import { LogListener } from './listener.js';
import { LogPruner } from '../changelog/pruner.js';
import { Metrics } from '../metrics/metrics.js';
import { MetricsServer } from '../metrics/server.js';
import { Leadership } from './leadership.js';
import { StatusSampler } from './status-sampler.js';
import { logDrains, logInstall, readSourceFacts, type SourceFacts } from './source-facts.js';

export class Daemon {
  readonly events = new TrigsyncEvents();
  readonly metrics: Metrics;
  /** Base URL of /metrics, /healthz and /readyz once started; undefined when metrics are disabled. */
  metricsUrl: string | undefined;
  private readonly server: MetricsServer | undefined;
  private readonly sampler: StatusSampler;
  private leadership: Leadership | undefined;
  private workers: TargetWorker[] = [];
  /** The current term's shared reading of the log; its counts show what sharing saved. */
  private sharedLog: SharedLog | undefined;
  /** The workers' source connections of the term (src/worker/early-session.ts). */
  private sourceConnections: SharedConnections | undefined;
  private termParts: Runnable[] = [];
  private readonly stopRequested = new AbortController();
  private failWith!: (failure: Error) => void;
  /** Resolves with the error that ended the daemon on its own (a configuration problem found later). */
  readonly failed = new Promise<Error>((resolve) => {
    this.failWith = resolve;
  });
  private started: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  /**
   * The check's source connection and its description of the tables, kept for the install when this
   * daemon leads at once: one backend fewer to start, one whose catalog cache the check has warmed, and
   * one description fewer. Closed once leadership is decided.
   */
  /** Opened as the daemon starts, for its first term (src/worker/early-session.ts). */
  private startConnections: StartConnections | undefined;
  private checked:
    | {
        client: pg.Client;
        tables: SourceTables;
        origin: string | undefined;
        /** Where the source is installed as this config installs it: what the workers start with at once. */
        installed: SourceFacts | undefined;
      }
    | undefined;

  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
  ) {
    this.metrics = new Metrics(this.events, config);
    this.sampler = new StatusSampler(config, this.events);
    if (config.metrics.enabled) {
      this.server = new MetricsServer({
        host: config.metrics.host,
        port: config.metrics.port,
        registry: this.metrics.registry,
        readiness: () =>
          this.sampler.sourceReachable ? { ready: true } : { ready: false, reason: 'source unreachable' },
      });
    }
  }

  /** Log reads and ticks of the current term, taken and shared (src/apply/shared-log.ts). */
  get logReads(): SharedLogCounts | undefined {
    return this.sharedLog?.counts;
  }

  /** How many source connections the current term's workers share (src/worker/early-session.ts). */
  get workerSourceConnections(): number | undefined {
    return this.sourceConnections?.size;
  }

  /** This daemon holds the leader's lock and applies. */
  get isLeader(): boolean {
    return this.leadership?.isLeader ?? false;
  }

  /**
   * Serve metrics, check the config against the source (waiting while it is unreachable), and stand for
   * leader; resolves once this daemon leads (and has installed) or stands by. Idempotent. Rejects on a
   * configuration problem; resolves early if stopped meanwhile.
   */
  start(): Promise<void> {
    this.started ??= this.startOnce();
    return this.started;
  }

  private async startOnce(): Promise<void> {
    const { config, logger } = this;
    if (this.server !== undefined) {
      const url = await this.server.start();
      this.metricsUrl = `${url}/metrics`;
      logger.info({ metrics: this.metricsUrl }, 'metrics listening');
    }
    this.sampler.run().catch((thrown: unknown) => this.partFailed(this.sampler, thrown));
    // The lock connection opens while the config is checked: a source that checks out is stood for at once.
    const lockConnection = new EarlyConnection(() =>
      connect(config.source.url, daemonConnectOptions(config)),
    );
    // So do the connections a first term needs, closed unused if this daemon stands by.
    this.startConnections = new StartConnections(config);
    const checked = await this.whenReachable(() => this.check()).catch((thrown: unknown) => {
      lockConnection.discard();
      this.dropStartConnections();
      throw thrown;
    });
    if (checked === undefined || this.stopRequested.signal.aborted) {
      lockConnection.discard();
      this.dropStartConnections();
      return;
    }
    const leadership = new Leadership(
      config,
      logger.child({ part: 'leadership' }),
      this.events,
      { begin: (fence) => this.beginTerm(fence), end: () => this.endTerm() },
      lockConnection,
    );
    this.leadership = leadership;
    leadership.run().catch((thrown: unknown) => {
      logger.error({ err: coerceError(thrown).message }, 'stopping: cannot lead');
      this.failWith(coerceError(thrown));
    });
    await leadership.decided.finally(() => {
      this.dropCheckedClient();
      this.dropStartConnections();
    });
    logger.info({ targets: config.targets.map((t) => t.name), group: config.group }, 'daemon started');
  }

  /** Run `work`, retrying while the source is unreachable (containers start together); undefined if stopped. */
  private async whenReachable<T>(work: () => Promise<T>): Promise<T | undefined> {
    const signal = this.stopRequested.signal;
    const retry = new RetryLoop(this.config.retry, signal);
    while (!signal.aborted) {
      const done = await retry.attempt(work, (thrown) => {
        if (classifyError(thrown) !== 'connection') throw thrown;
        this.logger.warn({ err: coerceError(thrown).message }, 'source not ready; retrying');
      });
      if (done !== undefined) return done.value;
    }
    return undefined;
  }

  /** What can be known without changing the source: a schema too new, tables missing or keyless. */
  private async check(): Promise<boolean> {
    const { config } = this;
    const client = await connect(config.source.url, {
      ...daemonConnectOptions(config),
      database: sourceDatabase,
    });
    try {
      // A standby (a read replica's address, a failover under way) is waited for, saying so.
      await assertPrimary(client, 'source', 'source.url', 'connection');
      const version = await assertSchemaKnown(client, config.schema, 'source');
      const described = await describeSourceTables(client, config);
      if (described.problems.length > 0) throw new ConfigError(described.problems);
      // Known where the source was installed before: the workers' targets can start before the install.
      const current = version === latestVersion('source', config.schema);
      const origin = current ? await sourceOrigin(client, config.schema).catch(() => undefined) : undefined;
      const installed =
        origin !== undefined && (await installedAsConfigured(client, config, described.tables))
          ? await readSourceFacts(client, config, origin, described.tables)
          : undefined;
      this.checked = { client, tables: described.tables, origin, installed };
    } catch (thrown) {
      await client.end().catch(() => undefined);
      throw thrown;
    }
    return true;
  }

  private dropStartConnections(): void {
    this.startConnections?.discard();
    this.startConnections = undefined;
  }

  private dropCheckedClient(): void {
    void this.checked?.client.end().catch(() => undefined);
    this.checked = undefined;
  }

  /**
   * A source session of the term for the install: the check's, joined to the term, with the tables the
   * check described; else a new one.
   */
  private async installSession(fence: TermFence): Promise<{ client: pg.Client; tables?: SourceTables }> {
    const checked = this.checked;
    this.checked = undefined;
    if (checked === undefined) return { client: await fence.connect() };
    const { client } = checked;
    try {
      await fence.join(client);
      return checked;
    } catch (thrown) {
      await client.end().catch(() => undefined);
      throw thrown;
    }
  }

  private async install(fence: TermFence): Promise<SourceFacts> {
    const { config } = this;
    const { client, tables } = await this.installSession(fence);
    try {
      // The source became a standby since the check (a failover): the term ends, saying so.
      await assertPrimary(client, 'source', 'source.url', 'connection');
      const report = await installSource(client, config, tables, this.stopRequested.signal);
      logInstall(this.logger, config, report);
      const origin = await sourceOrigin(client, config.schema);
      const facts = await readSourceFacts(client, config, origin, report.sourceTables);
      logDrains(this.logger, facts);
      return facts;
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /**
   * Elected: install, then the workers, the listener that wakes them, the pruner and the capture watcher.
   * Where the check found the source installed as this config installs it, the install registers nothing
   * the workers read: they start beside it, with what the check read. A term whose install fails ends
   * all the same (the leadership then stops what started).
   */
  private async beginTerm(fence: TermFence): Promise<void> {
    const { config, logger } = this;
    // The workers' first sessions begin while the source installs, with what the check knew (read
    // before the install takes the check's connection).
    const checked = this.checked;
    const installing = this.install(fence);
    const opened = this.startConnections;
    this.startConnections = undefined;
    const early = new EarlySessions(config, installing, checked, logger, opened);
    const sourceConnections = workerSourceConnections(config, fence, opened);
    // Whatever the term did not take (none, as the config is the start's) is closed.
    opened?.discard();
    const installed = checked?.installed;
    if (installed !== undefined) {
      logger.debug('the source is installed as configured: the workers start beside the install');
      // Awaited below, once the parts have started; a failure meanwhile is not unhandled.
      installing.catch(() => undefined);
      await this.startParts(fence, installed, early, sourceConnections);
      await installing;
      return;
    }
    const facts = await installing.catch(async (thrown: unknown) => {
      early.discard();
      await sourceConnections.close();
      throw thrown;
    });
    await this.startParts(fence, facts, early, sourceConnections);
  }

  /** The term's parts, on `facts`: the workers, the listener that wakes them, the pruner, the watcher. */
  private async startParts(
    fence: TermFence,
    { origin, sourceTables, drains, drainedTables }: SourceFacts,
    early: EarlySessions,
    sourceConnections: SharedConnections,
  ): Promise<void> {
    const { config, logger } = this;
    this.sourceConnections = sourceConnections;
    await early.installed({ origin, sourceTables, drains });
    // One reading of the log for the term's workers: ticks and chunks of the same window are shared.
    const sharedLog = new SharedLog(config.schema, config.apply.batchBytes);
    this.sharedLog = sharedLog;
    const workers = config.targets.map(
      (target) =>
        new TargetWorker({
          config,
          target,
          origin,
          sourceTables: drains.has(target.name) ? new Map([...drainedTables, ...sourceTables]) : sourceTables,
          drains: drains.get(target.name) ?? [],
          logger,
          events: this.events,
          armDoorbell: () => listener.arm(),
          fence,
          sourceConnections,
          sharedLog,
          early: early.get(target.name),
        }),
    );
    const listener = new LogListener(
      config,
      logger.child({ part: 'listener' }),
      fence,
      () => {
        for (const worker of workers) worker.wake.ring();
      },
      ({ command, target }) => {
        const worker = workers.find((w) => w.name === target);
        logger.info({ command, target, known: worker !== undefined }, 'operator command');
        worker?.retry(command !== 'retry');
      },
    );
    const pruner = new LogPruner(config, logger.child({ part: 'pruner' }), fence);
    const captured = new Map([...sourceTables.values()].map((t) => [t.relid, t.name]));
    const watcher = new CaptureWatcher(config, captured, logger.child({ part: 'capture' }), fence, {
      askCopy: (client, target, tables) => requestSync(client, config.schema, target, tables),
      renew: (reason) => this.leadership?.renew(reason),
    });
    this.workers = workers;
    this.termParts = [listener, pruner, watcher, ...workers];
    for (const part of this.termParts) part.run().catch((thrown: unknown) => this.partFailed(part, thrown));
  }

  /** Deposed or stopping: workers first (each finishes its batch), then the listener and the pruner. */
  private async endTerm(): Promise<void> {
    const workers = this.workers;
    const others = this.termParts.filter((p) => !workers.includes(p as TargetWorker));
    this.workers = [];
    this.termParts = [];
    await Promise.all(workers.map((w) => w.stop()));
    await this.sourceConnections?.close();
    this.sourceConnections = undefined;
    await Promise.all(others.map((p) => p.stop()));
  }

  private partFailed(part: { name: string }, thrown: unknown): void {
    this.logger.error({ err: thrown, part: part.name }, 'part stopped unexpectedly');
  }

  /** Stop everything; idempotent. Resolves once the leader's lock is released and the server closed. */
  stop(): Promise<void> {
    this.stopping ??= this.stopOnce();
    return this.stopping;
  }

  private async stopOnce(): Promise<void> {
    this.stopRequested.abort();
    this.dropCheckedClient();
    this.dropStartConnections();
    // start() may be waiting for the first election: ending the leadership ends that wait. A leadership
    // that ended on a configuration error (another group's target, say) rejects with it, reported by
    // start() and `failed` already: the rest must stop all the same.
    const leadershipStopped = () => this.leadership?.stop().catch(() => undefined);
    await leadershipStopped();
    await this.started?.catch(() => undefined);
    await leadershipStopped();
    await this.sampler.stop();
    await this.server?.stop();
    this.logger.info('daemon stopped');
  }
}
