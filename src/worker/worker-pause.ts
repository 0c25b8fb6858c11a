/**
 * A worker's part in an operator's pause (`trigsync pause`, `trigsync resume`): at each turn, whether the
 * target is paused, and the moments it stops and goes on, said once each (a log line and the
 * `target:paused` event). The pause itself is kept on the source (operator-state.ts).
 */
import type pg from 'pg';

import type { TrigsyncEvents } from '../lib/events.js';
import type { Logger } from '../lib/logger.js';
import type { OperatorState } from './operator-state.js';

/** At a turn: apply nothing (`paused`), go on after a pause (`resumed`: a backlog waits), or go on. */
export type PauseTurn = 'paused' | 'resumed' | 'going';

export class WorkerPause {
  /** Paused at the last turn. */
  private paused = false;

  constructor(
    private readonly target: string,
    private readonly operator: OperatorState,
    private readonly log: Logger,
    private readonly events: TrigsyncEvents,
  ) {}

  /**
   * Whether an operator paused the target. With a session (`source`, its connection to the source), the
   * operator's state is read as a session's turn reads it, and `acted` is called where an operator acted
   * (the plan is then made again); without one, only the pause is read, through `lease`, so that a
   * paused target's worker opens nothing: its server may be down for the maintenance the pause is for.
   * A session open when the pause came stays open, idle.
   */
  async turn(
    source: pg.Client | undefined,
    lease: () => Promise<pg.Client>,
    acted: () => void,
  ): Promise<PauseTurn> {
    let paused: boolean;
    if (source === undefined) {
      paused = await this.operator.pausedWithoutSession(lease);
    } else {
      if (await this.operator.refresh(source)) acted();
      paused = this.operator.paused;
    }
    const was = this.paused;
    this.paused = paused;
    if (paused === was) return paused ? 'paused' : 'going';
    this.log.info(paused ? 'paused: applying nothing until `trigsync resume`' : 'resumed');
    this.events.emit('target:paused', { target: this.target, paused });
    return paused ? 'paused' : 'resumed';
  }
}
