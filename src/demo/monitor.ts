/**
 * What the live view shows, gathered once a second: each target's backlog and lag as `trigsync status`
 * reads them from the source, its state and applied changes from the daemon's events, and the rates
 * over the last few seconds.
 */
import type pg from 'pg';

import type { Config } from '../config/types.js';
import { connect } from '../db/connect.js';
import type { TrigsyncEvents } from '../lib/events.js';
import { Runnable, sleep } from '../lib/runnable.js';
import type { Status, TargetState } from '../lib/status-report.js';
import { readStatus } from '../log/status.js';

export interface TargetView {
  name: string;
  state: TargetState;
  backlog: number | undefined;
  lagSeconds: number | undefined;
  /** Changes applied per second, over the last few seconds. */
  rate: number;
  /** Changes applied since the demo's daemon started. */
  applied: number;
  errorQueue: number;
}

export interface MonitorSnapshot {
  targets: TargetView[];
  sourceTxPerSecond: number;
  committed: number;
  failed: number;
  logRows: number | undefined;
}

interface Sample {
  at: number;
  committed: number;
  applied: Map<string, number>;
}

const sampleIntervalMs = 1_000;
/** Rates are averaged over this many samples, so that a big batch does not make the rate jump about. */
const rateWindow = 4;

export class DemoMonitor extends Runnable {
  readonly name = 'monitor';
  private status: Status | undefined;
  private readonly states = new Map<string, TargetState>();
  private readonly applied = new Map<string, number>();
  private samples: Sample[] = [];
  /** One session for the loop and readStatusNow() alike, opened by whichever comes first. */
  private client: Promise<pg.Client> | undefined;

  constructor(
    private readonly config: Config,
    events: TrigsyncEvents,
    private readonly workload: () => { committed: number; failed: number },
  ) {
    super();
    for (const target of config.targets) this.applied.set(target.name, 0);
    events.on('target:state', ({ target, state }) => this.states.set(target, state));
    events.on('batch:applied', ({ target, changes }) =>
      this.applied.set(target, (this.applied.get(target) ?? 0) + changes),
    );
  }

  /** The target's state as the daemon last reported it, else as the source records it. */
  state(target: string): TargetState | undefined {
    return this.states.get(target) ?? this.status?.targets.find((t) => t.name === target)?.state;
  }

  appliedTotal(target: string): number {
    return this.applied.get(target) ?? 0;
  }

  /** Status read just now, not the last sample's: for waiting on a condition. */
  async readStatusNow(): Promise<Status> {
    this.client ??= connect(this.config.source.url, { applicationName: 'trigsync-demo-monitor' });
    try {
      this.status = await readStatus(await this.client, this.config);
      return this.status;
    } catch (thrown) {
      await this.dropClient();
      throw thrown;
    }
  }

  protected async loop(signal: AbortSignal): Promise<void> {
    while (this.shouldRun()) {
      // A failed read keeps the last status on screen; the next tick tries again.
      await this.readStatusNow().catch(() => undefined);
      const { committed } = this.workload();
      this.samples = [...this.samples, { at: Date.now(), committed, applied: new Map(this.applied) }].slice(
        -rateWindow,
      );
      await sleep(sampleIntervalMs, signal);
    }
    await this.dropClient();
  }

  snapshot(): MonitorSnapshot {
    const first = this.samples[0];
    const last = this.samples.at(-1);
    const seconds = first !== undefined && last !== undefined ? (last.at - first.at) / 1000 : 0;
    const rate = (from: number | undefined, to: number | undefined): number =>
      seconds > 0 && from !== undefined && to !== undefined ? (to - from) / seconds : 0;
    const { committed, failed } = this.workload();
    return {
      targets: this.config.targets.map((target) => {
        const status = this.status?.targets.find((t) => t.name === target.name);
        return {
          name: target.name,
          state: this.state(target.name) ?? 'new',
          backlog: status?.backlog,
          lagSeconds: status?.lagSeconds,
          rate: rate(first?.applied.get(target.name), last?.applied.get(target.name)),
          applied: this.appliedTotal(target.name),
          errorQueue: status?.errorQueue ?? 0,
        };
      }),
      sourceTxPerSecond: rate(first?.committed, last?.committed),
      committed,
      failed,
      logRows: this.status?.log.rows,
    };
  }

  private async dropClient(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    await client?.then((c) => c.end()).catch(() => undefined);
  }
}
