// Databases of other encodings (PostgreSQL's subscription test 005_encoding): a UTF-8 source and a LATIN1
// target, and the other way round. trigsync's sessions talk UTF-8, so each server converts: the rows
// arrive as the source's text, by the initial copy, by rows and by runs copied through, keys that change
// included. A character the target's encoding lacks parks the target, naming the change; the writer's
// own transaction commits as always.
import { describe, expect, it } from 'vitest';

import { withClient } from '../support/cluster.js';
import { freshDatabase, sharedClusters, type FreshDatabase } from '../support/fixtures.js';
import type { Config } from '../../src/config/types.js';
import { makeConfig, startDaemon, waitParked, waitCaughtUp } from '../support/replication.js';

const tables = `
  create table t (id int primary key, v text, j jsonb, js json, a text[], c char(6));
  create table k (name text primary key, n int);`;

const seed = `
  insert into t values (1, 'café', '{"k": "naïve"}', '{"k": "Grüße", "u": "\\u00e9"}', array['à', 'ß'], 'déjà');
  insert into k values ('clé', 1), ('Ärger', 2);`;

/** Rows by rows and a run of 3,000 by COPY (an insert of them in one statement), keys renamed. */
const changes = [
  `update t set v = v || ' über' where id = 1`,
  `update k set name = 'Schlüssel' where name = 'clé'`,
  `insert into t select g, 'été ' || g, jsonb_build_object('ö', g), json_build_object('ñ', 'señor'),
          array['ü' || g], 'ça' from generate_series(2, 3001) g`,
  `update t set a = a || 'ÿ'::text where id % 7 = 0`,
  `delete from k where name = 'Ärger'`,
  `insert into k values ('Ärger', 3), ('ÿ', 4)`,
  `delete from t where id % 11 = 0`,
];

/** Each table's rows as text, read through UTF-8 sessions: equal when the two databases hold the same text. */
async function rowsOf(db: FreshDatabase): Promise<string[]> {
  return withClient(db.url, async (client) => {
    const t = await client.query<{ r: string }>(`select t::text as r from t order by id`);
    const k = await client.query<{ r: string }>(`select k::text as r from k order by n`);
    return [...t.rows, ...k.rows].map((row) => row.r);
  });
}

/**
 * Both databases given the tables, the source its first rows; a daemon copies them to the target, then
 * applies the changes: the target must read as the source after each. `then` runs before the daemon stops.
 */
async function replicateAlike(
  src: FreshDatabase,
  dst: FreshDatabase,
  then: (config: Config) => Promise<void> = () => Promise.resolve(),
): Promise<void> {
  for (const db of [src, dst]) await db.cluster.query(tables, [], db.name);
  await src.cluster.query(seed, [], src.name);
  const config = makeConfig({
    source: { url: src.url },
    tables: ['t', 'k'],
    targets: [{ name: 'dst', url: dst.url }],
  });
  const daemon = await startDaemon(config);
  try {
    await waitCaughtUp(config);
    expect(await rowsOf(dst)).toEqual(await rowsOf(src));
    await withClient(src.url, async (db) => {
      for (const sql of changes) await db.query(sql);
    });
    await waitCaughtUp(config);
    const rows = await rowsOf(src);
    expect(rows.length).toBeGreaterThan(2700);
    expect(rows.some((r) => r.includes('Schlüssel'))).toBe(true);
    expect(await rowsOf(dst)).toEqual(rows);
    await then(config);
  } finally {
    await daemon.stop();
  }
}

describe('databases of other encodings', () => {
  it('a UTF-8 source reaches a LATIN1 target; a character LATIN1 lacks parks it, naming the change', async () => {
    const { source, target1 } = sharedClusters();
    const src = await freshDatabase(source);
    const dst = await freshDatabase(target1, { encoding: 'LATIN1' });
    await replicateAlike(src, dst, async (config) => {
      // The euro sign is not in LATIN1: the writer commits, the target parks on that change.
      await withClient(src.url, (db) => db.query(`insert into t (id, v) values (5000, 'price: 5 €')`));
      const parked = await waitParked(config, 'dst', { what: 'the LATIN1 target to park' });
      expect(parked.lastError).toMatch(/has no equivalent in encoding "LATIN1"/);
      const queued = await withClient(src.url, (db) =>
        db.query<{ table_name: string; key: unknown; sqlstate: string }>(
          `select table_name, key, sqlstate from trigsync.error_queue where target = 'dst'`,
        ),
      );
      expect(queued.rows).toEqual([{ table_name: 'public.t', key: { id: 5000 }, sqlstate: '22P05' }]);
      expect(await target1.query(`select * from t where id = 5000`, [], dst.name)).toEqual([]);
    });
  });

  it('a LATIN1 source reaches a UTF-8 target, its json and arrays too', async () => {
    const { source, target1 } = sharedClusters();
    const src = await freshDatabase(source, { encoding: 'LATIN1' });
    await replicateAlike(src, await freshDatabase(target1));
  });
});
