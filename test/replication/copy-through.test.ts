// G1 and G6 for runs of inserts copied through from the source (src/apply/copy-through.ts): writers that
// insert in bulk, parents with children, transactions that commit seconds late, now and then an update or a delete that breaks a
// run, and the daemon, run as users run it, killed with SIGKILL three times and started again (each
// restart finds a backlog, whose runs go by COPY). The target converges, with runs copied through.
import { describe, expect, it } from 'vitest';
import pg from 'pg';

import { freshDatabase, sharedClusters } from '../support/fixtures.js';
import { ChildDaemon, expectSameItems, makeConfig, waitCaughtUp } from '../support/replication.js';
import { delay } from '../support/wait.js';

const tables = `
  create table bulk (id bigint primary key, writer int not null, v text, at timestamptz default now());
  create table note (id bigint primary key, bulk_id bigint not null references bulk on delete cascade, v text);`;

/**
 * Until `until`, transactions of 200-900 rows and a note on every other one (parents with children);
 * one in forty updates or deletes a few rows instead (deletes cascade to notes).
 */
async function bulkWriter(url: string, writer: number, until: number): Promise<number> {
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  let committed = 0;
  try {
    for (let n = 0; Date.now() < until; n++) {
      if (n % 40 === 39) {
        await db.query(
          n % 80 === 39
            ? `update bulk set v = v || 'u' where id % 97 = $1 and id > (select max(id) - 2000 from bulk)`
            : `delete from bulk where id % 89 = $1 and id > (select max(id) - 2000 from bulk)`,
          [writer],
        );
      } else {
        const rows = 200 + Math.floor(Math.random() * 700);
        await db.query('begin');
        const inserted = await db.query<{ id: string }>(
          `insert into bulk (id, writer, v) select nextval('bulk_id'), $1, md5(g::text) || E'\\t\\\\'
             from generate_series(1, $2::int) g returning id`,
          [writer, rows],
        );
        await db.query(
          `insert into note select id, id, 'note ' || id from unnest($1::bigint[]) id where id % 2 = 0`,
          [inserted.rows.map((r) => r.id)],
        );
        await db.query('commit');
      }
      committed++;
    }
  } finally {
    await db.end();
  }
  return committed;
}

/** Until `until`, transactions of 3,000 rows held open 0.5-2 s after their insert, then committed. */
async function lateCommitter(url: string, writer: number, until: number): Promise<number> {
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  let committed = 0;
  try {
    while (Date.now() < until) {
      await db.query('begin');
      await db.query(
        `insert into bulk (id, writer, v) select nextval('bulk_id'), $1, 'late ' || g from generate_series(1, 3000) g`,
        [writer],
      );
      await delay(500 + Math.random() * 1500);
      await db.query('commit');
      committed++;
    }
  } finally {
    await db.end();
  }
  return committed;
}

describe('runs copied through', () => {
  it('lose and double nothing under bulk writers, late committers and three SIGKILLs', async () => {
    const { source, target1 } = sharedClusters();
    const src = await freshDatabase(source);
    const dst = await freshDatabase(target1);
    await source.query(`${tables}; create sequence bulk_id`, [], src.name);
    await target1.query(tables, [], dst.name);
    const raw = {
      source: { url: src.url },
      tables: ['bulk', 'note'],
      targets: [{ name: 'dst', url: dst.url, initialSync: 'none' }],
      apply: { pollIntervalMs: 100 },
      metrics: { enabled: false },
      log: { level: 'debug' },
    };
    const config = makeConfig(raw);
    const daemon = await ChildDaemon.create(raw);
    await daemon.start();

    const durationMs = 12_000;
    const until = Date.now() + durationMs;
    const load = Promise.all([
      ...[1, 2, 3, 4].map((w) => bulkWriter(src.url, w, until)),
      ...[5, 6].map((w) => lateCommitter(src.url, w, until)),
    ]);
    // Down a moment each time: the restart finds a backlog.
    await daemon.killThreeTimes(durationMs, 300);
    const committed = await load;
    expect(committed.slice(4).every((n) => n > 0)).toBe(true);

    await waitCaughtUp(config);
    for (const table of ['bulk', 'note']) await expectSameItems(src.url, dst.url, table);
    const runs = (await daemon.log()).split('\n').filter((line) => line.includes('copied through'));
    expect(runs.length).toBeGreaterThan(0);
    // Runs of parents with their children: both tables in one run, parents first.
    expect(runs.some((line) => line.includes('"tables":["public.bulk","public.note"]'))).toBe(true);
    expect(await daemon.stop()).toBe(0);
  });
});
