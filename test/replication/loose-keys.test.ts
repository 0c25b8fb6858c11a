// Keys that the target finds equal under other texts: a case-insensitive collation ('TAG5' and 'tAg5'),
// citext, timestamptz written from sessions in other time zones ('…10:00:00+00:00' and '…19:00:00+09:00'),
// and a PostgreSQL 18 temporal key over a tstzrange. A batch inserts before it deletes; where a row went
// under one text and came back under another, the insert found the old row and the delete then took the
// new one: the row was gone from the target, without a conflict. A backlog puts every change in one batch.
import { describe, expect, it } from 'vitest';

import { withClient } from '../support/cluster.js';
import { freshDatabase, serverMajor, sharedClusters } from '../support/fixtures.js';
import {
  conflictsCounted,
  expectSameRows,
  makeConfig,
  startDaemon,
  waitCaughtUp,
} from '../support/replication.js';

const temporalKeys = serverMajor() >= 18;

const tables = `
  create extension if not exists citext;
  create extension if not exists btree_gist;
  create collation ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
  create table tags (name text collate ci primary key, n int);
  create table users (email citext primary key, n int);
  create table readings (sensor int, at timestamptz, v int, primary key (sensor, at));
  create table blobs (k bytea primary key, n int);
  create table prices (amount numeric primary key, note text);
  ${temporalKeys ? 'create table bookings (room int, during tstzrange, note text, primary key (room, during without overlaps));' : ''}`;

/** Each table as compared: its rows by a key text that both sides print alike. */
const compared: [query: string, key: string][] = [
  [`select name::text collate "C" as name, n from tags`, 'name'],
  [`select email::text as email, n from users`, 'email'],
  [`select sensor, at, v from readings`, '(sensor, at)'],
  [`select k, n from blobs`, 'k'],
  [`select amount::text as amount, note from prices`, 'amount'],
  ...(temporalKeys
    ? [[`select room, during, note from bookings`, '(room, during)'] as [string, string]]
    : []),
];

describe('keys equal under other texts', () => {
  it('arrive once, whatever order their texts come and go in a batch', async () => {
    const { source, target1 } = sharedClusters();
    const src = await freshDatabase(source);
    const dst = await freshDatabase(target1);
    await source.query(tables, [], src.name);
    await target1.query(tables, [], dst.name);
    const config = makeConfig({
      source: { url: src.url },
      tables: ['tags', 'users', 'readings', 'blobs', 'prices', ...(temporalKeys ? ['bookings'] : [])],
      targets: [{ name: 'dst', url: dst.url, initialSync: 'none' }],
    });
    let daemon = await startDaemon(config);
    try {
      await withClient(src.url, async (db) => {
        await db.query(`set timezone = 'UTC'`);
        await db.query(`insert into tags select 'tag' || g, g from generate_series(1, 50) g`);
        await db.query(
          `insert into users select 'User' || g || '@Example.com', g from generate_series(1, 50) g`,
        );
        await db.query(`insert into readings select s, timestamptz '2026-01-01 10:00:00+00' + h * interval '1 hour', h
                          from generate_series(1, 5) s, generate_series(0, 9) h`);
        await db.query(
          `insert into blobs select convert_to('key ' || g, 'UTF8'), g from generate_series(1, 20) g`,
        );
        await db.query(`insert into prices select g / 10.0, 'n' from generate_series(1, 20) g`);
        if (temporalKeys)
          await db.query(`insert into bookings select r, tstzrange(timestamptz '2026-01-01 00:00+00' + d * interval '1 day',
                                                                    timestamptz '2026-01-02 00:00+00' + d * interval '1 day'), 'n'
                            from generate_series(1, 5) r, generate_series(0, 4) d`);
      });
      await waitCaughtUp(config);
      await daemon.stop();

      await withClient(src.url, async (db) => {
        // New texts of the same keys: by update (moves), then again; gone and back in other letters.
        await db.query(`update tags set name = upper(name) where n % 2 = 0`);
        await db.query(`update tags set name = 'Tag' || n, n = n + 100 where n % 3 = 0`);
        await db.query(
          `begin; delete from tags where name = 'TAG10'; insert into tags values ('tAg10', 1010); commit`,
        );
        await db.query(`delete from tags where name = 'tag7'`);
        await db.query(`insert into tags values ('tag7', 7007)`);
        await db.query(`insert into tags values ('fresh', 1)`);
        await db.query(`update tags set name = 'FRESH' where name = 'fresh'`);
        await db.query(`update users set email = lower(email) where n % 2 = 0`);
        await db.query(`delete from users where n = 3`);
        await db.query(`insert into users values ('USER3@EXAMPLE.COM', 303)`);
        // The same instants written from Tokyo: other texts of the same keys.
        await db.query(`begin; set local timezone = 'Asia/Tokyo';
                        delete from readings where sensor = 1 and at < timestamptz '2026-01-01 15:00:00+00';
                        commit`);
        await db.query(`insert into readings select 1, timestamptz '2026-01-01 10:00:00+00' + h * interval '1 hour', 100 + h
                          from generate_series(0, 4) h`);
        await db.query(
          `begin; set local timezone = 'Asia/Tokyo'; update readings set v = -v where sensor = 2; commit`,
        );
        // The same numeric keys in more digits: equal values, other texts, which the target must take.
        await db.query(`update prices set amount = round(amount, 3), note = 'scaled' where amount <= 1`);
        // bytea keys as a session with bytea_output = escape writes them, then in hex again.
        await db.query(`begin; set local bytea_output = 'escape'; delete from blobs where n <= 5; commit`);
        await db.query(
          `insert into blobs select convert_to('key ' || g, 'UTF8'), 100 + g from generate_series(1, 5) g`,
        );
        await db.query(`begin; set local timezone = 'America/New_York';
                        update readings set at = at + interval '30 minutes' where sensor = 3; commit`);
        if (temporalKeys) {
          await db.query(
            `begin; set local timezone = 'Asia/Tokyo'; delete from bookings where room = 1; commit`,
          );
          await db.query(`insert into bookings select 1, tstzrange(timestamptz '2026-01-01 00:00+00' + d * interval '1 day',
                                                                    timestamptz '2026-01-02 00:00+00' + d * interval '1 day'), 'again'
                            from generate_series(0, 4) d`);
        }
      });
      daemon = await startDaemon(config);
      await waitCaughtUp(config);
      for (const [query, key] of compared)
        await expectSameRows({ url: src.url, query }, { url: dst.url, query }, key);
      expect(await conflictsCounted(daemon)).toBe(0);
    } finally {
      await daemon.stop();
    }
  });
});
