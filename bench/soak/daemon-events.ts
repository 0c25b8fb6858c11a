// What the daemon reports about itself, kept per second of the run: each applied change's latency from
// its capture on the source to the commit of its batch on the target (batch:applied), and the status it
// reads from the source every second (status:sampled: backlog and the log's rows). Per second, as count,
// sum and maximum, so that a long run costs no memory that would show in the RSS we measure; every
// second, so that the log's rows, a sawtooth of the pruner's 5-s cycle, are not read in step with it.
import type { TrigsyncEvents } from '../../src/lib/events.js';

export interface DaemonSecond {
  /** Changes applied in this second (old images of updates not counted) and their latencies. */
  changes: number;
  lagSumSeconds: number;
  lagMaxSeconds: number;
  /** Status reads in this second, the largest backlog and the sum of the log's rows they saw. */
  statusReads: number;
  backlogMax: number;
  logRowsSum: number;
}

export class DaemonRecorder {
  private origin: number | undefined;
  readonly seconds: DaemonSecond[] = [];

  /** Subscribe before the daemon's first batch: pass as the `subscribe` of DaemonHandle.start(). */
  readonly subscribe = (events: TrigsyncEvents): void => {
    events.on('batch:applied', ({ target, latencies }) => {
      const slot = this.slot();
      if (slot === undefined || target !== this.target) return;
      for (const { seconds, changes } of latencies) {
        slot.changes += changes;
        slot.lagSumSeconds += seconds * changes;
        slot.lagMaxSeconds = Math.max(slot.lagMaxSeconds, seconds);
      }
    });
    events.on('status:sampled', ({ status }) => {
      const slot = this.slot();
      const target = status.targets.find((t) => t.name === this.target);
      if (slot === undefined || target === undefined) return;
      slot.statusReads++;
      slot.backlogMax = Math.max(slot.backlogMax, target.backlog);
      slot.logRowsSum += status.log.rows;
    });
  };

  constructor(private readonly target: string) {}

  /** Second 0 starts now, with the writers; what the daemon reports before is the set-up's. */
  begin(origin: number): void {
    this.origin = origin;
  }

  private slot(): DaemonSecond | undefined {
    if (this.origin === undefined) return undefined;
    const second = Math.floor((performance.now() - this.origin) / 1000);
    if (second < 0) return undefined;
    for (let i = this.seconds.length; i <= second; i++) {
      this.seconds.push({
        changes: 0,
        lagSumSeconds: 0,
        lagMaxSeconds: 0,
        statusReads: 0,
        backlogMax: 0,
        logRowsSum: 0,
      });
    }
    return this.seconds[second];
  }
}
