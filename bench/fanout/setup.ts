// What the fan-out benchmark works with: one source database, and on the target cluster one database per
// target up to the largest count asked for, each with the same table; the reset that gives every run the
// same start, and the check that a run left every target equal to the source.
import type pg from 'pg';

import type { Config } from '../../src/config/types.js';
import type { LocalCluster } from '../../test/support/local-cluster.js';
import type { LoadGenerator } from '../support/load.js';
import type { BenchOptions } from '../support/options.js';
import { createDatabase, tableFingerprint } from '../support/servers.js';
import {
  benchClient,
  benchConfig,
  benchRawConfig,
  targetDatabases,
  uncapturedClient,
  type TargetDatabase,
} from '../support/trigsync.js';

/** Captured by trigsync. */
export const fanoutTable = 'public.fanout_rows';

const ddl = `create table fanout_rows (id bigint primary key, a int, b text, c timestamptz)`;

/** The source database's name: the block counters are read for it. */
export const sourceDatabase = 'bench';

export interface Rig {
  options: BenchOptions;
  load: LoadGenerator;
  sourceUrl: string;
  /** Source writes that are captured: the backlog. */
  admin: pg.Client;
  /** Source writes that are not: resetting the table. */
  quietSource: pg.Client;
  /**
   * On the source cluster's `postgres` database: reads the source database's counters without adding to
   * them.
   */
  stats: pg.Client;
  targets: TargetDatabase[];
}

export async function setUp(
  options: BenchOptions,
  load: LoadGenerator,
  source: LocalCluster,
  target: LocalCluster,
): Promise<Rig> {
  const sourceUrl = await createDatabase(source, sourceDatabase);
  const count = Math.max(...options.fanoutTargets);
  const names = Array.from({ length: count }, (_, i) => `target_${i + 1}`);
  const { config, targets } = await targetDatabases(
    target,
    names,
    (databases) => fanoutConfig(sourceUrl, databases),
    ddl,
  );
  const admin = await benchClient(sourceUrl);
  await admin.query(ddl);
  return {
    options,
    load,
    sourceUrl,
    admin,
    quietSource: await uncapturedClient(config, sourceUrl),
    stats: await benchClient(source.url('postgres')),
    targets,
  };
}

export async function tearDown(rig: Rig): Promise<void> {
  await Promise.all([
    rig.admin.end(),
    rig.quietSource.end(),
    rig.stats.end(),
    ...rig.targets.map((t) => t.client.end()),
  ]);
}

/** trigsync applying `fanoutTable` to `targets`, defaults everywhere else. */
export function fanoutConfig(sourceUrl: string, targets: readonly { name: string; url: string }[]): Config {
  return benchConfig({ sourceUrl, targets, tables: [fanoutTable] });
}

/** The same as a config file of group `group` holds it (the default group's when none is given). */
export function fanoutRawConfig(
  sourceUrl: string,
  targets: readonly { name: string; url: string }[],
  group?: string,
): Record<string, unknown> {
  return benchRawConfig({
    sourceUrl,
    targets,
    tables: [fanoutTable],
    ...(group === undefined ? {} : { group }),
  });
}

/** Empty the table on the source and on `targets` without capturing it, then vacuum and checkpoint. */
export async function resetTables(rig: Rig, targets: readonly TargetDatabase[]): Promise<void> {
  const clients = [rig.quietSource, ...targets.map((t) => t.client)];
  await Promise.all(clients.map((client) => client.query(`truncate ${fanoutTable}`)));
  await Promise.all(clients.map((client) => client.query(`vacuum analyze ${fanoutTable}`)));
  await Promise.all([rig.quietSource.query('checkpoint'), targets[0]?.client.query('checkpoint')]);
}

/** Throws unless every target holds the source's rows (count and hash): no figure from a wrong run. */
export async function checkTargets(rig: Rig, targets: readonly TargetDatabase[]): Promise<void> {
  const expected = await tableFingerprint(rig.quietSource, fanoutTable);
  for (const target of targets) {
    const found = await tableFingerprint(target.client, fanoutTable);
    if (found.rows !== expected.rows || found.hash !== expected.hash) {
      throw new Error(
        `${fanoutTable}: ${expected.rows} rows (hash ${expected.hash}) on the source, ` +
          `${found.rows} (hash ${found.hash}) on ${target.name}`,
      );
    }
  }
}
