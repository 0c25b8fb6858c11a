// What a worker calls its state (SPEC §4 status): live is within one chunk of the source. A target that
// drains a backlog while more commits stays catching_up until a window of the log fits in one chunk; it
// used to say live at every window's end and catching_up again at the next one's first chunk, so a
// replica that had drained was shown flipping between the two.
import { describe, expect, it } from 'vitest';

import { loadAppliedPosition } from '../../src/apply/applied-position.js';
import { sourceOrigin } from '../../src/capture/install.js';
import { loadRegisteredPosition } from '../../src/changelog/targets.js';
import type { Config } from '../../src/config/types.js';
import type { TargetState } from '../../src/lib/status-report.js';
import { withClient } from '../support/cluster.js';
import { connect, waitFor } from '../support/fixtures.js';
import { caughtUpPair, startDaemon, waitCaughtUp } from '../support/replication.js';

describe("a worker's state", () => {
  it('stays catching_up through a backlog that spans windows, then turns live once', async () => {
    const { src, dst, config } = await caughtUpPair({ batchSize: 10 });

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

  it('copies its position to the source now and then while busy, whole at once when idle or stopped', async () => {
    // One change a batch: a backlog of 600 changes is 600 batches in one window.
    const { src, dst, config } = await caughtUpPair({ batchSize: 1 });
    // Every write of the source's copy counted.
    await src.cluster.query(
      `create table copies (n int); insert into copies values (0);
       create function count_copy() returns trigger language plpgsql as
         $$ begin update copies set n = n + 1; return null; end $$;
       create trigger count_copy after update on trigsync.target for each row execute function count_copy()`,
      [],
      src.name,
    );
    await withClient(src.url, async (writer) => {
      for (let i = 1; i <= 600; i++) await writer.query(`insert into items values ($1, 'backlog')`, [i]);
    });
    const copiesOf = async () =>
      Number((await src.cluster.query<{ n: number }>('select n from copies', [], src.name))[0]!.n);
    const targetRows = async () =>
      Number((await dst.cluster.query<{ n: string }>('select count(*) as n from items', [], dst.name))[0]!.n);

    // Stopped in the middle of the backlog: the copy is the target's own record.
    let batches = 0;
    let daemon = await startDaemon(config, undefined, (d) => d.events.on('batch:applied', () => batches++));
    await waitFor(() => Promise.resolve(batches >= 200), { what: '200 batches applied' });
    await daemon.stop();
    expect(await copiedPosition(config, src.url, dst.url)).toEqual(
      await targetRecord(config, src.url, dst.url),
    );
    expect(await copiesOf(), `copies for ${batches} batches`).toBeLessThan(batches);

    // The rest, then idle: the copy is whole, every change counted once.
    daemon = await startDaemon(config, undefined, (d) => d.events.on('batch:applied', () => batches++));
    await waitFor(async () => (await targetRows()) === 600, { what: 'the target to hold every row' });
    await waitCaughtUp(config);
    expect(await copiedPosition(config, src.url, dst.url)).toEqual(
      await targetRecord(config, src.url, dst.url),
    );
    const copied = await withClient(src.url, (c) => loadRegisteredPosition(c, config.schema, 'dst'));
    expect(copied!.appliedChanges).toBe(600);
    expect(batches).toBe(600);
    expect(await copiesOf(), `copies for ${batches} batches`).toBeLessThan(batches / 2);
    await daemon.stop();
  });
});

/** The source's copy of target dst's position. */
async function copiedPosition(config: Config, sourceUrl: string, _targetUrl: string) {
  return withClient(
    sourceUrl,
    async (c) => (await loadRegisteredPosition(c, config.schema, 'dst'))!.position,
  );
}

/** Target dst's own record of its position. */
async function targetRecord(config: Config, sourceUrl: string, targetUrl: string) {
  const origin = await withClient(sourceUrl, (c) => sourceOrigin(c, config.schema));
  return withClient(targetUrl, (c) => loadAppliedPosition(c, config.schema, origin, 'dst'));
}
