// Schema drift (issue #9): tables altered under a running daemon, on the source or on a target. Each case
// ends either handled (the changes keep flowing, nothing differs) or in a parked target whose error names
// the table and the problem, with nothing later applied out of order and nothing lost once it is fixed.
// docs/operations.md ("Schema changes") says what to do for each.
import { describe, expect, it } from 'vitest';

import { catalogVersions, describeRelids, sameShape } from '../../src/capture/catalog.js';
import type { Config } from '../../src/config/types.js';
import type { Daemon } from '../../src/daemon/daemon.js';
import { withClient } from '../support/cluster.js';
import { freshDatabase, sharedClusters, waitFor, type FreshDatabase } from '../support/fixtures.js';
import {
  collectingLogger,
  configFile,
  conflictsCounted,
  expectSameRows,
  makeConfig,
  runCli,
  startDaemon,
  targetStatus,
  waitCaughtUp,
} from '../support/replication.js';

const table = 'create table items (id int primary key, v text not null, n int)';

interface Drift {
  src: FreshDatabase;
  b: FreshDatabase;
  raw: Record<string, unknown>;
  config: Config;
  daemon: Daemon;
  log: string[];
  /** Insert rows [from, from + count) on the source, each in its own transaction. */
  write(from: number, count: number, columns?: string, values?: string): Promise<void>;
  /** Run SQL on the source or the target database. */
  onSource(sql: string): Promise<Record<string, unknown>[]>;
  onTarget(sql: string): Promise<Record<string, unknown>[]>;
  /** Expect the source's and the target's rows equal over `columns`. */
  expectSame(columns: string, where?: string): Promise<void>;
  /** Wait for the target to park with an error matching `pattern`. */
  parkedWith(pattern: RegExp): Promise<string>;
}

/** A source and a target on the shared clusters, 20 rows replicated, the daemon in this process. */
async function drift(): Promise<Drift> {
  const { source, target1 } = sharedClusters();
  const [src, b] = await Promise.all([freshDatabase(source), freshDatabase(target1)]);
  for (const db of [src, b]) await db.cluster.query(table, [], db.name);
  const raw = {
    source: { url: src.url },
    tables: ['items'],
    targets: [{ name: 'b', url: b.url, initialSync: 'none' }],
    apply: { pollIntervalMs: 100 },
    retry: { initialDelayMs: 100, maxDelayMs: 1_000, dataErrorDelayMs: 300 },
    metrics: { enabled: false },
  };
  const config = makeConfig(raw);
  const { logger, lines } = collectingLogger();
  const daemon = await startDaemon(config, logger);
  const onSource = (sql: string) => src.cluster.query<Record<string, unknown>>(sql, [], src.name);
  const onTarget = (sql: string) => b.cluster.query<Record<string, unknown>>(sql, [], b.name);
  const d: Drift = {
    src,
    b,
    raw,
    config,
    daemon,
    log: lines,
    onSource,
    onTarget,
    async write(from, count, columns = 'id, v, n', values = `$1::int, 'row ' || $1::int, $1::int`) {
      for (let id = from; id < from + count; id++) {
        await src.cluster.query(`insert into items (${columns}) select ${values}`, [id], src.name);
      }
    },
    expectSame: (columns, where = 'true') =>
      expectSameRows(
        { url: src.url, query: `select ${columns} from items where ${where}` },
        { url: b.url, query: `select ${columns} from items where ${where}` },
        'id',
      ),
    async parkedWith(pattern) {
      let last = '';
      await waitFor(
        async () => {
          const status = await targetStatus(config, 'b');
          last = status.lastError ?? '';
          return status.state === 'parked' && pattern.test(last);
        },
        { what: `target b parked with an error matching ${pattern}`, timeoutMs: 30_000 },
      ).catch((thrown: unknown) => {
        throw new Error(`${String(thrown)}; last error: ${last}\n${lines.slice(-20).join('')}`);
      });
      return last;
    },
  };
  await d.write(1, 20);
  await d.onSource(`update items set v = v || '!' where id <= 5`);
  await waitCaughtUp(config);
  return d;
}

/** Rows of the target, to prove that a parked target took nothing after the change it stopped at. */
async function targetCount(d: Drift): Promise<number> {
  const [row] = await d.onTarget('select count(*)::int as n from items');
  return (row as { n: number }).n;
}

describe('schema drift', () => {
  it('a nullable column added on the source that the target lacks is skipped with a warning, and follows once added and synced', async () => {
    const d = await drift();
    await d.onSource('alter table items add column note text');
    await d.write(21, 10, 'id, v, n, note', `$1::int, 'row ' || $1::int, $1::int, 'note ' || $1::int`);
    await d.onSource(`update items set note = 'later', v = v || '?' where id in (3, 25)`);
    await waitCaughtUp(d.config);
    await d.expectSame('id, v, n');
    expect(d.log.join('\n')).toMatch(/target table lacks nullable column\(s\) note of the source/);
    expect(await conflictsCounted(d.daemon)).toBe(0);

    // The operator adds the column on the target and recopies the table: the values arrive.
    await d.onTarget('alter table items add column note text');
    const synced = await runCli(await configFile(d.raw), 'sync', 'b', '--table', 'items');
    expect(synced.code).toBe(0);
    await d.write(31, 5, 'id, v, n, note', `$1::int, 'row ' || $1::int, $1::int, 'new ' || $1::int`);
    await waitCaughtUp(d.config);
    await d.expectSame('*');
    await d.daemon.stop();
  });

  it('columns added with defaults, target first, while changes captured before wait: those rows get the value older rows hold, by every path', async () => {
    const d = await drift();
    // A backlog captured before the columns exist: a few updates and an insert (statements), a large
    // insert (copied through from the source's log), a large insert with an update in one transaction
    // (rows by COPY from the daemon).
    await d.daemon.stop();
    await d.onSource(`update items set n = -n where id <= 5; insert into items values (21, 'one', 21)`);
    await d.onSource(`insert into items select g, 'bulk', g from generate_series(100, 3099) g`);
    await d.onSource(`begin;
      insert into items select g, 'mixed', g from generate_series(5000, 7999) g;
      update items set v = 'mixed!' where id = 5000;
      commit`);
    const added = `alter table items add column tag text not null default 'a b\\tc',
                                  add column level int default 7, add column plain text`;
    await d.onTarget(added);
    await d.onSource(added);
    await d.onSource(`update items set n = 0, level = 8 where id in (3, 6, 100)`);
    const again = await startDaemon(d.config);
    try {
      await waitCaughtUp(d.config);
      await d.expectSame('*');
      const tags = await d.onTarget(
        `select count(*)::int as n from items where tag = 'a b\\tc' and plain is null`,
      );
      expect(tags).toEqual([{ n: 6021 }]);
      expect(await conflictsCounted(again)).toBe(0);
    } finally {
      await again.stop();
    }
  });

  it('with standard_conforming_strings off on both servers, a default holding backslashes reaches older rows as it is', async () => {
    const d = await drift();
    await d.daemon.stop();
    // trigsync writes such a value into its own SQL text, on the source (rows copied through) and on the
    // target (rows by statement): a plain literal would read its backslash as an escape.
    for (const db of [d.src, d.b]) {
      await db.cluster.query(`alter database "${db.name}" set standard_conforming_strings = off`);
    }
    await d.onSource(`update items set n = -n where id <= 5`);
    await d.onSource(`insert into items select g, 'bulk', g from generate_series(100, 2099) g`);
    // E'': read alike whatever the setting. The value is a, space, b, backslash, t, c.
    const added = `alter table items add column tag text not null default E'a b\\\\tc'`;
    await d.onTarget(added);
    await d.onSource(added);
    const again = await startDaemon(d.config);
    try {
      await waitCaughtUp(d.config);
      await d.expectSame('*');
      const tags = await d.onTarget(`select count(*)::int as n from items where tag = E'a b\\\\tc'`);
      expect(tags).toEqual([{ n: 2020 }]);
    } finally {
      await again.stop();
    }
  });

  it('a column added with a default to a partitioned table takes the value its partitions give older rows', async () => {
    const { source, target1 } = sharedClusters();
    const [src, b] = await Promise.all([freshDatabase(source), freshDatabase(target1)]);
    const partitioned = `create table events (id int, at date, v text, primary key (id, at)) partition by range (at);
      create table events_h1 partition of events for values from ('2024-01-01') to ('2024-07-01');
      create table events_h2 partition of events for values from ('2024-07-01') to ('2025-01-01')`;
    for (const db of [src, b]) await db.cluster.query(partitioned, [], db.name);
    const config = makeConfig({
      source: { url: src.url },
      tables: ['events'],
      targets: [{ name: 'b', url: b.url, initialSync: 'none' }],
    });
    await startDaemon(config).then(async (daemon) => {
      await waitCaughtUp(config);
      await daemon.stop();
    });
    await src.cluster.query(
      `insert into events select g, date '2024-01-01' + g, 'old' from generate_series(1, 300) g;
       update events set v = 'changed' where id % 10 = 0`,
      [],
      src.name,
    );
    const added = `alter table events add column source text not null default 'app'`;
    await b.cluster.query(added, [], b.name);
    await src.cluster.query(added, [], src.name);
    const daemon = await startDaemon(config);
    try {
      await waitCaughtUp(config);
      const query = `select * from events`;
      await expectSameRows({ url: src.url, query }, { url: b.url, query }, 'id');
      expect(await conflictsCounted(daemon)).toBe(0);
    } finally {
      await daemon.stop();
    }
  });

  it('a row filter over a column added with a default sees, in changes captured before it, the value older rows hold', async () => {
    const { source, target1 } = sharedClusters();
    const [src, b] = await Promise.all([freshDatabase(source), freshDatabase(target1)]);
    for (const db of [src, b]) await db.cluster.query(table, [], db.name);
    // The target registered, then changes captured before the column exists, the daemon stopped.
    const before = makeConfig({
      source: { url: src.url },
      tables: ['items'],
      targets: [{ name: 'b', url: b.url, initialSync: 'none' }],
    });
    await startDaemon(before).then(async (daemon) => {
      await waitCaughtUp(before);
      await daemon.stop();
    });
    await src.cluster.query(
      `insert into items select g, 'old', g from generate_series(1, 30) g`,
      [],
      src.name,
    );
    const added = `alter table items add column region text not null default 'eu'`;
    await b.cluster.query(added, [], b.name);
    await src.cluster.query(added, [], src.name);
    await src.cluster.query(
      `insert into items values (31, 'new', 31, 'us'), (32, 'new', 32, 'eu')`,
      [],
      src.name,
    );
    const config = makeConfig({
      source: { url: src.url },
      tables: ['items'],
      targets: [
        { name: 'b', url: b.url, initialSync: 'none', tables: [{ source: 'items', where: "region = 'eu'" }] },
      ],
    });
    const daemon = await startDaemon(config);
    try {
      await waitCaughtUp(config);
      const rows = await b.cluster.query<{ n: number }>(`select count(*)::int as n from items`, [], b.name);
      expect(rows).toEqual([{ n: 31 }]);
    } finally {
      await daemon.stop();
    }
  });

  it('a json and an hstore column added under the daemon are captured exactly once it has made the triggers anew', async () => {
    const d = await drift();
    for (const run of [(sql: string) => d.onSource(sql), (sql: string) => d.onTarget(sql)]) {
      await run('create extension if not exists hstore');
      await run('alter table items add column j json, add column h hstore');
    }
    // The leader remakes the triggers of an altered table within a few seconds; it logs when it has.
    await waitFor(() => Promise.resolve(d.log.join('').includes('capture triggers made anew')), {
      what: 'the capture triggers made anew',
      timeoutMs: 20_000,
    });
    await d.write(
      21,
      5,
      'id, v, n, j, h',
      `$1::int, 'r', $1::int, case when $1::int % 2 = 0 then 'null' end::json, 'a=>1, "b c"=>NULL'`,
    );
    await d.onSource(
      `update items set h = h || 'x=>"y\\"z"'::hstore, j = '{"k": [1, null]}' where id in (3, 22)`,
    );
    await waitCaughtUp(d.config);
    // SQL NULL and JSON null stay apart, and hstore arrives whole: compare their text, and which are null.
    await d.expectSame('id, v, n, j::text, j is null as j_null, h::text');
    await d.daemon.stop();
  });

  it('a NOT NULL column added on the source parks the target naming table and column; added on the target, it drains with nothing lost', async () => {
    const d = await drift();
    await d.onSource('alter table items add column flag int not null default 7');
    await d.write(21, 10, 'id, v, n, flag', `$1::int, 'row ' || $1::int, $1::int, $1::int % 3`);
    const error = await d.parkedWith(/lacks column\(s\) flag/);
    expect(error).toMatch(/items/);
    expect(await targetCount(d)).toBe(20);

    await d.onTarget('alter table items add column flag int not null default 7');
    await waitCaughtUp(d.config);
    await d.expectSame('*');
    await d.daemon.stop();
  });

  it('a column dropped on the source: the target keeps it and replication goes on without conflicts', async () => {
    const d = await drift();
    await d.onSource('alter table items drop column n');
    await d.write(21, 10, 'id, v', `$1::int, 'row ' || $1::int`);
    // Updates of rows written before the drop: without planning again, the old row would not match.
    await d.onSource(`update items set v = v || '+' where id in (2, 7, 22)`);
    await d.onSource('delete from items where id in (8, 23)');
    await waitCaughtUp(d.config);
    await d.expectSame('id, v');
    expect(await conflictsCounted(d.daemon)).toBe(0);
    await d.daemon.stop();
  });

  it('a column retyped on the source: values the target type reads flow; one it refuses parks the change named; fixing the target drains', async () => {
    const d = await drift();
    await d.onSource('alter table items alter column n type text');
    await d.write(21, 5, 'id, v, n', `$1::int, 'row ' || $1::int, ($1::int * 2)::text`);
    await waitCaughtUp(d.config);
    await d.expectSame('id, v, n::text');

    await d.write(26, 1, 'id, v, n', `$1::int, 'row ' || $1::int, 'twenty-six'`);
    await d.write(27, 3);
    const error = await d.parkedWith(/invalid input syntax for type integer/);
    expect(error).toMatch(/twenty-six/);
    const queued = await d.src.cluster.query<{ table_name: string; key: string }>(
      'select table_name, key::text as key from trigsync.error_queue',
      [],
      d.src.name,
    );
    expect(queued).toEqual([{ table_name: 'public.items', key: '{"id":26}' }]);
    expect(await targetCount(d)).toBe(25);

    await d.onTarget('alter table items alter column n type text');
    await waitCaughtUp(d.config);
    await d.expectSame('id, v, n::text');
    await d.daemon.stop();
  });

  it('a column dropped on the target: a nullable one is skipped with a warning, a NOT NULL one parks the target naming it until restored', async () => {
    const d = await drift();
    await d.onTarget('alter table items drop column n');
    await d.write(21, 5);
    await waitCaughtUp(d.config);
    await d.expectSame('id, v');
    expect(d.log.join('\n')).toMatch(/target table lacks nullable column\(s\) n of the source/);

    await d.onTarget('alter table items drop column v');
    await d.write(26, 5);
    const error = await d.parkedWith(/lacks column\(s\) v/);
    expect(error).toMatch(/public\.items/);
    expect(await targetCount(d)).toBe(25);

    await d.onTarget('alter table items add column v text, add column n int');
    await waitCaughtUp(d.config);
    await d.expectSame('id, v, n', 'id > 25');
    await d.expectSame('id');
    await d.daemon.stop();
  });

  it('a target table dropped parks the target naming it; re-created and synced, the target is whole again', async () => {
    const d = await drift();
    await d.onTarget('drop table items');
    await d.write(21, 10);
    const error = await d.parkedWith(/items/);
    expect(error).toMatch(/does not exist/);

    await d.onTarget(table);
    const synced = await runCli(await configFile(d.raw), 'sync', 'b', '--table', 'items');
    expect(synced.code).toBe(0);
    await d.write(31, 5);
    await waitCaughtUp(d.config);
    await d.expectSame('*');
    await d.daemon.stop();
  });

  it('a captured table renamed on the source keeps replicating; the next start names the table the config lacks', async () => {
    const d = await drift();
    await d.onSource('alter table items rename to goods');
    await d.onSource(`insert into goods select g, 'renamed', g from generate_series(21, 30) g`);
    await waitCaughtUp(d.config);
    await d.daemon.stop();
    await expectSameRows(
      { url: d.src.url, query: 'select * from goods' },
      { url: d.b.url, query: 'select * from items' },
      'id',
    );
    await d.onSource(`insert into goods select g, 'while down', g from generate_series(31, 40) g`);
    await expect(startDaemon(d.config)).rejects.toThrow(/items does not exist on the source/);

    // The config names the new source table and maps it to the old target table: nothing was lost.
    const renamed = makeConfig({
      ...d.raw,
      tables: ['goods'],
      targets: [
        { name: 'b', url: d.b.url, initialSync: 'none', tables: [{ source: 'goods', target: 'items' }] },
      ],
    });
    const daemon = await startDaemon(renamed);
    await d.onSource(`update goods set v = 'after' where id in (1, 35)`);
    await waitCaughtUp(renamed);
    await expectSameRows(
      { url: d.src.url, query: 'select * from goods' },
      { url: d.b.url, query: 'select * from items' },
      'id',
    );
    await daemon.stop();
  });

  it('a captured table dropped on the source: its changes up to the drop arrive; the next start names it', async () => {
    const d = await drift();
    await d.write(21, 30);
    await d.onSource(`update items set v = 'last' where id > 40`);
    const [before] = await d.onSource(
      'select count(*)::int as count, sum(hashtext(t::text))::text as hash from items t',
    );
    await d.onSource('drop table items');
    await waitCaughtUp(d.config);
    const [after] = await d.onTarget(
      'select count(*)::int as count, sum(hashtext(t::text))::text as hash from items t',
    );
    expect(after).toEqual(before);
    await d.daemon.stop();
    await expect(startDaemon(d.config)).rejects.toThrow(/items does not exist on the source/);
  });
});

describe("a table's catalog version", () => {
  it('moves with every change that changes its description, so a worker never keeps a stale one', async () => {
    const db = await freshDatabase(sharedClusters().source);
    await withClient(db.url, async (client) => {
      await client.query('create table items (id int primary key, v text, n int, c varchar(10))');
      const relid = Number(
        (await client.query<{ oid: string }>(`select 'items'::regclass::oid as oid`)).rows[0]!.oid,
      );
      const seen = async () => {
        const [described] = [...(await describeRelids(client, [relid])).values()];
        return { described: described!, version: (await catalogVersions(client, [relid])).get(relid)! };
      };
      let before = await seen();
      expect(before.version).toBe(before.described.version);
      const changes = [
        'alter table items add column note text',
        'alter table items drop column note',
        'alter table items alter column n type bigint',
        'alter table items alter column c type varchar(20)',
        'alter table items alter column v set not null',
        'alter table items rename column n to amount',
        'alter table items add column g int generated always as (id * 2) stored',
        'alter table items drop constraint items_pkey',
        'alter table items add primary key (id, v)',
        'create unique index items_amount on items (amount)',
        'create unique index concurrently items_v on items (v)',
        'alter table items alter column amount set not null',
        'create rule no_delete as on delete to items do instead nothing',
      ];
      for (const change of changes) {
        await client.query(change);
        const after = await seen();
        expect(after.version, change).not.toBe(before.version);
        // The version read alone is the description's own.
        expect(after.version, change).toBe(after.described.version);
        before = after;
      }
      // A grant rewrites the table's pg_class row: the version moves with the description unchanged
      // (read again, found the same; no plan rebuilt).
      await client.query('grant select on items to public');
      const granted = await seen();
      expect(sameShape(before.described, granted.described)).toBe(true);
      expect(granted.version).not.toBe(before.version);
    });
  });
});

describe('a column added to a captured table', () => {
  it('is captured from its first write, its SQL NULLs apart from JSON nulls, whichever capture serves the table', async () => {
    // `plain` is captured by capture_rows(), which notes no SQL NULLs; `tagged` (an hstore column) by
    // capture(), whose triggers named the json columns they had when made: none.
    const { source, target1 } = sharedClusters();
    const [src, dst] = await Promise.all([freshDatabase(source), freshDatabase(target1)]);
    const ddl = `create extension hstore;
      create table plain (id int primary key, v text);
      create table tagged (id int primary key, attrs hstore)`;
    for (const db of [src, dst]) await db.cluster.query(ddl, [], db.name);
    const config = makeConfig({
      source: { url: src.url },
      tables: ['plain', 'tagged'],
      targets: [{ name: 'b', url: dst.url, initialSync: 'none' }],
      retry: { initialDelayMs: 100, maxDelayMs: 1_000 },
      metrics: { enabled: false },
    });
    const onSource = (sql: string) => src.cluster.query(sql, [], src.name);
    let daemon = await startDaemon(config);
    await onSource(`insert into plain values (0, 'before'); insert into tagged values (0, 'a=>1')`);
    await waitCaughtUp(config);
    await daemon.stop();

    // The migration and the writes after it while no daemon runs: the triggers are those made before.
    const writes = (table: string, from: number) =>
      `insert into ${table} (id, body) values (${from}, null), (${from + 1}, 'null'), (${from + 2}, '{"k": null}');
       update ${table} set body = null where id = 0;
       update ${table} set body = 'null' where id = ${from + 2}`;
    // tagged gains two more columns, a text and an hstore, written with the json one.
    const more = (from: number) =>
      `update tagged set note = 'noted ' || id, more = hstore('id', id::text) where id between ${from} and ${from + 2};
       insert into tagged values (${from + 5}, 'b=>2', null, 'new', 'x=>"y z"')`;
    for (const db of [src, dst]) {
      await db.cluster.query(
        'alter table plain add column body jsonb; alter table tagged add column body json, add column note text, add column more hstore',
        [],
        db.name,
      );
    }
    await onSource(`${writes('plain', 1)}; ${writes('tagged', 1)}; ${more(1)}`);
    daemon = await startDaemon(config);
    // The daemon's start made the triggers anew: writes from now on are noted by them.
    await onSource(`${writes('plain', 11)}; ${writes('tagged', 11)}; ${more(11)}`);
    await waitCaughtUp(config);
    const rows = (table: string) => `select id, body::text as body, body is null as sql_null from ${table}`;
    const tagged =
      'select id, attrs::text, body::text as body, body is null as sql_null, note, more::text from tagged';
    // capture() takes the new columns from their first write: every value arrives as it is.
    await expectSameRows({ url: src.url, query: tagged }, { url: dst.url, query: tagged }, 'id');
    // capture_rows() noted nothing before its triggers were made anew: its SQL NULLs arrive as such, and
    // a JSON null written then arrives as SQL NULL too (docs/operations.md, "Schema changes").
    const before = 'id < 10';
    await expectSameRows(
      { url: src.url, query: `${rows('plain')} where ${before} and body::text is distinct from 'null'` },
      { url: dst.url, query: `${rows('plain')} where ${before} and (id = 0 or id = 1)` },
      'id',
    );
    const [arrived] = await dst.cluster.query<{ n: number }>(
      `select count(*)::int as n from plain where ${before} and id in (2, 3) and body is null`,
      [],
      dst.name,
    );
    expect(arrived!.n).toBe(2);
    await expectSameRows(
      { url: src.url, query: `${rows('plain')} where id >= 10` },
      { url: dst.url, query: `${rows('plain')} where id >= 10` },
      'id',
    );
    await daemon.stop();
  });
});

describe('a column renamed on the source', () => {
  it('keeps its values in the changes captured before the rename that apply after it, whichever path applies them', async () => {
    // A deploy: the daemon stopped, writes, the rename on both sides, writes again, the daemon started on
    // the backlog. `plain` is captured by capture_rows(), `tagged` by capture(); `keyed` renames its key.
    const { source, target1 } = sharedClusters();
    const [src, dst] = await Promise.all([freshDatabase(source), freshDatabase(target1)]);
    const ddl = `create extension hstore;
      create table plain (id int primary key, qty int, note text);
      create table tagged (id int primary key, qty int, attrs hstore);
      create table keyed (code text primary key, v int)`;
    for (const db of [src, dst]) await db.cluster.query(ddl, [], db.name);
    const config = makeConfig({
      source: { url: src.url },
      tables: ['plain', 'tagged', 'keyed'],
      targets: [{ name: 'b', url: dst.url, initialSync: 'none' }],
      retry: { initialDelayMs: 100, maxDelayMs: 1_000, dataErrorDelayMs: 500 },
      metrics: { enabled: false },
    });
    const onSource = (sql: string) => src.cluster.query(sql, [], src.name);
    let daemon = await startDaemon(config);
    await onSource(`insert into plain select g, g, 'n' || g from generate_series(1, 10) g;
      insert into tagged select g, g, hstore('g', g::text) from generate_series(1, 10) g;
      insert into keyed select 'k' || g, g from generate_series(1, 10) g`);
    await waitCaughtUp(config);
    await daemon.stop();

    // Before the rename: a bulk insert (copied through), single rows, updates, a key move, deletes.
    await onSource(`insert into plain select g, g * 2, 'bulk' from generate_series(11, 3000) g;
      insert into tagged values (11, 11, 'a=>1');
      update plain set qty = qty + 100 where id <= 5;
      update tagged set qty = qty + 100 where id <= 5;
      update plain set id = id + 5000 where id = 6;
      delete from plain where id = 7;
      insert into keyed values ('k11', 11);
      update keyed set v = v + 100 where code in ('k1', 'k2');
      update keyed set code = 'moved' where code = 'k3';
      delete from keyed where code = 'k4'`);
    for (const db of [src, dst]) {
      await db.cluster.query(
        `alter table plain rename column qty to quantity;
         alter table tagged rename column qty to quantity;
         alter table keyed rename column code to sku`,
        [],
        db.name,
      );
    }
    // After it, in the same backlog.
    await onSource(`insert into plain (id, quantity) values (9001, 1);
      update plain set quantity = -quantity where id between 8 and 9;
      update tagged set quantity = -quantity where id between 8 and 9;
      update keyed set v = -v where sku = 'k5'`);
    daemon = await startDaemon(config);
    await waitCaughtUp(config);
    for (const [table, key] of [
      ['plain', 'id'],
      ['tagged', 'id'],
      ['keyed', 'sku'],
    ] as const) {
      const query = `select * from ${table}`;
      await expectSameRows({ url: src.url, query }, { url: dst.url, query }, key);
    }

    // A second rename while the daemon runs, the source first, writes before the target's own rename:
    // the target waits for it (a nullable column the target lacks would be skipped), then applies them
    // with their values.
    await onSource(`alter table plain rename column quantity to amount;
      update plain set amount = amount + 1 where id <= 3;
      insert into plain (id, amount) values (9002, 2)`);
    let last = '';
    await waitFor(
      async () => {
        const status = await targetStatus(config, 'b');
        last = status.lastError ?? '';
        return status.state === 'parked' && last.includes('column quantity was renamed amount on the source');
      },
      { what: 'the target to wait for its own rename', timeoutMs: 30_000 },
    ).catch((thrown: unknown) => {
      throw new Error(`${String(thrown)}; last error: ${last}`);
    });
    expect(last).toBe(
      'targets.b: public.plain -> public.plain: column quantity was renamed amount on the source; rename it ' +
        'on the target too (ALTER TABLE public.plain RENAME COLUMN quantity TO amount): the changes wait, ' +
        'values and all',
    );
    await dst.cluster.query('alter table plain rename column quantity to amount', [], dst.name);
    await waitCaughtUp(config);
    const query = 'select * from plain';
    await expectSameRows({ url: src.url, query }, { url: dst.url, query }, 'id');
    await daemon.stop();
  });
});
