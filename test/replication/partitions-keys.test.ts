// Tables that are not one plain table with a primary key: a partitioned table written through its
// partitions as well as through itself, replicated to targets partitioned otherwise or not at all;
// hstore values, whose to_json() form hstore's input cannot read; and tables identified by a unique
// index over NOT NULL columns instead of a primary key, or refused when they have neither.
import { describe, expect, it } from 'vitest';

import { triggerName } from '../../src/capture/triggers.js';
import { withClient } from '../support/cluster.js';
import { ConfigError } from '../../src/failure/errors.js';
import { installSource } from '../../src/operator/install-source.js';
import { ExitCode } from '../../src/cli/exit-codes.js';
import type { Config } from '../../src/config/types.js';
import { trigsync } from '../support/binary.js';
import { freshDatabase, sharedClusters, waitFor, type FreshDatabase } from '../support/fixtures.js';
import {
  collectingLogger,
  configFile,
  conflictsCounted,
  expectSameRows,
  makeConfig,
  runCli,
  runEach,
  startDaemon,
  waitAppliedOrParked,
} from '../support/replication.js';

interface Setup {
  src: FreshDatabase;
  /** Each target's database, by target name. */
  dst: Record<string, FreshDatabase>;
  config: Config;
  file: string;
}

/**
 * A source database with `ddl` and one target per entry of `targets` (its name and its own DDL), on
 * the two target clusters in turn, each with initialSync none. As target-schema.test.ts's pair(), for
 * several targets.
 */
async function setup(tables: unknown[], ddl: string, targets: Record<string, string>): Promise<Setup> {
  const { source, target1, target2 } = sharedClusters();
  const src = await freshDatabase(source);
  await source.query(ddl, [], src.name);
  const dst: Record<string, FreshDatabase> = {};
  for (const [i, [name, targetDdl]] of Object.entries(targets).entries()) {
    const cluster = i % 2 === 0 ? target1 : target2;
    const db = await freshDatabase(cluster);
    await cluster.query(targetDdl, [], db.name);
    dst[name] = db;
  }
  const raw = {
    source: { url: src.url },
    tables,
    targets: Object.entries(dst).map(([name, db]) => ({ name, url: db.url, initialSync: 'none' })),
    apply: { pollIntervalMs: 100 },
    retry: { initialDelayMs: 100, maxDelayMs: 1_000 },
    metrics: { enabled: false },
  };
  return { src, dst, config: makeConfig(raw), file: await configFile(raw) };
}

/** Every target's rows of `query` equal the source's, compared by `key`. */
async function expectSame(s: Setup, query: string, key: string): Promise<void> {
  for (const db of Object.values(s.dst)) {
    await expectSameRows({ url: s.src.url, query }, { url: db.url, query }, key);
  }
}

const count = async (db: FreshDatabase, sql: string): Promise<number> =>
  Number((await db.cluster.query<{ n: string }>(sql, [], db.name))[0]!.n);

// The source is partitioned by month; the config names only the partitioned table.
const measurement = `
  create table measurement (logdate date not null, id int not null, city int not null, reading numeric,
                            primary key (logdate, id)) partition by range (logdate);
  create table measurement_2024_01 partition of measurement for values from ('2024-01-01') to ('2024-02-01');
  create table measurement_2024_02 partition of measurement for values from ('2024-02-01') to ('2024-03-01');`;

// Targets: by list on another column (whose key must then hold it), and a plain table.
const byCity = `
  create table measurement (logdate date not null, id int not null, city int not null, reading numeric,
                            primary key (logdate, id, city)) partition by list (city);
  create table measurement_low partition of measurement for values in (1, 2);
  create table measurement_other partition of measurement default;`;
const plain = `
  create table measurement (logdate date not null, id int not null, city int not null, reading numeric,
                            primary key (logdate, id));`;
// By range on the same column with other bounds: one partition for the whole first half of 2024.
const byHalfYear = `
  create table measurement (logdate date not null, id int not null, city int not null, reading numeric,
                            primary key (logdate, id)) partition by range (logdate);
  create table measurement_h1 partition of measurement for values from ('2024-01-01') to ('2024-07-01');`;

const allMeasurements = 'select logdate, id, city, reading from measurement';
const measurementKey = '(logdate, id)';

/** n rows from id `from` on, spread over January and February 2024 and over four cities. */
const rowsThroughParent = (from: number, n: number): string =>
  `insert into measurement select date '2024-01-01' + g % 59, g, g % 4 + 1, g * 1.5
     from generate_series(${from}, ${from + n - 1}) g`;

describe('a partitioned table', () => {
  it('writes through the table and to its partitions by name replicate, to targets partitioned otherwise', async () => {
    const s = await setup(['public.measurement'], measurement, { bycity: byCity, plain });
    const daemon = await startDaemon(s.config);
    await runEach(s.src.url, rowsThroughParent(1, 200));
    // Naming a partition fires only the partition's own statement triggers.
    await runEach(
      s.src.url,
      `insert into measurement_2024_01 values ('2024-01-15', 1000, 2, 1.0), ('2024-01-16', 1001, 3, null)`,
      `insert into measurement_2024_02 values ('2024-02-15', 1002, 1, 2.5)`,
      'update measurement_2024_01 set reading = reading + 1 where id % 3 = 0',
      'delete from measurement_2024_02 where id % 5 = 0',
    );
    await waitAppliedOrParked(s.config);
    await expectSame(s, allMeasurements, measurementKey);
    // Through the table again, rows that move: to February on the source, to another city on bycity.
    await runEach(
      s.src.url,
      'update measurement set reading = -reading where id % 7 = 0',
      'delete from measurement where id % 11 = 0',
      `update measurement set logdate = logdate + 31 where logdate < '2024-01-10'`,
      'update measurement set city = 4 where id between 20 and 40',
    );
    await waitAppliedOrParked(s.config);
    await expectSame(s, allMeasurements, measurementKey);
    expect(
      await count(s.src, `select count(*) as n from measurement_2024_01 where logdate < '2024-01-10'`),
    ).toBe(0);
    await daemon.stop();
  });

  it('TRUNCATE of one partition takes its rows on the targets, of the table all rows', async () => {
    const s = await setup(['public.measurement'], measurement, { bycity: byCity, plain });
    const daemon = await startDaemon(s.config);
    await runEach(s.src.url, rowsThroughParent(1, 200));
    await waitAppliedOrParked(s.config);
    // Rows of January written before and after the truncate in one transaction: only the later stay.
    await runEach(
      s.src.url,
      `begin; insert into measurement_2024_01 values ('2024-01-20', 500, 1, 5);
       truncate measurement_2024_01;
       insert into measurement values ('2024-01-21', 501, 2, 6), ('2024-02-21', 502, 3, 7); commit`,
    );
    await waitAppliedOrParked(s.config);
    const january = `select count(*) as n from measurement where logdate < '2024-02-01'`;
    for (const db of Object.values(s.dst)) {
      expect(await count(db, january), db.name).toBe(1);
      // February's 84 rows of the 200, and the one inserted after the truncate.
      expect(await count(db, `select count(*) as n from measurement where logdate >= '2024-02-01'`)).toBe(85);
    }
    await expectSame(s, allMeasurements, measurementKey);

    await runEach(s.src.url, 'truncate measurement');
    await waitAppliedOrParked(s.config);
    for (const db of Object.values(s.dst)) {
      expect(await count(db, 'select count(*) as n from measurement'), db.name).toBe(0);
    }
    await runEach(s.src.url, rowsThroughParent(1000, 20));
    await waitAppliedOrParked(s.config);
    await expectSame(s, allMeasurements, measurementKey);
    await daemon.stop();
  });

  // PostgreSQL gives a new partition none of its parent's statement triggers: the leader's partition
  // watcher adds trigsync's within its 2 s round.
  it.each([
    [
      'created as a partition',
      `create table measurement_2024_03 partition of measurement
         for values from ('2024-03-01') to ('2024-04-01')`,
    ],
    [
      'created alone, then attached',
      `create table measurement_2024_03 (logdate date not null, id int not null, city int not null,
                                         reading numeric, primary key (logdate, id));
       alter table measurement attach partition measurement_2024_03
         for values from ('2024-03-01') to ('2024-04-01')`,
    ],
  ])('a partition %s while the daemon runs is captured', async (_, attach) => {
    const s = await setup(['public.measurement'], measurement, { byhalfyear: byHalfYear, plain });
    const daemon = await startDaemon(s.config);
    await runEach(s.src.url, rowsThroughParent(1, 50));
    await runEach(s.src.url, attach);
    // Through the table, the new partition's rows are captured at once.
    await runEach(
      s.src.url,
      `insert into measurement values ('2024-03-01', 100, 1, 1), ('2024-03-02', 101, 2, 2)`,
    );
    await waitFor(
      async () =>
        (await count(
          s.src,
          `select count(*) as n from pg_trigger
            where tgrelid = 'measurement_2024_03'::regclass and tgname = '${triggerName(s.config.schema, 'insert')}'`,
        )) === 1,
      { what: 'the new partition to get its capture trigger', timeoutMs: 15_000, intervalMs: 100 },
    );
    await runEach(
      s.src.url,
      `insert into measurement_2024_03 select date '2024-03-01' + g % 31, g, g % 4 + 1, g from generate_series(200, 260) g`,
      'update measurement_2024_03 set reading = reading * 2 where id % 2 = 0',
      'delete from measurement_2024_03 where id % 3 = 0',
    );
    await waitAppliedOrParked(s.config);
    await expectSame(s, allMeasurements, measurementKey);
    expect(
      await count(s.dst.plain!, `select count(*) as n from measurement where logdate >= '2024-03-01'`),
    ).toBe(43);
    // And a truncate of it alone, by its bounds.
    await runEach(s.src.url, 'truncate measurement_2024_03');
    await waitAppliedOrParked(s.config);
    await expectSame(s, allMeasurements, measurementKey);
    await daemon.stop();
  });

  it('a captured table attached as a partition of a table not captured: said at once, refused at the next start', async () => {
    const readings =
      'create table readings (day date not null, id int not null, v int, primary key (day, id))';
    const s = await setup(['public.readings'], readings, { plain: readings });
    const { logger, lines } = collectingLogger();
    const daemon = await startDaemon(s.config, logger);
    await runEach(s.src.url, `insert into readings values ('2024-01-01', 1, 1)`);
    await waitAppliedOrParked(s.config);
    // Writes naming the table are still captured; writes naming the partitioned table would not be.
    await runEach(
      s.src.url,
      `create table history (day date not null, id int not null, v int, primary key (day, id))
         partition by range (day);
       alter table history attach partition readings for values from ('2024-01-01') to ('2025-01-01')`,
    );
    const said = (line: string) =>
      line.includes('captured table public.readings is now a partition of public.history');
    await waitFor(() => Promise.resolve(lines.some(said)), {
      what: 'the leader to say that writes through public.history are not captured',
      timeoutMs: 15_000,
      intervalMs: 100,
    });
    expect(JSON.parse(lines.find(said)!)).toMatchObject({
      level: 50,
      table: 'public.readings',
      partitionOf: 'public.history',
    });
    await daemon.stop();
    const refused = await withClient(s.src.url, (client) =>
      installSource(client, s.config).catch((thrown: unknown) => thrown),
    );
    expect(refused).toBeInstanceOf(ConfigError);
    expect((refused as ConfigError).problems).toEqual([
      'tables: public.readings is a partition of public.history, and writes through public.history would ' +
        "not be captured: list public.history (a where on its partition key keeps to this partition's rows)",
    ]);
  });
});

// hstore's text output is what its input reads; to_json() would make a JSON object of it instead.
const hstoreSchema = `
  create extension hstore;
  create type tagged as (label text, attrs hstore);
  create table docs (id int primary key, h hstore, ha hstore[], t tagged);
  create table by_attrs (k hstore primary key, v text);`;

describe('hstore', () => {
  it('hstore values, arrays, composites and keys round-trip through insert, update and delete', async () => {
    const s = await setup(['docs', 'by_attrs'], hstoreSchema, { dst: hstoreSchema });
    const daemon = await startDaemon(s.config);
    await runEach(
      s.src.url,
      `insert into docs values
         (1, 'a=>1, "b c"=>"d \\"e\\"", n=>NULL, "=>"=>","', array['a=>1', 'b=>NULL', '']::hstore[],
             row('x, "y"', 'k=>v, "back\\\\slash"=>"}{"')),
         (2, '', '{}', row(null, null)),
         (3, null, array[null, 'z=>"NULL"']::hstore[], row('empty', ''))`,
      `insert into by_attrs values ('a=>1', 'one'), ('a=>1, b=>2', 'two'), ('', 'empty'), ('"x y"=>NULL', 'null')`,
    );
    await waitAppliedOrParked(s.config);
    // Updates of the non-key columns, then of the keys, then deletes.
    await runEach(
      s.src.url,
      `update docs set h = h || 'added=>"new value"', ha = ha || 'c=>3'::hstore, t = row('changed', (t).attrs || 'q=>r')`,
      `update by_attrs set v = v || '!'`,
      'update docs set id = id + 10 where id <= 2',
      `update by_attrs set k = k || 'moved=>yes' where v like 'two%' or v like 'empty%'`,
    );
    await waitAppliedOrParked(s.config);
    await runEach(s.src.url, 'delete from docs where id = 3', `delete from by_attrs where k = 'a=>1'`);
    await waitAppliedOrParked(s.config);
    // Each old image met the target's row as it was: a hstore compared wrongly would count conflicts.
    expect(await conflictsCounted(daemon)).toBe(0);
    await expectSame(s, 'select id, h::text, ha::text, t::text from docs', 'id');
    await expectSame(s, 'select k::text as k, v from by_attrs', 'k');
    expect(await count(s.dst.dst!, 'select count(*) as n from by_attrs')).toBe(3);
    await daemon.stop();
  });
});

describe('text-written values from sessions of other date styles', () => {
  it('a composite of dates, times and hstore round-trips from DateStyle SQL, German and Postgres writers', async () => {
    const ddl = `create extension hstore;
      create type stamped as (d date, ts timestamp, tz timestamptz, attrs hstore);
      create table stamps (id int primary key, s stamped, ds stamped[]);`;
    const s = await setup(['stamps'], ddl, { dst: ddl });
    const daemon = await startDaemon(s.config);
    const value = (d: string) =>
      `row(date '${d}', timestamp '${d} 10:11:12.5', timestamptz '${d} 23:30:00+00', 'at=>"${d}"')::stamped`;
    // Each statement a session of its own, with the style a server's locale or an application sets.
    for (const [i, style] of ['SQL, DMY', 'German', 'Postgres, MDY', 'SQL, MDY'].entries()) {
      await runEach(
        s.src.url,
        `set datestyle = '${style}'; set timezone = 'Asia/Tokyo';
         insert into stamps values (${i + 1}, ${value('2026-03-04')}, array[${value('1999-12-31')}]);
         update stamps set s = ${value('2026-11-12')} where id = ${i + 1}`,
      );
    }
    await waitAppliedOrParked(s.config);
    await expectSame(s, 'select id, s::text, ds::text from stamps', 'id');
    expect(await conflictsCounted(daemon)).toBe(0);
    await daemon.stop();
  });

  it('ranges and multiranges of dates and times, keys among them, round-trip from writers of every DateStyle', async () => {
    // No hstore: capture_rows() serves the table, whose to_json() writes a range through its text.
    const ddl = `create type span as (label text, days daterange);
      create table stays (room int, during tstzrange, nights daterange, local tsrange, spans datemultirange,
                          s span, ss span[], primary key (room, during));`;
    const s = await setup(['stays'], ddl, { dst: ddl });
    const daemon = await startDaemon(s.config);
    const row = (room: number, d: string) =>
      `(${room}, tstzrange('${d} 14:00+00', '${d} 11:00+00'::timestamptz + interval '3 days'),
        daterange('${d}', '${d}'::date + 3), tsrange('${d} 14:00', '${d} 23:30'),
        datemultirange(daterange('${d}', '${d}'::date + 1), daterange('${d}'::date + 5, '${d}'::date + 9)),
        row('a', daterange('${d}', null))::span, array[row('b', daterange(null, '${d}'))::span])`;
    // Days and months that read as each other, each statement a session of its own.
    for (const [i, style] of ['SQL, DMY', 'German', 'Postgres, MDY', 'SQL, MDY', 'Postgres, DMY'].entries()) {
      await runEach(
        s.src.url,
        `set datestyle = '${style}'; set timezone = 'Asia/Tokyo';
         insert into stays values ${row(i + 1, '2026-03-04')}, ${row(i + 11, '2026-05-06')};
         update stays set nights = daterange('2026-11-12', '2026-12-01'), during = during + tstzrange(lower(during) - interval '1 day', lower(during))
          where room = ${i + 1};
         delete from stays where room = ${i + 11}`,
      );
    }
    await waitAppliedOrParked(s.config);
    await expectSame(
      s,
      'select room, during::text, nights, local, spans, s::text, ss::text from stays',
      'room',
    );
    expect(await conflictsCounted(daemon)).toBe(0);
    await daemon.stop();
  });

  it('reg* values written under another search_path name the same objects on the target', async () => {
    // A table and a type of one name in two schemas on both sides: the writer's path finds app's first.
    const ddl = `create schema app;
      create table app.things (id int); create table public.things (id int);
      create type app.mood as enum ('ok'); create type public.mood as enum ('ok');
      create table meta (id int primary key, rel regclass, typ regtype, rels regclass[])`;
    const s = await setup(['meta'], ddl, { dst: ddl });
    const daemon = await startDaemon(s.config);
    await runEach(
      s.src.url,
      `set search_path = app, public;
       insert into meta values (1, 'app.things', 'app.mood', array['app.things', 'public.things']::regclass[]),
                               (2, 'public.things', 'public.mood', null), (3, 'pg_class', 'int4', null);
       update meta set rel = 'app.things' where id = 2`,
    );
    await waitAppliedOrParked(s.config);
    // Each object named by its schema, so that the two sides' oids need not match.
    const named = `select id, (select relnamespace::regnamespace::text || '.' || relname from pg_class where oid = rel) as rel,
                          (select typnamespace::regnamespace::text || '.' || typname from pg_type where oid = typ) as typ,
                          (select array_agg(relnamespace::regnamespace::text || '.' || relname order by relnamespace::regnamespace::text)
                             from pg_class where oid = any(rels)) as rels
                     from meta`;
    await expectSame(s, named, 'id');
    await daemon.stop();
  });
});

describe('a table without a primary key', () => {
  it('is captured by its unique index over NOT NULL columns', async () => {
    const ddl = `create table t (code text not null, region int not null, v text);
                 create unique index on t (code, region);`;
    const s = await setup(['t'], ddl, { dst: ddl });
    const daemon = await startDaemon(s.config);
    await runEach(s.src.url, `insert into t select 'c' || g, g % 3, 'v' || g from generate_series(1, 60) g`);
    await waitAppliedOrParked(s.config);
    await runEach(
      s.src.url,
      `update t set v = v || '!' where region = 0`,
      `update t set code = code || 'x' where region = 1`,
      'update t set region = region + 10 where region = 2',
      `delete from t where code like 'c1%'`,
    );
    await waitAppliedOrParked(s.config);
    await expectSame(s, 'select code, region, v from t', '(code, region)');
    await daemon.stop();
  });

  it('uses the unique index the config names when it has several', async () => {
    const ddl = `create table t2 (a int not null, b int not null, v text);
                 create unique index on t2 (a); create unique index on t2 (b);`;
    const s = await setup([{ table: 'public.t2', key: ['b'] }], ddl, { dst: ddl });
    const daemon = await startDaemon(s.config);
    expect(
      await s.src.cluster.query(
        `select key_columns::text as key from trigsync.captured_table where table_name = 't2'`,
        [],
        s.src.name,
      ),
    ).toEqual([{ key: '{b}' }]);
    await runEach(s.src.url, `insert into t2 select g, g * 10, 'v' || g from generate_series(1, 30) g`);
    await waitAppliedOrParked(s.config);
    await runEach(
      s.src.url,
      'update t2 set a = a + 100 where a <= 10',
      'update t2 set b = b + 1 where b > 200',
      `update t2 set v = 'changed' where a % 2 = 0`,
      'delete from t2 where a % 5 = 0',
    );
    await waitAppliedOrParked(s.config);
    await expectSame(s, 'select a, b, v from t2', 'b');
    await daemon.stop();
  });

  it('is refused when it has no unique index over NOT NULL columns, or names columns that are not a key', async () => {
    // A unique index over a nullable column does not identify rows: several may hold NULL.
    const ddl = `create table t3 (a int, v text); create unique index on t3 (a);
                 create table t4 (id int primary key, v text);`;
    const s = await setup(['t3'], ddl, { dst: ddl });
    // check, install and start take it as a configuration error (2), as a missing target column
    // (test/cli.test.ts).
    for (const [command, exit] of [
      ['check', ExitCode.usage],
      ['install', ExitCode.usage],
    ] as const) {
      const { code, out } = await runCli(s.file, command);
      expect(code, out).toBe(exit);
      expect(out.match(/public\.t3/g), out).toHaveLength(1);
      expect(out).toMatch(
        /public\.t3 has no primary key and no unique index over NOT NULL columns.*: add a primary key, or a unique index over NOT NULL columns/,
      );
    }
    await expect(startDaemon(s.config)).rejects.toThrow(/public\.t3 has no primary key/);
    // The same through the built binary, as users run it: check and start agree on the exit code.
    for (const command of ['check', 'start'] as const) {
      const { code, stdout, stderr } = await trigsync(command, '--config', s.file);
      expect(code, `${command}: ${stdout}${stderr}`).toBe(ExitCode.usage);
      expect(`${stdout}${stderr}`).toMatch(/public\.t3 has no primary key and no unique index over NOT NULL/);
    }

    const badKey = await setup([{ table: 'public.t4', key: ['v'] }], ddl, { dst: ddl });
    const notKey = /public\.t4: key \(v\) is not the primary key or a unique index over NOT NULL columns/;
    for (const [command, exit] of [
      ['check', ExitCode.usage],
      ['install', ExitCode.usage],
    ] as const) {
      const { code, out } = await runCli(badKey.file, command);
      expect(code, out).toBe(exit);
      expect(out).toMatch(notKey);
    }
    await expect(startDaemon(badKey.config)).rejects.toThrow(notKey);
  });
});
