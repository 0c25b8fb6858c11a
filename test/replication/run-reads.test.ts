// A look at a run of a backlog (src/changelog/bulk-window.ts lookAtRun) reads the log up to the run's
// end, walking its key: on a log of thousands of changes, with the statistics a fresh backlog leaves, the
// planner took a sequential scan of the whole log and a sort instead, for every run again.
import { describe, expect, it } from 'vitest';

import { lookAtRun } from '../../src/changelog/bulk-window.js';
import { openWindow, positionAt, takeTick, type Tick } from '../../src/changelog/window.js';
import { prepareReaderSession } from '../../src/apply/log-reader.js';
import { installSource } from '../../src/operator/install-source.js';
import { connect, freshDatabase, sharedClusters } from '../support/fixtures.js';
import { makeConfig } from '../support/replication.js';

describe('a look at a run', () => {
  it('reads the log up to the run, by its key, not the whole backlog', async () => {
    const src = await freshDatabase(sharedClusters().source);
    await src.cluster.query(
      `create table orders (id int primary key, note text);
       create table order_lines (order_id int references orders, line int, qty int, primary key (order_id, line))`,
      [],
      src.name,
    );
    const config = makeConfig({
      source: { url: src.url },
      tables: ['orders', 'order_lines'],
      targets: [{ name: 'dst', url: src.url, initialSync: 'none' }],
      metrics: { enabled: false },
    });
    const client = await connect(src.url);
    try {
      await installSource(client, config);
      const from = positionAt(await takeTick(client, config.schema));
      // 5,000 transactions of an order and 3 lines: 20,000 changes, as in `npm run bench -- relational`.
      await client.query(
        `do $$ begin for i in 1..5000 loop
           insert into orders values (i, 'note ' || i);
           insert into order_lines select i, l, l from generate_series(1, 3) l;
           commit;
         end loop; end $$`,
      );
      // The statistics autovacuum gathers on a busy source: the log's size, and nothing of which changes a
      // window holds (the planner cannot estimate pg_visible_in_snapshot()).
      await client.query(`analyze ${config.schema}.change_log`);
      const tick = await takeTick(client, config.schema);
      const to: Tick = { ...tick, idBound: Number(tick.idBound), idCeiling: Number(tick.idCeiling) };
      const relids = (
        await client.query<{ relid: string }>(
          `select relid::int8::text as relid from trigsync.captured_table`,
        )
      ).rows.map((r) => Number(r.relid));
      await prepareReaderSession(client);
      const reads = async () => {
        await client.query('select pg_stat_force_next_flush()');
        await client.query('select pg_stat_clear_snapshot()');
        const { rows } = await client.query<{ seq: string; fetched: string }>(
          `select coalesce(seq_tup_read, 0)::text as seq, coalesce(idx_tup_fetch, 0)::text as fetched
             from pg_stat_user_tables where relid = 'trigsync.change_log'::regclass`,
        );
        return { seq: Number(rows[0]!.seq), fetched: Number(rows[0]!.fetched) };
      };
      const before = await reads();
      const run = await lookAtRun(client, config.schema, relids, openWindow(from, to), 5_000);
      const after = await reads();
      expect(run.changes).toBe(5_000);
      expect(after.seq - before.seq, 'log rows read by a sequential scan').toBe(0);
      // The run's 5,000, and a few more: a row past each index scan, part A's probes of the txid index.
      expect(after.fetched - before.fetched, 'log rows fetched by index').toBeLessThanOrEqual(5_050);
    } finally {
      await client.end();
    }
  });
});
