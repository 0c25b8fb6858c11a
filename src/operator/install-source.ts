/**
 * `install` on the source: migrations, the capture triggers of every configured table, the target
 * registry. Idempotent: run by `trigsync install` and at the start of every term of the leading daemon
 * (src/daemon/daemon.ts), of every group's leader (each installs its own tables and targets, one at a
 * time). Captured tables the config does not list stay captured (src/capture/table-set.ts): only
 * `uninstall` stops capture (src/capture/install.ts).
 */
import type pg from 'pg';

import { installDigest, recordInstallDigest } from '../capture/install-digest.js';
import { capturedBefore, ensureTableCapture, lockCapture, recordCaptureFires } from '../capture/install.js';
import { recordColumnNames } from '../capture/renamed-columns.js';
import { captureGapWhy } from '../capture/triggers.js';
import { migrate, type MigrateResult } from '../capture/migrations.js';
import { describeSourceTables, type SourceTables } from '../capture/source-tables.js';
import {
  capturedNotInConfig,
  noteCaptureGap,
  recordGroupTables,
  recreatedTables,
  recordTargetTables,
  tablesToCopy,
  type TableToCopy,
} from '../capture/table-set.js';
import { formatQualifiedName, ident } from '../config/identifiers.js';
import type { Config, QualifiedName } from '../config/types.js';
import { inTransactionGivingWay } from '../db/giving-way.js';
import { ConfigError } from '../failure/errors.js';
import { registerTargets, type ClaimedTarget } from '../changelog/targets.js';
import { requestSync } from '../sync/requests.js';

export interface SourceInstallReport {
  schema: MigrateResult;
  tables: { table: string; relid: number; key: string[]; triggers: 'created' | 'unchanged' }[];
  /**
   * Tables whose capture was found off (a trigger disabled or dropped meanwhile): what stopped it. Every
   * target that takes one may lack writes made meanwhile, and is told so in `toCopy` or `copying`.
   */
  captureGaps: { table: string; why: string }[];
  /** Tables whose capture fires on origin only: trigsync's role does not own them (originOnlyAdvice). */
  originOnly: string[];
  /** Captured tables this config does not list: their capture stays. */
  notInConfig: string[];
  /** Tables `initialSync: none` targets take and may lack rows or changes of: a copy of each is needed. */
  toCopy: TableToCopy[];
  /** The same for `initialSync: copy` targets: a sync of each is requested, which the daemon copies. */
  copying: TableToCopy[];
  targetsAdded: string[];
  targetsRemoved: string[];
  /** Targets this group took over from a group that no daemon leads (src/changelog/targets.ts). */
  targetsClaimed: ClaimedTarget[];
  /**
   * The configured tables as described before their capture was ensured: what the daemon's workers
   * plan with. An ALTER TABLE since shows in their catalog versions (src/apply/plan-keeper.ts).
   */
  sourceTables: SourceTables;
}

const recreatedWhy =
  'it was dropped and created again under its name: the new table was not captured until now';

/**
 * `described`: the configured tables as described moments before on this connection (the daemon's
 * check), else described now. Either is before the capture lock: an ALTER TABLE meanwhile is the
 * capture watcher's to follow (src/capture/capture-watcher.ts), as one during a run is.
 */
export async function installSource(
  client: pg.ClientBase & pg.Client,
  config: Config,
  described?: SourceTables,
  /** A daemon's stop: the install then no longer begins again after giving way to the tables' writers. */
  signal?: AbortSignal,
): Promise<SourceInstallReport> {
  const tables = described ?? (await describedWithoutProblems(client, config));
  const schema = await migrate(client, config.schema, 'source');
  const s = ident(config.schema);
  // Given way to the tables' writers (src/db/giving-way.ts), the transaction begins again: a fresh report.
  return inTransactionGivingWay(
    client,
    async () => {
      const report: SourceInstallReport = {
        schema,
        tables: [],
        captureGaps: [],
        originOnly: [],
        notInConfig: [],
        toCopy: [],
        copying: [],
        targetsAdded: [],
        targetsRemoved: [],
        targetsClaimed: [],
        sourceTables: tables,
      };
      await lockCapture(client, config.schema);
      const captured = await capturedBefore(client, config.schema);
      for (const [display, table] of tables) {
        const ensured = await ensureTableCapture(
          client,
          config,
          table,
          captured.get(table.relid) ?? { made: false, always: false },
        );
        await client.query(
          `insert into ${s}.captured_table (relid, schema_name, table_name, key_columns) values ($1, $2, $3, $4)
         on conflict (relid) do update set schema_name = excluded.schema_name, table_name = excluded.table_name,
           key_columns = excluded.key_columns`,
          [table.relid, table.name.schema, table.name.name, table.key],
        );
        if (ensured.stopped.length > 0) {
          const why = captureGapWhy(ensured.stopped);
          await noteCaptureGap(client, config.schema, table.relid, why);
          report.captureGaps.push({ table: display, why });
        }
        report.tables.push({
          table: display,
          relid: table.relid,
          key: table.key,
          triggers: ensured.changed ? 'created' : 'unchanged',
        });
      }
      report.originOnly = await recordCaptureFires(client, config.schema, [...tables.values()]);
      await recordColumnNames(
        client,
        config.schema,
        [...tables.values()].map((t) => t.relid),
      );
      await recordGroupTables(
        client,
        config.schema,
        config.group,
        [...tables.values()].map((t) => t.relid),
      );
      report.notInConfig = await capturedNotInConfig(client, config);
      const targets = await registerTargets(client, config.schema, config.group, config.targets);
      report.targetsAdded = targets.added;
      report.targetsRemoved = targets.removed;
      report.targetsClaimed = targets.claimed;
      const relidOf = (name: QualifiedName) => tables.get(formatQualifiedName(name))!.relid;
      await recordTargetTables(
        client,
        config.schema,
        config.targets.map((t) => ({
          name: t.name,
          tables: t.tables.map((mapping) => ({ relid: relidOf(mapping.source), mapping })),
        })),
        {
          targets: targets.added,
          relids: [...tables.values()].map((t) => t.relid).filter((r) => !captured.has(r)),
        },
      );
      // A table created again under a captured name: its targets took the old one; its rows and writes
      // until now are the new one's, which nothing captured (src/capture/capture-watcher.ts followNames).
      for (const relid of await recreatedTables(client, config.schema, [...tables.values()])) {
        const table = [...tables].find(([, t]) => t.relid === relid)![0];
        await noteCaptureGap(client, config.schema, relid, recreatedWhy);
        report.captureGaps.push({ table, why: recreatedWhy });
      }
      const modes = new Map(config.targets.map((t) => [t.name, t.initialSync]));
      for (const gap of await tablesToCopy(client, config.schema)) {
        if (modes.get(gap.target) === 'none') report.toCopy.push(gap);
        if (modes.get(gap.target) === 'copy') report.copying.push(gap);
      }
      // A table a copy target takes anew (added to the config, say) is copied to it like its first tables.
      for (const target of new Set(report.copying.map((g) => g.target))) {
        const tables = report.copying.filter((g) => g.target === target).map((g) => g.table);
        await requestSync(client, config.schema, target, tables);
      }
      // Last: what a daemon of the same config finds installed as it would install it.
      await recordInstallDigest(client, config.schema, config.group, installDigest(config, tables));
      return report;
    },
    { signal },
  );
}

async function describedWithoutProblems(client: pg.ClientBase, config: Config): Promise<SourceTables> {
  const { tables, problems } = await describeSourceTables(client, config);
  if (problems.length > 0) throw new ConfigError(problems);
  return tables;
}
