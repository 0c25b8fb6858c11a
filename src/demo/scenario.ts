/**
 * The demo's story, in phases spread over the time the user gave it: the replicas copy the source and
 * follow its traffic; the writable replica's server goes down, its target parks while the backlog
 * grows; the server comes back and the backlog drains; the traffic stops, every replica catches up,
 * and verify compares every table.
 */
import type { Config } from '../config/types.js';
import { connect } from '../db/connect.js';
import { coerceError } from '../failure/errors.js';
import type { TrigsyncEvents } from '../lib/events.js';
import { sleep } from '../lib/runnable.js';
import type { TargetState } from '../lib/status-report.js';
import { verify, type VerifyReport } from '../verify/verify.js';
import type { DemoEnvironment } from './environment.js';
import type { LiveView } from './live-view.js';
import type { DemoMonitor } from './monitor.js';
import { stateNote } from './shown-state.js';
import type { ShopWorkload } from './workload.js';

/** Thrown out of any wait once the user asked the demo to stop. */
export class Interrupted extends Error {
  constructor() {
    super('interrupted');
  }
}

export interface ScenarioParts {
  config: Config;
  environment: DemoEnvironment;
  events: TrigsyncEvents;
  monitor: DemoMonitor;
  workload: ShopWorkload;
  view: LiveView;
  /** When the traffic should have stopped and verify begun, as a Date.now() value. */
  endsAt: number;
  signal: AbortSignal;
}

/** The target whose server goes down: the writable replica. */
const outageTarget = 'analytics';
/** Short enough for a 20 s demo, long enough for a second retry or two while the server is down. */
const minimumOutageMs = 3_000;
/** How long the initial copy, the park and the drain may take before the demo goes on regardless. */
const conditionTimeoutMs = 30_000;
const pollMs = 200;

export async function runScenario(parts: ScenarioParts): Promise<VerifyReport> {
  const { config, environment, monitor, workload, view, signal } = parts;
  const checkpoint = (): void => {
    if (signal.aborted) throw new Interrupted();
  };
  const waitFor = async (
    condition: () => boolean | Promise<boolean>,
    timeoutMs: number,
  ): Promise<boolean> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      checkpoint();
      if (await condition()) return true;
      if (Date.now() >= deadline) return false;
      await sleep(pollMs, signal);
    }
  };
  const sleepUntil = async (at: number): Promise<void> => {
    await sleep(at - Date.now(), signal);
    checkpoint();
  };
  const stateIs =
    (target: string, ...states: TargetState[]) =>
    (): boolean =>
      states.includes(monitor.state(target) ?? 'new');
  const allLive = (): boolean => config.targets.every((t) => monitor.state(t.name) === 'live');

  narrate(parts);
  const start = Date.now();
  const span = Math.max(parts.endsAt - start, 12_000);
  const warmUpEnds = start + span * 0.25;
  const outageEnds = start + span * 0.55;
  const trafficEnds = start + span;

  view.setPhase('warm-up: the replicas copy the seeded rows, then follow the shop traffic');
  if (!(await waitFor(allLive, conditionTimeoutMs))) view.note('not every replica is live yet; going on');
  await showReadOnlyGuard(parts);
  await sleepUntil(warmUpEnds);

  const server = environment.server(outageTarget);
  view.setPhase(`outage: the ${outageTarget} server is down; the traffic goes on`);
  view.note(`${outageTarget}: stopping its server (fast shutdown: its sessions are cut)`);
  await server.stop();
  if (await waitFor(stateIs(outageTarget, 'parked'), conditionTimeoutMs)) {
    view.note(`${outageTarget} is parked: trigsync retries it every few seconds; its backlog grows`);
  } else {
    view.note(`${outageTarget}: not parked after ${conditionTimeoutMs / 1000} s; going on`);
  }
  await sleepUntil(Math.max(outageEnds, Date.now() + minimumOutageMs));

  view.setPhase(`recovery: the ${outageTarget} server is back; trigsync drains the backlog`);
  const status = await monitor.readStatusNow().catch(() => undefined);
  const backlog = status?.targets.find((t) => t.name === outageTarget)?.backlog;
  const appliedBefore = monitor.appliedTotal(outageTarget);
  const restartedAt = Date.now();
  await server.start(signal);
  view.note(`${outageTarget}: server started again, with a backlog of ${backlog ?? '?'} changes`);
  if (await waitFor(stateIs(outageTarget, 'live'), Math.max(trafficEnds - Date.now(), conditionTimeoutMs))) {
    const drained = monitor.appliedTotal(outageTarget) - appliedBefore;
    const seconds = ((Date.now() - restartedAt) / 1000).toFixed(1);
    view.note(`${outageTarget}: drained: live again, ${drained} changes applied in ${seconds} s`);
  } else {
    view.note(`${outageTarget}: not live again yet; going on`);
  }
  await sleepUntil(trafficEnds);

  view.setPhase('wind-down: the traffic stops; every replica applies what is left');
  await workload.stop();
  view.note(
    `shop traffic stopped: ${workload.committed} transactions committed, ${workload.failed} rolled back`,
  );
  const caughtUp = async (): Promise<boolean> =>
    (await monitor.readStatusNow().catch(() => undefined))?.targets.every((t) => t.backlog === 0) ?? false;
  if (await waitFor(caughtUp, conditionTimeoutMs)) view.note('every replica has backlog 0');
  else view.note('a replica still has a backlog; verify waits for it');

  view.setPhase('verify: comparing every table of the source with each replica');
  checkpoint();
  return verify(config, { waitMs: conditionTimeoutMs });
}

/**
 * What the daemon does, as notes: copies done, the error that parked a target, and each state change
 * as the table shows it, with its reason (shown-state.ts).
 */
function narrate({ events, monitor, view }: ScenarioParts): void {
  const lastError = new Map<string, string>();
  events.on('sync:done', ({ target, rows, seconds }) =>
    view.note(`${target}: initial copy done, ${rows} rows in ${seconds.toFixed(1)} s`),
  );
  monitor.onStateChange((target, shown) => view.note(stateNote(target, shown)));
  events.on('target:state', ({ target, state }) => {
    if (state === 'live') lastError.delete(target);
  });
  events.on('target:error', ({ target, kind, message }) => {
    // While a server is down every retry fails the same way: say it once.
    const line = `${kind} error: ${message.split('\n')[0]}`;
    if (lastError.get(target) === line) return;
    lastError.set(target, line);
    view.note(`${target}: ${line}`);
  });
}

/** A write to the read-only replica, as an application might try by mistake: the guard refuses it. */
async function showReadOnlyGuard({ environment, view }: ScenarioParts): Promise<void> {
  const client = await connect(environment.url('reporting'), { applicationName: 'shop-app' }).catch(
    () => undefined,
  );
  if (client === undefined) return;
  try {
    await client.query('begin');
    await client.query(`update shop.orders set status = 'edited on the replica' where id = 1`);
    view.note('reporting: a direct write was ACCEPTED, which a read-only replica should refuse');
  } catch (thrown) {
    view.note(`reporting: read-only; a direct write is refused: ${coerceError(thrown).message}`);
  } finally {
    // Never keep the write, whatever happened: the replica must stay equal to the source.
    await client.query('rollback').catch(() => undefined);
    await client.end().catch(() => undefined);
  }
}
