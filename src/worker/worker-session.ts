/**
 * A worker's session: its connections to the source and the target, the plan, and the position it
 * applies from. It is opened whole or not at all (openSession), so that a worker holds one or none.
 */
import type pg from 'pg';

import type { Config, TargetConfig } from '../config/types.js';
import { connect, daemonConnectOptions, type Early } from '../db/connect.js';
import type { SharedConnections } from '../db/shared-connection.js';
import type { TermFence } from '../db/term-fence.js';
import { ConfigError } from '../failure/errors.js';
import type { Logger } from '../lib/logger.js';
import type { TargetState } from '../lib/status-report.js';
import { claimPosition, PositionLost } from '../changelog/horizon.js';
import type { Snapshot } from '../changelog/snapshot.js';
import { loadRegisteredPosition } from '../changelog/targets.js';
import type { Position } from '../changelog/window.js';
import { RoundTrip } from '../apply/copy-in.js';
import type { TargetPlan } from '../apply/plan.js';
import type { PlanKeeper } from '../apply/plan-keeper.js';
import { startTargetSession, type TargetStart } from '../apply/session-role.js';
import { onTarget } from './worker-failure.js';

export interface Session {
  source: pg.Client;
  target: pg.Client;
  /** Built against the target at the session's start, and again when it may no longer fit. */
  plan: TargetPlan;
  position: Position;
  /** Per table copied by a sync, the copy's snapshot: the stream leaves out what the copy holds. */
  floors: Map<number, Snapshot>;
  /** The target link's round trip: large inserts go by COPY where it is short (copy-in.ts). */
  roundTrip: RoundTrip;
  /** The log cannot serve the position: only a copy of every table, from a new position, helps. */
  positionLost: boolean;
  /** Changes the source counts as applied to a target that holds no position of its own. */
  unrecordedChanges: number;
  /**
   * A source connection of the session's own beside its lease, for runs copied through
   * (worker-runs.ts): asked for at the first run of several tables, used once open.
   */
  beside?: BesideConnection | undefined;
}

export interface BesideConnection {
  /** Undefined where it could not be opened. */
  opening: Promise<pg.Client | undefined>;
  open: pg.Client | undefined;
}

/** What a worker's sessions need of the daemon's term. */
export interface SessionDeps {
  config: Config;
  target: TargetConfig;
  /** This source's identity; the target keys our position by it. */
  origin: string;
  /** The leader's term: source sessions join it (src/db/term-fence.ts). */
  fence: TermFence;
  /**
   * The term's source connections, which workers share (src/db/shared-connection.ts): joined to the
   * term, and set up for reading the log (early-session.ts).
   */
  sourceConnections: SharedConnections;
  /** The first session's target side, opened while the term began (early-session.ts). */
  early?: Early<OpenedTarget> | undefined;
}

/** A session's target side: its connection, its start, and its plan if it was made ahead. */
export interface OpenedTarget {
  client: pg.Client;
  start: TargetStart;
  /** Made ahead by a keeper of the same tables (early-session.ts); undefined: made at the opening. */
  plan?: TargetPlan | undefined;
}

/** The target side of a session: connected and started (startTargetSession). */
export async function openTarget(
  config: Config,
  target: TargetConfig,
  origin: string | Promise<string>,
  /** The connection, opened ahead (early-session.ts); else opened now. */
  connection?: Promise<pg.Client>,
): Promise<OpenedTarget> {
  const opened = await (connection ?? connect(target.url, daemonConnectOptions(config)));
  try {
    const start = await startTargetSession(opened, config.schema, await origin, target.name);
    return { client: opened, start };
  } catch (thrown) {
    await opened.end().catch(() => undefined);
    throw thrown;
  }
}

/** What opening a session needs of its worker. */
export interface SessionContext extends SessionDeps {
  log: Logger;
  planKeeper: PlanKeeper;
  /** Read the operator's skips and sync request from the source, before the target is planned. */
  loadOperatorState: (source: pg.Client) => Promise<void>;
  /** Whether a sync now asked of the target copies every table of `plan`. */
  syncCoversAll: (plan: TargetPlan) => boolean;
  /** The state the source holds for a target without a position of its own. */
  registeredState: (state: TargetState) => void;
}

/** Open a worker's session; what fails on the target is a TargetFailed (worker-failure.ts). */
export async function openSession(context: SessionContext): Promise<Session> {
  const toClose: pg.Client[] = [];
  try {
    const source = await context.sourceConnections.lease();
    toClose.push(source);
    await context.loadOperatorState(source);
    const earlyTarget = context.early?.take();
    const opened = await onTarget(
      () => earlyTarget ?? openTarget(context.config, context.target, context.origin),
    );
    const target = opened.client;
    toClose.push(target);
    const { start } = opened;
    context.log.info({ triggers: start.mode }, `target applies as ${start.mode}`);
    const roundTrip = new RoundTrip();
    roundTrip.observe(start.roundTripMs);
    let position = start.position;
    let unrecordedChanges = 0;
    if (position === undefined) {
      const registered = await registeredPosition(context, source);
      [position, unrecordedChanges] = [registered.position, registered.appliedChanges];
    }
    context.log.info('connected to target');
    // A plan made ahead predates the operator's state read above: an operator's act since is noticed
    // as any other (a NOTIFY, or the request's periodic look), which plans again. The position is
    // claimed on the source while the target plans: a far source's round trips beside a far target's.
    const planning = opened.plan ?? onTarget(() => context.planKeeper.build(target));
    const [planned, claimed] = await Promise.allSettled([
      planning,
      claim(context, source, () => planning, position, unrecordedChanges),
    ]);
    if (planned.status === 'rejected') throw planned.reason;
    if (claimed.status === 'rejected') throw claimed.reason;
    const [plan, positionLost] = [planned.value, claimed.value];
    return {
      source,
      target,
      plan,
      position,
      floors: start.floors,
      roundTrip,
      positionLost,
      unrecordedChanges,
    };
  } catch (thrown) {
    await Promise.all(toClose.map((c) => c.end().catch(() => undefined)));
    throw thrown;
  }
}

/** A session's end: its connections closed (the source's lease ended, the one beside it closed). */
export async function closeSession(session: Session): Promise<void> {
  const beside = await session.beside?.opening;
  const clients =
    beside === undefined ? [session.source, session.target] : [session.source, session.target, beside];
  await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
}

async function registeredPosition(
  context: SessionContext,
  source: pg.Client,
): Promise<{ position: Position; appliedChanges: number }> {
  const name = context.target.name;
  const registered = await loadRegisteredPosition(source, context.config.schema, name);
  if (registered === undefined) {
    throw new ConfigError(`target ${name} is not registered on the source; run trigsync install`);
  }
  context.registeredState(registered.state === 'parked' ? 'catching_up' : registered.state);
  return registered;
}

/**
 * Before reading anything: can the log serve the target's position? A position it cannot serve parks
 * the target (PositionLost names what happened) until a copy of all its tables gives it a new one.
 * Returns whether it is lost, for such a copy.
 */
async function claim(
  context: SessionContext,
  source: pg.Client,
  plan: () => TargetPlan | Promise<TargetPlan>,
  position: Position,
  unrecordedChanges: number,
): Promise<boolean> {
  const name = context.target.name;
  try {
    if (unrecordedChanges > 0) {
      // Every batch records its position on the target: a target without one was replaced, or restored
      // to before its first batch, and lacks what the source counts as applied.
      throw new PositionLost(
        `target ${name}: it holds no record of what it applied from this source, but the source ` +
          `counts ${unrecordedChanges} changes applied to it: the target database was replaced, or ` +
          `restored from an older backup. Copy it again with \`trigsync sync ${name}\``,
      );
    }
    await claimPosition(source, context.config.schema, name, position);
    return false;
  } catch (thrown) {
    if (!(thrown instanceof PositionLost) || !context.syncCoversAll(await plan())) throw thrown;
    context.log.warn({ err: thrown.message }, 'position lost; the requested sync copies every table');
    return true;
  }
}
