/**
 * When a worker's plan is made again (an operator acted, a failure, a table changed shape on the source)
 * and the making of it. With a session open, the target plans while the source answers the turn's
 * first reads (the tick, the look at a run): a resume's replan took 5-10 ms before anything else, about
 * a tenth of a 20,000-row backlog's whole apply on one host.
 */
import type { PlanKeeper } from '../apply/plan-keeper.js';
import { onTarget } from './worker-failure.js';
import type { Session } from './worker-session.js';

export class Replan {
  /** The plan may no longer fit: build it again before it is used. Stays set until a build succeeds. */
  due = false;
  /** A build begun and not yet waited for. */
  private building: Promise<void> | undefined;

  constructor(private readonly keeper: PlanKeeper) {}

  /** A new session, planned as it opened: nothing due, and a build for the session before it forgotten. */
  opened(): void {
    this.due = false;
    this.building = undefined;
  }

  /** Plan against the target now; until that succeeds the session's plan is not used. */
  async now(session: Session): Promise<void> {
    this.due = true;
    session.plan = await onTarget(() => this.keeper.build(session.target));
    this.due = false;
  }

  /** Begin the build if it is due, and go on: `ready` waits for it (and throws its failure). */
  begin(session: Session): void {
    if (!this.due || this.building !== undefined) return;
    const building = this.now(session);
    // Waited for by `ready`; a turn that fails before it leaves `due` set, and the next turn plans.
    building.catch(() => undefined);
    this.building = building;
  }

  /** The build begun, done: the session's plan fits the target now. */
  async ready(): Promise<void> {
    const building = this.building;
    this.building = undefined;
    await building;
  }
}
