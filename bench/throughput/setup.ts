// What the throughput benchmark works with: one source database, one database per target on the target
// cluster, two tables of the same shape in each (one captured by trigsync, one published for native
// logical replication), and the reset that gives every case the same start.
import type pg from 'pg';

import type { Config } from '../../src/config/types.js';
import type { LocalCluster } from '../../test/support/local-cluster.js';
import type { LoadGenerator } from '../support/load.js';
import { logicalSettings } from '../support/logical.js';
import type { BenchOptions } from '../support/options.js';
import { createDatabase, tableFingerprint } from '../support/servers.js';
import {
  DaemonHandle,
  benchClient,
  benchConfig,
  targetDatabases,
  uncapturedClient,
  type TargetDatabase,
} from '../support/trigsync.js';

export type { TargetDatabase };
import { backlogSequence } from './cases.js';

/** Captured by trigsync. */
export const trigsyncTable = 'public.tput_rows';
/** The same shape, published for native replication and not captured: no trigger adds to its writes. */
export const nativeTable = 'public.native_rows';

const ddl = ['tput_rows', 'native_rows']
  .map((name) => `create table ${name} (id bigint primary key, a int, b text, c timestamptz);`)
  .join('\n');

/**
 * For withServers(): native replication needs wal_level=logical and, on the target cluster, an apply
 * worker per subscription (4 by default) out of the background workers.
 */
export function serverSettings(options: BenchOptions): string[] {
  return [
    ...logicalSettings,
    `max_logical_replication_workers=${options.targets + 4}`,
    `max_worker_processes=${options.targets + 12}`,
  ];
}

export interface Rig {
  options: BenchOptions;
  load: LoadGenerator;
  sourceUrl: string;
  /** Source writes that are captured: the changes each case produces. */
  admin: pg.Client;
  /** Source writes that are not: resetting the tables. */
  quietSource: pg.Client;
  /** The first alone is the one-target cases' target. */
  targets: TargetDatabase[];
  daemon: DaemonHandle;
}

export async function setUp(
  options: BenchOptions,
  load: LoadGenerator,
  source: LocalCluster,
  target: LocalCluster,
): Promise<Rig> {
  const sourceUrl = await createDatabase(source, 'bench');
  const names = Array.from({ length: options.targets }, (_, i) => `target_${i + 1}`);
  const { config, targets } = await targetDatabases(
    target,
    names,
    (databases) => trigsyncConfig(sourceUrl, databases),
    ddl,
  );
  const admin = await benchClient(sourceUrl);
  await admin.query(ddl);
  await admin.query(backlogSequence);
  return {
    options,
    load,
    sourceUrl,
    admin,
    quietSource: await uncapturedClient(config, sourceUrl),
    targets,
    daemon: new DaemonHandle(config),
  };
}

export async function tearDown(rig: Rig): Promise<void> {
  await rig.daemon.stop();
  await Promise.all([rig.admin.end(), rig.quietSource.end(), ...rig.targets.map((t) => t.client.end())]);
}

/** trigsync applying `trigsyncTable` to `targets`, at `batchSize` or the default. */
export function trigsyncConfig(
  sourceUrl: string,
  targets: readonly { name: string; url: string }[],
  batchSize?: number,
): Config {
  return benchConfig({
    sourceUrl,
    targets,
    tables: [trigsyncTable],
    ...(batchSize === undefined ? {} : { batchSize }),
  });
}

/**
 * Empty `table` on the source and on `targets` without capturing it, then vacuum and checkpoint, so that
 * neither leftovers nor a checkpoint due fall into the measurement.
 */
export async function resetTables(
  rig: Rig,
  table: string,
  targets: readonly TargetDatabase[],
): Promise<void> {
  const clients = [rig.quietSource, ...targets.map((t) => t.client)];
  await Promise.all(clients.map((client) => client.query(`truncate ${table}`)));
  await Promise.all(clients.map((client) => client.query(`vacuum analyze ${table}`)));
  // Targets share a cluster: one checkpoint there is enough.
  await Promise.all([rig.quietSource.query('checkpoint'), targets[0]?.client.query('checkpoint')]);
}

/**
 * Throws unless every target holds the rows the source does (count and hash of every row): no figure from
 * a wrong run.
 */
export async function checkTargets(
  rig: Rig,
  table: string,
  targets: readonly TargetDatabase[],
): Promise<void> {
  const expected = await tableFingerprint(rig.quietSource, table);
  for (const target of targets) {
    const found = await tableFingerprint(target.client, table);
    if (found.rows !== expected.rows || found.hash !== expected.hash) {
      throw new Error(
        `${table}: ${expected.rows} rows (hash ${expected.hash}) on the source, ` +
          `${found.rows} (hash ${found.hash}) on ${target.name}`,
      );
    }
  }
}
