// The two systems measured, behind one face: start replicating an empty table, wait until the target
// holds every row, stop and empty the table on both sides. Only one of them replicates at any time, so
// each has the machine to itself.
import type pg from 'pg';

import type { Config } from '../../src/config/types.js';
import { rowCount } from '../support/servers.js';
import { waitFor } from '../../test/support/wait.js';
import { subscribeNative, type NativeReplication } from '../support/logical.js';
import { DaemonHandle, drainLog, waitCaughtUp } from '../support/trigsync.js';
import { nativeTable, trigsyncTable, type SystemName } from './setup.js';

export interface Replicator {
  readonly name: SystemName;
  readonly table: string;
  /** Where the rows arrive. */
  readonly target: pg.Client;
  /** Begins replicating; returns once changes from now on flow to the target without delay. */
  start(): Promise<void>;
  /** Waits until the target holds every row that the source has committed. */
  caughtUp(): Promise<void>;
  /** Stops replicating and empties the table on both sides, without that reaching the other side. */
  stopAndEmpty(): Promise<void>;
}

/** trigsync's daemon in this process, applying to one target. */
export class TrigsyncReplicator implements Replicator {
  readonly name = 'trigsync';
  readonly table = trigsyncTable;
  private readonly daemon: DaemonHandle;

  constructor(
    private readonly config: Config,
    /** A source client for status reads. */
    private readonly admin: pg.Client,
    /** Clients under trigsync's application_name: their writes are not captured, nor refused as echo. */
    private readonly quietSource: pg.Client,
    readonly target: pg.Client,
  ) {
    this.daemon = new DaemonHandle(config);
  }

  async start(): Promise<void> {
    await this.daemon.start();
    // Every run starts from an empty, vacuumed log and an idle worker waiting on the doorbell.
    await drainLog(this.admin, this.config);
  }

  async caughtUp(): Promise<void> {
    await waitCaughtUp(this.admin, this.config);
  }

  async stopAndEmpty(): Promise<void> {
    await this.daemon.stop();
    await Promise.all([
      this.quietSource.query(`truncate ${this.table}`),
      this.target.query(`truncate ${this.table}`),
    ]);
  }

  /** Idempotent: for the benchmark's `finally`. */
  async close(): Promise<void> {
    await this.daemon.stop();
  }
}

/**
 * PostgreSQL's logical replication: a publication and a subscription made fresh for every run and
 * dropped after it. A fresh slot starts at the current WAL position; one kept disabled across trigsync's
 * runs would first have to decode all of their WAL.
 */
export class NativeReplicator implements Replicator {
  readonly name = 'native';
  readonly table = nativeTable;
  private subscription: NativeReplication | undefined;

  constructor(
    private readonly source: pg.Client,
    /** How the target reaches the source. */
    private readonly sourceUrl: string,
    readonly target: pg.Client,
  ) {}

  async start(): Promise<void> {
    this.subscription = await subscribeNative({
      name: this.table,
      source: this.source,
      sourceUrl: this.sourceUrl,
      target: this.target,
      tables: [`public.${this.table}`],
    });
  }

  async caughtUp(): Promise<void> {
    const sent = await rowCount(this.source, this.table);
    await waitFor(async () => (await rowCount(this.target, this.table)) === sent, {
      what: `${this.table} on the target to hold the source's ${sent} rows`,
      timeoutMs: 300_000,
      intervalMs: 100,
    });
  }

  async stopAndEmpty(): Promise<void> {
    await this.close();
    // No publication any more: the source's TRUNCATE stays on the source.
    await Promise.all([
      this.source.query(`truncate ${this.table}`),
      this.target.query(`truncate ${this.table}`),
    ]);
  }

  async close(): Promise<void> {
    const subscription = this.subscription;
    this.subscription = undefined;
    await subscription?.drop();
  }
}
