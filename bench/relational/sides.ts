// The two replications measured, behind one face: set up for a run at a delay, stopped while a backlog
// is written, started (the timed moment), freed of the delay when a run has waited too long, and taken
// down so that the next run starts from the same state. Only one of them replicates at any time.
import type { Config } from '../../src/config/types.js';
import { subscribeNative, type NativeReplication } from '../support/logical.js';
import { DaemonHandle, drainLog, waitCaughtUp } from '../support/trigsync.js';
import { resetTables, schemaOf, tablesOf, trigsyncConfig, type Rig, type SystemName } from './setup.js';

/** How each system reaches the server across the delay; both the servers' own URLs at delay 0. */
export interface Route {
  delayMs: number;
  /** What trigsync's daemon applies to: the target, through the proxy. */
  targetUrl: string;
  /** What native's subscription connects to: the source, through the proxy. */
  sourceUrl: string;
}

export interface Side {
  readonly system: SystemName;
  readonly schema: string;
  /** Replicating changes from now on through `route`, caught up, with its tables empty on both sides. */
  begin(route: Route, run: string): Promise<void>;
  /** Stops applying; changes from here on wait on the source. */
  pause(): Promise<void>;
  /** Applies again; the start of a backlog's timing. */
  resume(): Promise<void>;
  /** After the run's wait ran out: let it finish without waiting on the delay where it can. */
  unthrottle(): Promise<void>;
  /** Waits until replication has nothing left, and takes it down. */
  end(): Promise<void>;
  /** Idempotent, for the benchmark's `finally`. */
  close(): Promise<void>;
}

/**
 * trigsync's daemon in this process, applying `ts` to the target through the route. Its target keeps
 * its name across routes, so the daemon picks up where the last run left off.
 */
export class TrigsyncSide implements Side {
  readonly system = 'trigsync';
  readonly schema = schemaOf.trigsync;
  private readonly daemon: DaemonHandle;
  private config: Config;

  constructor(private readonly rig: Rig) {
    this.config = rig.config;
    this.daemon = new DaemonHandle(rig.config);
  }

  async begin(route: Route): Promise<void> {
    // With the daemon stopped: a truncate never reaches its target through the log anyway (the reset's
    // client is uncaptured), but the target's tables are the daemon's while it runs.
    await this.daemon.stop();
    await resetTables(this.rig, this.schema);
    this.config = trigsyncConfig(this.rig.sourceUrl, route.targetUrl);
    await this.daemon.start(this.config);
    // A run that failed may have left its target paused.
    await this.daemon.setPaused(this.rig.admin, false);
    // Every run starts from an empty, vacuumed log and an idle worker waiting on the doorbell.
    await drainLog(this.rig.admin, this.config);
  }

  /** `trigsync pause` with the daemon running, as native's subscription is disabled; or a stop. */
  async pause(): Promise<void> {
    if (this.rig.options.backlogBy === 'pause') await this.daemon.setPaused(this.rig.admin, true);
    else await this.daemon.stop();
  }

  async resume(): Promise<void> {
    if (this.rig.options.backlogBy === 'pause') await this.daemon.setPaused(this.rig.admin, false);
    else await this.daemon.start(this.config);
  }

  async unthrottle(): Promise<void> {
    // The same target by its own URL: a restart, from the position the last batch committed.
    this.config = this.rig.config;
    await this.daemon.start(this.config);
  }

  async end(): Promise<void> {
    await waitCaughtUp(this.rig.admin, this.config);
    await drainLog(this.rig.admin, this.config);
    await this.daemon.stop();
  }

  async close(): Promise<void> {
    await this.daemon.stop();
  }
}

/**
 * PostgreSQL's logical replication of `native`: a publication and a subscription made for every run
 * (a fresh slot starts at the current WAL position) and dropped after it, so that the reset's truncates
 * stay where they are made. The subscription reaches the source through the route.
 */
export class NativeSide implements Side {
  readonly system = 'native';
  readonly schema = schemaOf.native;
  private subscription: NativeReplication | undefined;

  constructor(private readonly rig: Rig) {}

  async begin(route: Route, run: string): Promise<void> {
    await this.close();
    await resetTables(this.rig, this.schema);
    this.subscription = await subscribeNative({
      name: `native_${run.replaceAll(/\W+/g, '_')}`,
      source: this.rig.admin,
      sourceUrl: route.sourceUrl,
      target: this.rig.target,
      tables: tablesOf(this.schema),
    });
  }

  async pause(): Promise<void> {
    await this.subscription?.disable();
  }

  async resume(): Promise<void> {
    await this.subscription?.enable();
  }

  async unthrottle(): Promise<void> {
    // Nothing to do: native streams a backlog without waiting on round trips, so the delay costs it
    // little, and it keeps its route to the end.
  }

  async end(): Promise<void> {
    // The caller has seen every row arrive: nothing is left in flight to wait for.
    await this.close();
  }

  async close(): Promise<void> {
    const subscription = this.subscription;
    this.subscription = undefined;
    await subscription?.drop();
  }
}
