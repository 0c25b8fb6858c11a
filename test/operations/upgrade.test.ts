// Upgrade (docs/operations.md, "Upgrade"): a source installed by the previous trigsync, with changes in
// its log written the old way (an UPDATE as a V row, its old image, then a U row, its new image), is
// migrated by the new daemon's install while those changes wait, and they apply as before, followed by
// the changes the new capture writes (an UPDATE as one row holding both images).
import pg from 'pg';
import { describe, expect, it } from 'vitest';

import { loadMigrations } from '../../src/capture/migrations.js';
import { triggerName } from '../../src/capture/triggers.js';
import { withClient } from '../support/cluster.js';
import { freshDatabase, sharedClusters } from '../support/fixtures.js';
import { expectSameRows, makeConfig, startDaemon, waitCaughtUp } from '../support/replication.js';

const tables = `
  create table items (id int primary key, v text, j json);
  create table lines (item int references items, n int, qty int, primary key (item, n));`;

/** The last migration of the source track before update pairs (sql/source/007). */
const previousVersion = 6;

/** What the previous trigsync's install left: its migrations, its triggers, the target registered. */
async function installPrevious(url: string, config: ReturnType<typeof makeConfig>): Promise<void> {
  await withClient(url, async (client) => {
    const schema = config.schema;
    const s = pg.escapeIdentifier(schema);
    await client.query(`create schema ${s}`);
    await client.query(
      `create table ${s}.schema_version (track text not null, version int not null, name text not null,
         applied_at timestamptz not null default now(), primary key (track, version))`,
    );
    for (const migration of loadMigrations('source', schema).filter((m) => m.version <= previousVersion)) {
      await client.query(migration.sql);
      await client.query(`insert into ${s}.schema_version values ('source', $1, $2)`, [
        migration.version,
        migration.name,
      ]);
    }
    // The previous triggers' arguments: the application_name, then the json columns.
    const triggers: [string, string, string[]][] = [
      ['items', 'insert', ['j']],
      ['items', 'update', ['j']],
      ['items', 'delete', ['j']],
      ['items', 'truncate', ['j']],
      ['lines', 'insert', []],
      ['lines', 'update', []],
      ['lines', 'delete', []],
      ['lines', 'truncate', []],
    ];
    const referencing: Record<string, string> = {
      insert: 'referencing new table as new_rows',
      update: 'referencing old table as old_rows new table as new_rows',
      delete: 'referencing old table as old_rows',
      truncate: '',
    };
    for (const [table, event, json] of triggers) {
      const args = [config.applicationName, ...json].map((a) => pg.escapeLiteral(a)).join(', ');
      await client.query(
        `create trigger ${pg.escapeIdentifier(triggerName(schema, event as 'insert'))} after ${event} on ${table}
           ${referencing[event]} for each statement execute function ${s}.capture(${args})`,
      );
    }
    // The previous registration: a tick read in three statements (the id bound, a committed xid, the
    // snapshot), without the tick table of sql/source/008.
    const bound = await client.query<{ id: string }>(
      `select coalesce(pg_sequence_last_value($1::regclass), 0) as id`,
      [`${s}.change_log_id_seq`],
    );
    const xid = await client.query<{ xid: string }>('select pg_current_xact_id()::text as xid');
    await client.query(
      `insert into ${s}.target (name, from_snapshot, from_id_bound, from_next_xid)
       select $1, pg_current_snapshot(), $2, $3::xid8`,
      [config.targets[0]!.name, bound.rows[0]!.id, xid.rows[0]!.xid],
    );
  });
}

describe('upgrade', () => {
  it('applies the old log of a source installed by the previous version, then the new one', async () => {
    const { source, target1 } = sharedClusters();
    const [src, dst] = await Promise.all([freshDatabase(source), freshDatabase(target1)]);
    for (const db of [src, dst]) await db.cluster.query(tables, [], db.name);
    const config = makeConfig({
      source: { url: src.url },
      tables: ['items', 'lines'],
      targets: [{ name: 'dst', url: dst.url, initialSync: 'none' }],
    });
    await installPrevious(src.url, config);

    // Written by the previous capture: keys kept, keys changed (also swapped in one transaction), deletes.
    const run = (sql: string) => src.cluster.query(sql, [], src.name);
    await run(`insert into items select g, 'v' || g, case when g % 3 = 0 then '{"a": null}' end::json
                 from generate_series(1, 30) g`);
    await run(`insert into lines select i, n, n from generate_series(1, 10) i, generate_series(1, 3) n`);
    await run(`update items set v = v || '!' where id <= 10`);
    await run(`update items set id = id + 100 where id between 20 and 25`);
    await run(`begin; update items set id = -26 where id = 26; update items set id = 26 where id = 27;
               update items set id = 27 where id = -26; commit`);
    await run(`update lines set qty = qty * 10 where n = 2`);
    await run(`delete from lines where item = 9`);
    await run(`delete from items where id = 9`);
    const [old] = await src.cluster.query<{ v: number; u: number }>(
      `select count(*) filter (where op = 'V')::int as v, count(*) filter (where op = 'U')::int as u
         from trigsync.change_log`,
      [],
      src.name,
    );
    expect(old).toEqual({ v: 29, u: 29 });

    // The new daemon migrates, makes the triggers anew and applies the old log, then the new one.
    const daemon = await startDaemon(config);
    await run(`update items set v = v || '?', j = '[1]' where id in (1, 12, 121)`);
    await run(`update items set id = id + 1000 where id in (14, 15)`);
    await run(`delete from lines where item = 1`);
    await waitCaughtUp(config);
    const [pairs] = await src.cluster.query<{ n: number }>(
      `select count(*)::int as n from trigsync.change_log where op = 'U' and old_row is not null`,
      [],
      src.name,
    );
    expect(pairs!.n).toBeGreaterThan(0);
    await expectSameRows(
      { url: src.url, query: 'select id, v, j::text from items' },
      { url: dst.url, query: 'select id, v, j::text from items' },
      'id',
    );
    await expectSameRows(
      { url: src.url, query: 'select * from lines' },
      { url: dst.url, query: 'select * from lines' },
      '(item, n)',
    );
    await daemon.stop();
  });
});
