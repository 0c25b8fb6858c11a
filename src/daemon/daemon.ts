/**
 * The daemon: installs what is missing, then runs the listener, the pruner and one worker per target.
 * Starts in dependency order and stops in reverse; stop lets each worker finish (commit or roll back)
 * the batch in flight.
 */
import { describeSourceTables } from '../apply/plan.js';
import { TargetWorker } from '../apply/worker.js';
import { installSource, sourceOrigin } from '../capture/install.js';
import type { Config } from '../config/types.js';
import { withClient } from '../db/connect.js';
import { ConfigError } from '../failure/errors.js';
import { TrigsyncEvents } from '../lib/events.js';
import type { Logger } from '../lib/logger.js';
import { LogListener } from '../log/listener.js';
import { LogPruner } from '../log/pruner.js';
import { Metrics } from '../metrics/metrics.js';

export class Daemon {
  readonly events = new TrigsyncEvents();
  readonly metrics = new Metrics(this.events);
  private workers: TargetWorker[] = [];
  private listener: LogListener | undefined;
  private pruner: LogPruner | undefined;
  private started: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;

  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
  ) {}

  /** Install and start every part; idempotent. */
  start(): Promise<void> {
    this.started ??= this.startOnce();
    return this.started;
  }

  private async startOnce(): Promise<void> {
    const { config, logger } = this;
    const options = { applicationName: config.applicationName };
    const { origin, sourceTables } = await withClient(config.source.url, options, async (client) => {
      const report = await installSource(client, config);
      logger.info(
        {
          schema: report.schema,
          tables: report.tables.length,
          added: report.targetsAdded,
          removed: report.targetsRemoved,
        },
        'source installed',
      );
      const described = await describeSourceTables(client, config);
      if (described.problems.length > 0) throw new ConfigError(described.problems);
      return { origin: await sourceOrigin(client, config.schema), sourceTables: described.tables };
    });

    this.workers = config.targets.map(
      (target) =>
        new TargetWorker({
          config,
          target,
          origin,
          sourceTables,
          logger,
          events: this.events,
          armDoorbell: () => this.listener?.arm() ?? Promise.resolve(),
        }),
    );
    this.listener = new LogListener(
      config,
      logger.child({ part: 'listener' }),
      () => {
        for (const worker of this.workers) worker.wake.ring();
      },
      ({ command, target }) => {
        const worker = this.workers.find((w) => w.name === target);
        logger.info({ command, target, known: worker !== undefined }, 'operator command');
        worker?.retry(command !== 'retry');
      },
    );
    this.pruner = new LogPruner(config, logger.child({ part: 'pruner' }));
    for (const part of [this.listener, this.pruner, ...this.workers]) {
      part
        .run()
        .catch((thrown: unknown) =>
          logger.error({ err: thrown, part: part.name }, 'part stopped unexpectedly'),
        );
    }
    logger.info({ targets: this.workers.map((w) => w.name) }, 'daemon started');
  }

  /** Stop workers first (each finishes its batch), then the listener and the pruner; idempotent. */
  stop(): Promise<void> {
    this.stopping ??= this.stopOnce();
    return this.stopping;
  }

  private async stopOnce(): Promise<void> {
    await this.started?.catch(() => undefined);
    await Promise.all(this.workers.map((w) => w.stop()));
    await Promise.all([this.listener?.stop(), this.pruner?.stop()]);
    this.logger.info('daemon stopped');
  }
}
