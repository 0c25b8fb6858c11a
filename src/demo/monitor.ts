/**
 * What the live view shows, gathered once a second: each target's state, backlog and lag as `trigsync
 * status` reads them from the source, all from one read (shown-state.ts), its applied changes and last
 * error from the daemon's events, and the rates over the last few seconds.
 */
import type pg from 'pg';

import type { Config } from '../config/types.js';
import { connect } from '../db/connect.js';
import type { TrigsyncEvents } from '../lib/events.js';
import { Runnable, sleep } from '../lib/runnable.js';
import type { Status, TargetState } from '../lib/status-report.js';
import { readStatus } from '../changelog/status.js';
import { errorsCell, firstLine, shownState, type LastError, type ShownState } from './shown-state.js';

export interface TargetView {
  name: string;
  state: TargetState;
  /** Why it is not live: its backlog, or the error it is parked on (shown-state.ts). */
  reason: string | undefined;
  backlog: number | undefined;
  lagSeconds: number | undefined;
  /** Changes applied per second, over the last few seconds. */
  rate: number;
  /** Changes applied since the demo's daemon started. */
  applied: number;
  errorQueue: number;
  /** The ERRORS column: the error queue's size, or the error a parked target waits on. */
  errors: string;
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
  /** Per target, what the last status read shows (shown-state.ts). */
  private readonly shown = new Map<string, ShownState>();
  private readonly lastErrors = new Map<string, LastError>();
  private readonly stateListeners: ((target: string, shown: ShownState) => void)[] = [];
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
    events.on('target:error', ({ target, kind, message }) =>
      this.lastErrors.set(target, { kind, message: firstLine(message) }),
    );
    events.on('target:state', ({ target, state }) => {
      if (state !== 'parked') this.lastErrors.delete(target);
    });
    events.on('batch:applied', ({ target, changes }) =>
      this.applied.set(target, (this.applied.get(target) ?? 0) + changes),
    );
  }

  /** The target's state as the view shows it, from the last status read; undefined before the first. */
  state(target: string): TargetState | undefined {
    return this.shown.get(target)?.state;
  }

  /** Called when a target's shown state changes, with its reason: for the notes above the table. */
  onStateChange(listener: (target: string, shown: ShownState) => void): void {
    this.stateListeners.push(listener);
  }

  appliedTotal(target: string): number {
    return this.applied.get(target) ?? 0;
  }

  /** Status read just now, not the last sample's: for waiting on a condition. */
  async readStatusNow(): Promise<Status> {
    this.client ??= connect(this.config.source.url, { applicationName: 'trigsync-demo-monitor' });
    try {
      this.status = await readStatus(await this.client, this.config);
      this.showStates(this.status);
      return this.status;
    } catch (thrown) {
      await this.dropClient();
      throw thrown;
    }
  }

  /** Also closes the session that readStatusNow() opened when the loop never ran. */
  override async stop(): Promise<void> {
    await super.stop();
    await this.dropClient();
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
        const shown = this.shown.get(target.name) ?? { state: 'new', reason: undefined };
        return {
          name: target.name,
          state: shown.state,
          reason: shown.reason,
          backlog: status?.backlog,
          lagSeconds: status?.lagSeconds,
          rate: rate(first?.applied.get(target.name), last?.applied.get(target.name)),
          // As of the last sample, as the state, backlog and lag are.
          applied: last?.applied.get(target.name) ?? this.appliedTotal(target.name),
          errorQueue: status?.errorQueue ?? 0,
          errors: status === undefined ? '0' : errorsCell(status, shown),
        };
      }),
      sourceTxPerSecond: rate(first?.committed, last?.committed),
      committed,
      failed,
      logRows: this.status?.log.rows,
    };
  }

  /** Each target's state and reason from this one read; listeners hear of those that changed. */
  private showStates(status: Status): void {
    for (const target of status.targets) {
      const shown = shownState(target, this.lastErrors.get(target.name));
      const before = this.shown.get(target.name);
      this.shown.set(target.name, shown);
      // Only changes of state: a parked target's changing errors are notes of their own (scenario.ts).
      if (before?.state === shown.state || (before === undefined && shown.state === 'new')) continue;
      for (const listener of this.stateListeners) listener(target.name, shown);
    }
  }

  private async dropClient(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    await client?.then((c) => c.end()).catch(() => undefined);
  }
}
