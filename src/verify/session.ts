/**
 * What `verify` and `repair` share before comparing anything: the source session, the change-log
 * session, and for each selected target its connection, its plan (mapping, columns, key, row filter)
 * and how it follows this source.
 */
import type pg from 'pg';

import { buildTargetPlan, type TablePlan } from '../apply/plan.js';
import type { ColumnInfo } from '../capture/catalog.js';
import { describeSourceTables } from '../capture/source-tables.js';
import { formatQualifiedName } from '../config/identifiers.js';
import type { Config, TargetConfig } from '../config/types.js';
import {
  connect,
  DatabaseConnectionError,
  sourceDatabase,
  targetDatabase,
  type ConnectOptions,
} from '../db/connect.js';
import { ConfigError } from '../failure/errors.js';
import { installedOrigin, type Follower } from './catch-up.js';
import { selectTables } from './selection.js';
import { verifySessionSettings } from './table-side.js';

export interface TargetWork {
  name: string;
  tables: TablePlan[];
  columnsOf: (table: TablePlan) => ColumnInfo[];
  whereOf: (table: TablePlan) => string | undefined;
  /** How the target follows this source, and a source session on the present; undefined: it does not. */
  follower: (Follower & { changeLog: pg.ClientBase }) | undefined;
}

/** One selected target, connected: the sessions are the caller's while `visit` runs, then closed. */
export interface TargetSession {
  config: Config;
  target: TargetConfig;
  /** The source session that compares (snapshots are taken on it). */
  source: pg.Client;
  /** The target's session, in verify's session settings. */
  client: pg.Client;
  work: TargetWork;
}

/** The source types of a table's key columns. */
export function keyTypesOf(work: TargetWork, table: TablePlan): string[] {
  const columns = work.columnsOf(table);
  return table.key.map((k) => columns.find((c) => c.name === k)!.type);
}

/**
 * Connect to the source and, in turn, to each target the options select; plan each target as the
 * daemon does and hand it to `visit`. Usage errors name an unknown target or table; a source or target
 * that does not fit the config is a ConfigError. Connection errors name their database (`source`,
 * `target NAME`); one of a target, at its connect or under `visit`, goes to `unreachable` when given
 * (the other targets are still visited), else it is thrown.
 */
export async function forEachTarget<T>(
  config: Config,
  options: { target?: string | undefined; table?: string | undefined },
  visit: (session: TargetSession) => Promise<T>,
  unreachable?: (target: TargetConfig, error: DatabaseConnectionError) => T,
): Promise<T[]> {
  const selection = selectTables(config, options);
  const on = (database: string): ConnectOptions => ({ applicationName: config.applicationName, database });
  const source = await connect(config.source.url, on(sourceDatabase));
  let changeLog: pg.Client | undefined;
  try {
    await verifySessionSettings(source);
    const described = await describeSourceTables(source, config);
    if (described.problems.length > 0) throw new ConfigError(described.problems);
    const origin = await installedOrigin(source, config.schema);
    // Where trigsync replicates, a second session reads the change log in snapshots of its own.
    if (origin !== undefined) {
      changeLog = await connect(config.source.url, on(sourceDatabase));
      await verifySessionSettings(changeLog);
    }
    const results: T[] = [];
    for (const { target, mappings } of selection) {
      const database = targetDatabase(target.name);
      let client: pg.Client;
      try {
        client = await connect(target.url, on(database));
      } catch (thrown) {
        if (unreachable === undefined || !isOf(thrown, database)) throw thrown;
        results.push(unreachable(target, thrown));
        continue;
      }
      try {
        await verifySessionSettings(client);
        const plan = await buildTargetPlan(config, { ...target, tables: mappings }, described.tables, client);
        const follower =
          origin === undefined || changeLog === undefined
            ? undefined
            : {
                schema: config.schema,
                origin,
                target: target.name,
                relids: [...plan.tables.keys()],
                changeLog,
              };
        const work: TargetWork = {
          name: target.name,
          tables: [...plan.tables.values()],
          columnsOf: (t) => described.tables.get(t.sourceName)!.columns,
          whereOf: (t) => mappings.find((m) => formatQualifiedName(m.source) === t.sourceName)?.where,
          follower,
        };
        results.push(await visit({ config, target, source, client, work }));
      } catch (thrown) {
        // The target broke off midway: the sessions on the source are still usable (visit ends its
        // transactions whatever happens), so the next target is compared.
        if (unreachable === undefined || !isOf(thrown, database)) throw thrown;
        results.push(unreachable(target, thrown));
      } finally {
        await client.end().catch(() => undefined);
      }
    }
    return results;
  } finally {
    await changeLog?.end().catch(() => undefined);
    await source.end().catch(() => undefined);
  }
}

/** A connection error of `database`. */
function isOf(thrown: unknown, database: string): thrown is DatabaseConnectionError {
  return thrown instanceof DatabaseConnectionError && thrown.database === database;
}
