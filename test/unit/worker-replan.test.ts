// When a worker plans again (src/worker/worker-replan.ts): a build begun beside the turn's first reads
// is waited for before the plan is read, its failure shows there and leaves the replan due, and a new
// session forgets a build for the one before. No database: the plan keeper is a stand-in.
import { describe, expect, it } from 'vitest';

import type { PlanKeeper } from '../../src/apply/plan-keeper.js';
import type { TargetPlan } from '../../src/apply/plan.js';
import { TargetFailed } from '../../src/worker/worker-failure.js';
import { Replan } from '../../src/worker/worker-replan.js';
import type { Session } from '../../src/worker/worker-session.js';

/** A keeper whose builds the test settles: each build is `resolve`d or `reject`ed by hand. */
function keeper() {
  const builds: { resolve: (plan: TargetPlan) => void; reject: (error: Error) => void }[] = [];
  const stand = {
    build: () => new Promise<TargetPlan>((resolve, reject) => builds.push({ resolve, reject })),
  } as unknown as PlanKeeper;
  return { stand, builds };
}

const plan = (name: string) => ({ target: name }) as unknown as TargetPlan;
const session = () => ({ plan: plan('old') }) as unknown as Session;

describe('Replan', () => {
  it('builds only when due, and the plan is the new one once ready', async () => {
    const { stand, builds } = keeper();
    const replan = new Replan(stand);
    const s = session();
    replan.begin(s);
    expect(builds).toHaveLength(0);
    replan.due = true;
    replan.begin(s);
    replan.begin(s);
    expect(builds).toHaveLength(1);
    const ready = replan.ready();
    builds[0]!.resolve(plan('new'));
    await ready;
    expect(s.plan).toEqual(plan('new'));
    expect(replan.due).toBe(false);
    await replan.ready();
  });

  it('throws a failed build where it is waited for, and leaves the replan due', async () => {
    const { stand, builds } = keeper();
    const replan = new Replan(stand);
    const s = session();
    replan.due = true;
    replan.begin(s);
    builds[0]!.reject(new Error('relation "items" does not exist'));
    await expect(replan.ready()).rejects.toBeInstanceOf(TargetFailed);
    expect(replan.due).toBe(true);
    expect(s.plan).toEqual(plan('old'));
    replan.begin(s);
    expect(builds).toHaveLength(2);
  });

  it('forgets a build for the session before when a new one opens', async () => {
    const { stand, builds } = keeper();
    const replan = new Replan(stand);
    replan.due = true;
    replan.begin(session());
    replan.opened();
    builds[0]!.reject(new Error('Connection terminated'));
    await replan.ready();
    expect(replan.due).toBe(false);
  });
});
