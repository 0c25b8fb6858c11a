// The demo's live view over real status samples (src/demo/monitor.ts, shown-state.ts, live-view.ts): a
// replica that stops answering, then drains its backlog while writes go on, then is parked on a refused
// connection. The daemon calls a target `live` at the end of every window of the log it applies, also
// one opened seconds ago, and a target whose connection is stalled stays `live` on the source while its
// lag grows: the view must show neither as live, give every catching_up its reason, and show what a
// parked target waits on, which never enters the error queue.
import { afterEach, describe, expect, it } from 'vitest';

import { tableRows, targetSummary } from '../../src/demo/live-view.js';
import { DemoMonitor, type TargetView } from '../../src/demo/monitor.js';
import { liveLagSeconds, stateNote } from '../../src/demo/shown-state.js';
import { FaultProxy } from '../support/fault-proxy.js';
import { freshDatabase, sharedClusters, trackResource, waitFor } from '../support/fixtures.js';
import { makeConfig, startDaemon } from '../support/replication.js';
import { steadyWriter, workloadTables } from '../support/workload.js';

const proxies: FaultProxy[] = [];
afterEach(async () => {
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});

interface Rendered {
  row: string[];
  line: string;
  view: TargetView;
}

describe('the demo live view', () => {
  it('shows a replica live only within the live lag, with the reason of every other state', async () => {
    const { source, target1 } = sharedClusters();
    const [src, a] = await Promise.all([freshDatabase(source), freshDatabase(target1)]);
    for (const db of [src, a]) await db.cluster.query(workloadTables, [], db.name);
    const toTarget = await FaultProxy.start(a.url);
    proxies.push(toTarget);
    // Small chunks, so that the backlog drains in many windows of several chunks each.
    const config = makeConfig({
      source: { url: src.url },
      tables: ['items', 'events'],
      targets: [{ name: 'analytics', url: toTarget.url(a.url), initialSync: 'none' }],
      apply: { pollIntervalMs: 200, batchSize: 100 },
      retry: { initialDelayMs: 100, maxDelayMs: 500 },
    });
    const daemon = await startDaemon(config);
    const monitor = new DemoMonitor(config, daemon.events, () => ({ committed: 0, failed: 0 }));
    let stopped = false;
    trackResource({ what: 'the demo monitor', isOpen: () => !stopped, close: () => monitor.stop() });
    const notes: string[] = [];
    monitor.onStateChange((target, shown) => notes.push(stateNote(target, shown)));
    const rendered: Rendered[] = [];
    /** A status sample, rendered as the table's row and the plain status line show it. */
    const sample = async (): Promise<TargetView> => {
      await monitor.readStatusNow();
      const view = monitor.snapshot().targets[0]!;
      rendered.push({ row: tableRows([view])[0]!, line: targetSummary(view), view });
      return view;
    };
    const writer = steadyWriter(src.url, 5);

    await waitFor(async () => (await sample()).state === 'live', { what: 'the replica to be live' });

    // The target stops answering: no error, so the worker waits inside its window, and the source's
    // record of the target still says live while the changes pile up.
    toTarget.partition();
    const stalled = await waitFor(
      async () => {
        const view = await sample();
        return view.lagSeconds !== undefined && view.lagSeconds > liveLagSeconds + 3 && view;
      },
      { what: 'the lag to pass the live lag', timeoutMs: 20_000 },
    );
    const recorded = (await monitor.readStatusNow()).targets[0]!;
    expect(recorded.state, 'the daemon records a stalled target as live').toBe('live');
    expect(stalled.state).toBe('catching_up');
    expect(stalled.reason).toMatch(/^[\d,]+ changes behind, oldest \d+\.\ds old$/);

    // It answers again, slowly: it drains the backlog in windows while the writes go on. The daemon says
    // catching_up until a window fits in one chunk, then live.
    const daemonStates: string[] = [];
    daemon.events.on('target:state', ({ state }) => daemonStates.push(state));
    toTarget.setLatency(20);
    toTarget.heal();
    const drainedAt = rendered.length;
    await waitFor(async () => (await sample()).state === 'live', {
      what: 'the replica to drain its backlog',
      timeoutMs: 60_000,
    });
    // Writes go on after the drain: the view must stay truthful while the windows shrink.
    const liveAt = rendered.length;
    await waitFor(async () => (await sample()) && rendered.length >= liveAt + 20, {
      what: 'twenty more samples',
      timeoutMs: 30_000,
    });
    expect(rendered.slice(drainedAt).some((r) => r.row[1] === 'catching_up')).toBe(true);
    expect(daemonStates.slice(0, 2)).toEqual(['catching_up', 'live']);

    // A refused connection: the target parks (cut first, then refused), and the error queue stays empty.
    await toTarget.close();
    const parked = await waitFor(
      async () => {
        const view = await sample();
        return view.state === 'parked' && view.errors.includes('ECONNREFUSED') && view;
      },
      { what: 'the replica to park on a refused connection', timeoutMs: 20_000 },
    );
    expect(parked.errorQueue).toBe(0);
    const last = rendered.at(-1)!;
    expect(last.row[1]).toBe('parked');
    expect(last.row[6]).toMatch(/^parked: connection error: .*ECONNREFUSED/);
    expect(last.line).toMatch(
      /^analytics parked backlog \d+ lag [\d.]+s \d+\/s applied \d+ errors parked: connection error: /,
    );
    // The note came at the first error: the cut connection's.
    expect(notes.at(-1)).toMatch(/^analytics: parked: connection error: /);

    await writer.stop();
    await monitor.stop();
    stopped = true;
    await daemon.stop();

    // Over every sample: live never beside a lag beyond the live lag, in the table and the status line.
    for (const { row, line, view } of rendered) {
      if (row[1] === 'live') expect(view.lagSeconds, line).toBeLessThanOrEqual(liveLagSeconds);
      const lag = /^analytics live backlog \d+ lag ([\d.]+)s/.exec(line)?.[1];
      if (lag !== undefined) expect(Number(lag), line).toBeLessThanOrEqual(liveLagSeconds);
      if (row[1] === 'catching_up') expect(view.reason, line).toMatch(/changes? behind/);
    }
    // Every change of state in the notes: live, or another state with its reason beside it.
    for (const note of notes)
      expect(note).toMatch(/^analytics: (live|catching_up: [\d,]+ changes? behind|parked: .+)/);
  }, 120_000);
});
