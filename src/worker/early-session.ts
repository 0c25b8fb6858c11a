/**
 * The workers' first sessions, begun while the leader installs on the source (src/daemon/daemon.ts):
 * the source connections that the workers share, whose backends plan a read meanwhile, and each
 * worker's target side: the connection, the start once the source's identity is known, and the plan
 * where the check described the source's tables. On a far target the target side is several round trips
 * that no longer wait for the install; they are the session's own statements, sent earlier, not extra
 * ones (a statement sent only to warm a far target's backend costs a round trip more than it saves).
 */
import type pg from 'pg';

import type { SourceTables } from '../capture/source-tables.js';
import type { Config, TargetConfig } from '../config/types.js';
import { connect, daemonConnectOptions, Early, EarlyConnection } from '../db/connect.js';
import { SharedConnections } from '../db/shared-connection.js';
import type { TermFence } from '../db/term-fence.js';
import type { Logger } from '../lib/logger.js';
import { warmReader } from '../apply/log-reader.js';
import { PlanKeeper, readForPlan, type PlanReads } from '../apply/plan-keeper.js';
import { openTarget, type OpenedTarget } from './worker-session.js';

/**
 * Workers that share a source connection. Their statements there are short (a tick, a chunk's read that
 * the other workers at its position take too, the position's copy) and take turns; each connection is a
 * backend that reads the catalog afresh (about 2,500 blocks) and one of the source's max_connections.
 */
const workersPerSourceConnection = 5;

/**
 * The term's source connections for the workers, the first taken from those the daemon opened at its
 * start (StartConnections) or opened now: joined to the term, set up for reading the log, and primed: warmReader plans a read, so that a fresh
 * backend has the catalog entries of its first real statements cached when it is used (10 to 20 ms of
 * a start's first rows).
 */
export function workerSourceConnections(
  config: Config,
  fence: TermFence,
  opened: StartConnections | undefined,
): SharedConnections {
  const connections = new SharedConnections(async () => {
    const client = await (opened?.takeSource() ?? primedSourceConnection(config));
    try {
      await fence.join(client);
    } catch (thrown) {
      await client.end().catch(() => undefined);
      throw thrown;
    }
    return client;
  }, workersPerSourceConnection);
  connections.openAhead(config.targets.length);
  return connections;
}

/** A new source connection, set up for reading the log and primed (warmReader); not yet in a term. */
async function primedSourceConnection(config: Config): Promise<pg.Client> {
  const client = await connect(config.source.url, daemonConnectOptions(config));
  try {
    await warmReader(client, config.schema);
  } catch (thrown) {
    await client.end().catch(() => undefined);
    throw thrown;
  }
  return client;
}

/** A target's connection opened as the daemon starts, with what its first plan reads of the target. */
export interface AheadTarget {
  client: pg.Client;
  reads: PlanReads;
}

/**
 * The connections a leader's first term needs, opened as the daemon starts, beside its check of the
 * source and before it knows whether it leads: the workers' source connections (primed as
 * primedSourceConnection) and each target's, on which the first plan's reads of the target are sent at
 * once (they need only the config). A new connection costs a few milliseconds of authentication on each
 * side (SCRAM) and a round trip or two; a standby closes them unused.
 */
export class StartConnections {
  readonly #source: EarlyConnection[];
  readonly #targets: Map<string, Early<AheadTarget>>;

  constructor(config: Config) {
    const options = daemonConnectOptions(config);
    this.#source = Array.from(
      { length: Math.ceil(config.targets.length / workersPerSourceConnection) },
      () => new EarlyConnection(() => primedSourceConnection(config)),
    );
    this.#targets = new Map(
      config.targets.map((t) => [
        t.name,
        new Early(
          connect(t.url, options).then(async (client) => {
            try {
              return { client, reads: await readForPlan(client, config, t) };
            } catch (thrown) {
              await client.end().catch(() => undefined);
              throw thrown;
            }
          }),
          ({ client }) => client.end(),
        ),
      ]),
    );
  }

  /** A source connection not yet taken, primed for reading the log. */
  takeSource(): Promise<pg.Client> | undefined {
    return this.#source.shift()?.take();
  }

  /** The connection to the target named `name` and its plan's reads, unless taken. */
  takeTarget(name: string): Promise<AheadTarget> | undefined {
    const early = this.#targets.get(name);
    this.#targets.delete(name);
    return early?.take();
  }

  /** Close whatever was not taken. */
  discard(): void {
    for (const early of [...this.#source, ...this.#targets.values()]) early.discard();
    this.#source.length = 0;
    this.#targets.clear();
  }
}

/** What the check found, before the install: the tables' description, and the source's identity if installed. */
export interface Checked {
  tables: SourceTables;
  origin: string | undefined;
}

/** What the install settled, which the first sessions were begun without. */
export interface Installed {
  origin: string;
  sourceTables: SourceTables;
  /** Targets that drain tables removed from their config: their plans hold more tables. */
  drains: ReadonlyMap<string, unknown>;
}

export class EarlySessions {
  readonly #targets = new Map<string, Early<OpenedTarget>>();
  readonly #origin: Promise<string>;

  /** `installing` resolves with the install's outcome; `checked`, what the check knew before it. */
  constructor(
    private readonly config: Config,
    installing: Promise<Installed>,
    private readonly checked: Checked | undefined,
    logger: Logger,
    opened: StartConnections | undefined,
  ) {
    const known = checked?.origin;
    this.#origin = known === undefined ? installing.then((i) => i.origin) : Promise.resolve(known);
    // A failed install is reported by the daemon; a target side waiting for it fails with it, unseen.
    this.#origin.catch(() => undefined);
    for (const target of config.targets) {
      const keeper =
        checked && new PlanKeeper(config, target, checked.tables, logger.child({ target: target.name }));
      this.#targets.set(
        target.name,
        openTargetEarly(config, target, this.#origin, keeper, opened?.takeTarget(target.name)),
      );
    }
  }

  /**
   * Fit the target sides to the install's outcome: a plan made ahead is dropped where the target drains
   * a table or the tables were described anew; a target started as another source's (installed anew
   * between the check and the install) starts again.
   */
  async installed(installed: Installed): Promise<void> {
    const startedAs = await this.#origin;
    for (const target of this.config.targets) {
      const early = this.#targets.get(target.name)!;
      if (startedAs !== installed.origin) {
        early.discard();
        this.#targets.set(
          target.name,
          openTargetEarly(this.config, target, Promise.resolve(installed.origin), undefined),
        );
      } else if (installed.drains.has(target.name) || installed.sourceTables !== this.checked?.tables) {
        this.#targets.set(target.name, withoutPlan(early));
      }
    }
  }

  /** The first session's target side of the target named `name`. */
  get(name: string): Early<OpenedTarget> | undefined {
    return this.#targets.get(name);
  }

  /** Close whatever no worker took. */
  discard(): void {
    for (const target of this.#targets.values()) target.discard();
  }
}

/**
 * The target side, and its plan where `planKeeper` knows the source's tables; on the connection opened
 * at the daemon's start (`ahead`), whose plan reads are taken where they cover the plan's tables.
 */
function openTargetEarly(
  config: Config,
  target: TargetConfig,
  origin: Promise<string>,
  planKeeper: PlanKeeper | undefined,
  ahead?: Promise<AheadTarget>,
): Early<OpenedTarget> {
  const connection = ahead?.then(({ client }) => client);
  const opening = openTarget(config, target, origin, connection).then(async (opened) => {
    if (planKeeper === undefined) return opened;
    try {
      return { ...opened, plan: await planKeeper.build(opened.client, (await ahead)?.reads) };
    } catch (thrown) {
      await opened.client.end().catch(() => undefined);
      throw thrown;
    }
  });
  return new Early(opening, ({ client }) => client.end());
}

/** The same target side without its plan, which the session then makes with its own keeper. */
function withoutPlan(early: Early<OpenedTarget>): Early<OpenedTarget> {
  const opening = early.take() ?? Promise.reject(new Error('the early target side was taken'));
  return new Early(
    opening.then(({ client, start }) => ({ client, start })),
    ({ client }) => client.end(),
  );
}
