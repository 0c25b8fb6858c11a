// What a worker calls its state (SPEC §4 status): live is within one chunk of the source. A target that
// drains a backlog while more commits stays catching_up until a window of the log fits in one chunk; it
// used to say live at every window's end and catching_up again at the next one's first chunk, so a
// replica that had drained was shown flipping between the two.
import { describe, expect, it } from 'vitest';

import type { TargetState } from '../../src/lib/status-report.js';
import { connect, freshDatabase, sharedClusters, waitFor } from '../support/fixtures.js';
import { makeConfig, startDaemon, waitCaughtUp } from '../support/replication.js';

describe("a worker's state", () => {
  it('stays catching_up through a backlog that spans windows, then turns live once', async () => {
    const { source, target1 } = sharedClusters();
    const [src, dst] = await Promise.all([freshDatabase(source), freshDatabase(target1)]);
    for (const db of [src, dst])
      await db.cluster.query('create table items (id int primary key, v text)', [], db.name);
    const config = makeConfig({
      source: { url: src.url },
      tables: ['items'],
      targets: [{ name: 'dst', url: dst.url, initialSync: 'none' }],
      apply: { batchSize: 10 },
    });
    const first = await startDaemon(config);
    await waitCaughtUp(config);
    await first.stop();

    // The backlog: 1,000 changes, a window of 100 chunks. A late transaction commits while that window
    // applies: its 100 changes are the next window, of 10 chunks.
    const writer = await connect(src.url);
    await writer.query(`insert into items select g, 'backlog' from generate_series(1, 1000) g`);
    const late = await connect(src.url);
    await late.query('begin');
    await late.query(`insert into items select g, 'late' from generate_series(1001, 1100) g`);
    let lateCommitted: Promise<unknown> | undefined;
    const states: TargetState[] = [];
    const daemon = await startDaemon(config, undefined, (d) => {
      d.events.on('target:state', ({ state }) => states.push(state));
      d.events.on('batch:applied', () => {
        lateCommitted ??= late.query('commit');
      });
    });
    await waitFor(
      async () =>
        Number(
          (await dst.cluster.query<{ n: string }>('select count(*) as n from items', [], dst.name))[0]!.n,
        ) === 1100 && states.at(-1) === 'live',
      { what: 'the target to hold every row and be live' },
    );
    await lateCommitted;
    expect(states, JSON.stringify(states)).toEqual(['catching_up', 'live']);
    await daemon.stop();
    await Promise.all([writer.end(), late.end()]);
  });
});
