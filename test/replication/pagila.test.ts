// Pagila, a real schema nobody on this project wrote (shared/realworld/pagila): foreign keys ON UPDATE
// CASCADE ON DELETE RESTRICT between 15 tables, a partitioned payment table, last_updated triggers, a
// tsvector trigger, enums, domains, arrays and bytea. The source and the target both start as copies of
// one loaded database (initialSync none); the source then runs rental-shop traffic while the daemon
// applies, and every table must end equal to its source, with the target never parked (G2, G8). A copy
// must work on the same schema: the whole of it to an empty target while the shop writes, and one parent
// table resynced under children that cascade deletes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { freshDatabase, sharedClusters, waitFor, type FreshDatabase } from '../support/fixtures.js';
import {
  PAGILA_TABLES,
  cascadeEveryForeignKey,
  createPagilaTemplate,
  dropPagilaTemplate,
  expectSameTables,
  leastPrivilegeTarget,
} from '../support/pagila.js';
import { shopTraffic } from '../support/pagila-traffic.js';
import {
  configFile,
  conflictsCounted,
  makeConfig,
  runCli,
  runEach,
  startDaemon,
  targetStatus,
} from '../support/replication.js';
import type { Config } from '../../src/config/types.js';
import type { TargetStatus } from '../../src/lib/status-report.js';

// Loaded once per file and per cluster; each test copies them (CREATE DATABASE ... TEMPLATE), which is
// faster than running the scripts again.
let templates: { source: string; target: string; schemaOnly: string } | undefined;

beforeAll(async () => {
  const { source, target1 } = sharedClusters();
  const [s, t, schemaOnly] = await Promise.all([
    createPagilaTemplate(source),
    createPagilaTemplate(target1),
    createPagilaTemplate(target1, { data: false }),
  ]);
  templates = { source: s, target: t, schemaOnly };
});

afterAll(async () => {
  if (templates === undefined) return;
  const { source, target1 } = sharedClusters();
  await Promise.all([
    dropPagilaTemplate(source, templates.source),
    dropPagilaTemplate(target1, templates.target),
    dropPagilaTemplate(target1, templates.schemaOnly),
  ]);
});

async function pagilaPair(): Promise<{ src: FreshDatabase; dst: FreshDatabase }> {
  const { source, target1 } = sharedClusters();
  return {
    src: await freshDatabase(source, { template: templates!.source }),
    dst: await freshDatabase(target1, { template: templates!.target }),
  };
}

function pagilaConfig(sourceUrl: string, targetUrl: string, initialSync: 'none' | 'copy' = 'none') {
  return {
    source: { url: sourceUrl },
    // payment is the partitioned parent, its partitions not listed: the workload writes through it.
    tables: PAGILA_TABLES.map(({ table }) => `public.${table}`),
    targets: [{ name: 'pagila', url: targetUrl, initialSync }],
    apply: { pollIntervalMs: 100 },
    retry: { initialDelayMs: 100, maxDelayMs: 1_000, dataErrorDelayMs: 200 },
    metrics: { enabled: false },
  };
}

/**
 * Under `conflict: park`, where any conflict parks the target: nobody writes these targets, so a conflict
 * would be one that trigsync made up (the target's own cascades, say), and the tests would show it.
 */
function parkOnConflict(raw: ReturnType<typeof pagilaConfig>) {
  return { ...raw, targets: raw.targets.map((t) => ({ ...t, conflict: 'park' })) };
}

/** Until the target has applied everything, or parked (a failure: the assertions then show why). */
async function settled(config: Config): Promise<TargetStatus> {
  let last: TargetStatus | undefined;
  await waitFor(
    async () => {
      last = await targetStatus(config, 'pagila');
      return last.state === 'parked' || (last.backlog === 0 && last.state === 'live');
    },
    { what: 'the target to catch up (or park)', timeoutMs: 30_000, intervalMs: 100 },
  ).catch((thrown: unknown) => {
    throw new Error(`${String(thrown)}\nlast status: ${JSON.stringify(last)}`);
  });
  return last!;
}

async function replicateShopTraffic(sourceUrl: string, targetUrl: string): Promise<void> {
  // Both sides start equal, so that any difference later is replication's.
  await expectSameTables(sourceUrl, targetUrl);
  const config = makeConfig(parkOnConflict(pagilaConfig(sourceUrl, targetUrl)));
  const daemon = await startDaemon(config);
  await shopTraffic(sourceUrl);
  const status = await settled(config);
  await daemon.stop();
  expect(status, `target parked: ${status.lastError}`).toMatchObject({ state: 'live', errorQueue: 0 });
  await expectSameTables(sourceUrl, targetUrl);
}

describe('Pagila', () => {
  it(
    'replicates rental-shop traffic to a superuser target with the same schema',
    { timeout: 60_000 },
    async () => {
      const { src, dst } = await pagilaPair();
      await replicateShopTraffic(src.url, dst.url);
    },
  );

  it(
    'loses no row to the ON DELETE CASCADE keys of a target written by a role without superuser',
    { timeout: 60_000 },
    async () => {
      const { target1 } = sharedClusters();
      const { src, dst } = await pagilaPair();
      // Every target FK now cascades deletes, where the source's restrict them: an update applied as
      // delete + insert, or a parent deleted before its children move, would take children with it.
      expect(await cascadeEveryForeignKey(dst.url)).toBeGreaterThan(20);
      const targetUrl = await leastPrivilegeTarget(target1, dst.name);
      await replicateShopTraffic(src.url, targetUrl);
    },
  );

  it(
    'copies the whole schema to an empty target with its foreign keys and partitions while the shop writes',
    { timeout: 90_000 },
    async () => {
      const { source, target1 } = sharedClusters();
      const src = await freshDatabase(source, { template: templates!.source });
      const dst = await freshDatabase(target1, { template: templates!.schemaOnly });
      // No superuser and no session_replication_role: the target checks every foreign key as rows land.
      const targetUrl = await leastPrivilegeTarget(target1, dst.name);
      const config = makeConfig(pagilaConfig(src.url, targetUrl, 'copy'));
      const traffic = shopTraffic(src.url);
      const daemon = await startDaemon(config);
      await traffic;
      const status = await settled(config);
      await daemon.stop();
      expect(status, `target parked: ${status.lastError}`).toMatchObject({ state: 'live', errorQueue: 0 });
      await expectSameTables(src.url, targetUrl);
    },
  );

  /**
   * `statements` run on the source, each in a transaction of its own unless it says begin, while the
   * daemon applies them in batches of 500 changes under `conflict: park`. The target must stay live and
   * end equal to the source; returns the conflicts counted.
   */
  async function applyInBatches(
    sourceUrl: string,
    targetUrl: string,
    ...statements: string[]
  ): Promise<number> {
    const config = makeConfig({
      ...parkOnConflict(pagilaConfig(sourceUrl, targetUrl)),
      apply: { batchSize: 500 },
    });
    const daemon = await startDaemon(config);
    await runEach(sourceUrl, ...statements);
    const status = await settled(config);
    const conflicts = await conflictsCounted(daemon);
    await daemon.stop();
    expect(status, `target parked: ${status.lastError}`).toMatchObject({ state: 'live', errorQueue: 0 });
    await expectSameTables(sourceUrl, targetUrl);
    return conflicts;
  }

  /** Statements of thousands of rows each, every one spanning many batches of 500 changes. */
  async function bulkStatements(sourceUrl: string, targetUrl: string): Promise<number> {
    return applyInBatches(
      sourceUrl,
      targetUrl,
      // Every film's key: the source's ON UPDATE CASCADE moves 11,000 inventory, film_actor and
      // film_category rows with them (their last_updated trigger sets last_update), in one transaction.
      `update film set film_id = film_id + 100000`,
      // Every inventory's key: its 16,000 rentals follow.
      `update inventory set inventory_id = inventory_id + 100000`,
      // Payments in every partition, some moving to the next month's, then half of them gone.
      `update payment set amount = amount * 2, payment_date = payment_date + interval '10 days'
        where payment_date < '2022-06-15'`,
      `delete from payment where payment_id % 2 = 0`,
      `delete from film_actor where actor_id % 3 = 0`,
      // Some films' keys moved twice in one transaction, and two films' keys swapped (through negatives).
      `begin;
       update film set film_id = film_id + 100000 where film_id <= 100010;
       update film set film_id = film_id + 100000 where film_id between 200001 and 200010;
       commit`,
      `begin;
       update film set film_id = -film_id where film_id in (100020, 100021);
       update film set film_id = 100021 where film_id = -100020;
       update film set film_id = 100020 where film_id = -100021;
       commit`,
      // Films' keys moved, then in the same transaction some of their children changed, others deleted.
      `begin;
       update film set film_id = film_id + 1000000 where film_id between 100040 and 100049;
       update film_actor set last_update = now() - interval '1 day' where film_id between 1100040 and 1100044;
       delete from film_actor where film_id between 1100045 and 1100049;
       commit`,
    );
  }

  it('applies bulk statements that span many batches, as replica', { timeout: 90_000 }, async () => {
    const { src, dst } = await pagilaPair();
    expect(await bulkStatements(src.url, dst.url)).toBe(0);
  });

  it(
    'applies bulk statements that span many batches to a target whose own keys cascade, as origin',
    { timeout: 90_000 },
    async () => {
      const { target1 } = sharedClusters();
      const { src, dst } = await pagilaPair();
      expect(await cascadeEveryForeignKey(dst.url)).toBeGreaterThan(20);
      // Applying as origin, the target's own ON UPDATE CASCADE moves the children before their changes
      // arrive, without the last_update the source's trigger set: no conflict, and those changes win.
      expect(await bulkStatements(src.url, await leastPrivilegeTarget(target1, dst.name))).toBe(0);
    },
  );

  it(
    "applies a source's ON DELETE CASCADE spanning many batches to a target whose keys cascade too, as origin",
    { timeout: 90_000 },
    async () => {
      const { target1 } = sharedClusters();
      const { src, dst } = await pagilaPair();
      // Both sides cascade deletes. Applying as origin, the target's own cascade takes the children of a
      // parent deleted in one batch; their own deletes, in a later batch, must not count as conflicts.
      expect(await cascadeEveryForeignKey(src.url)).toBeGreaterThan(20);
      expect(await cascadeEveryForeignKey(dst.url)).toBeGreaterThan(20);
      const conflicts = await applyInBatches(
        src.url,
        await leastPrivilegeTarget(target1, dst.name),
        // A fifth of the films: their inventory, rentals and payments, film_actor and film_category go
        // too, some thousands of rows.
        `delete from film where film_id % 5 = 0`,
        // Customers, with their rentals and payments.
        `delete from customer where customer_id % 7 = 0`,
        `begin;
         update film set film_id = film_id + 100000 where film_id <= 100;
         delete from film where film_id between 100001 and 100050;
         commit`,
      );
      expect(conflicts).toBe(0);
    },
  );

  it(
    '`sync --table` of a parent merges it under children that cascade deletes: no child row is lost',
    { timeout: 90_000 },
    async () => {
      const { src, dst } = await pagilaPair();
      expect(await cascadeEveryForeignKey(dst.url)).toBeGreaterThan(20);
      // Before install, so that nothing carries them: the target has a film the source lacks, lacks one
      // the source has, and holds other values for films that inventory, film_actor and film_category
      // rows point at. A TRUNCATE ... CASCADE of film would take all of those children with it.
      await runEach(
        src.url,
        `insert into film (title, language_id, fulltext) values ('ONLY ON THE SOURCE', 1, '')`,
      );
      await runEach(
        dst.url,
        `insert into film (film_id, title, language_id, fulltext) values (90001, 'ONLY ON THE TARGET', 1, '')`,
        `update film set title = title || ' (target)', rental_rate = 0 where film_id <= 20`,
      );
      const children = `select (select count(*) from inventory) + (select count(*) from film_actor)
                          + (select count(*) from film_category) + (select count(*) from rental) as n`;
      const [before] = await dst.cluster.query<{ n: string }>(children, [], dst.name);
      const raw = pagilaConfig(src.url, dst.url);
      const config = makeConfig(raw);
      const daemon = await startDaemon(config);
      const traffic = shopTraffic(src.url);
      const synced = await runCli(await configFile(raw), 'sync', 'pagila', '--table', 'public.film');
      expect(synced.out).toMatch(/sync of public\.film to pagila done/);
      await traffic;
      const status = await settled(config);
      await daemon.stop();
      expect(status, `target parked: ${status.lastError}`).toMatchObject({ state: 'live', errorQueue: 0 });
      await expectSameTables(src.url, dst.url);
      expect(before!.n, 'the children were there before the sync').not.toBe('0');
    },
  );
});
