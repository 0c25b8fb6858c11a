/**
 * What a leader's term starts its workers with, read from the installed source (SourceFacts), and what
 * the daemon's install says it did: the install is the term's first act (src/daemon/daemon.ts), or the
 * workers start beside it where the source was installed as this config installs it.
 */
import type pg from 'pg';

import type { Drain } from '../apply/plan-keeper.js';
import { copyAdvice, copyingReason, drainingTables, notInConfigAdvice } from '../capture/table-set.js';
import { describeSourceTables, type SourceTables } from '../capture/source-tables.js';
import { originOnlyAdvice } from '../capture/triggers.js';
import { formatQualifiedName } from '../config/identifiers.js';
import type { Config } from '../config/types.js';
import type { Logger } from '../lib/logger.js';
import { parseSnapshot } from '../changelog/snapshot.js';
import { claimedMessage } from '../changelog/targets.js';
import type { SourceInstallReport } from '../operator/install-source.js';

/** What the source told us at start, which every term's workers need. */
export interface SourceFacts {
  origin: string;
  sourceTables: SourceTables;
  /** Tables targets no longer take and still drain, by target; described alongside for their plans. */
  drains: Map<string, Drain[]>;
  drainedTables: SourceTables;
}

/** What the workers start with, read from the installed source: the tables the group's targets drain. */
export async function readSourceFacts(
  client: pg.Client,
  config: Config,
  origin: string,
  sourceTables: SourceTables,
): Promise<SourceFacts> {
  const draining = (await drainingTables(client, config.schema)).filter((d) =>
    config.targets.some((t) => t.name === d.target),
  );
  // A drained table that cannot be described (dropped since) is left out of its target's plan.
  const drained = await describeSourceTables(client, { ...config, tables: draining.map((d) => d.table) });
  const drains = new Map<string, Drain[]>();
  for (const d of draining) {
    const list = drains.get(d.target) ?? [];
    list.push({ relid: d.relid, table: d.table, mapping: d.mapping, until: parseSnapshot(d.until) });
    drains.set(d.target, list);
  }
  return { origin, sourceTables, drains, drainedTables: drained.tables };
}

/** Log what the daemon's install did, and what it advises. */
export function logInstall(logger: Logger, config: Config, report: SourceInstallReport): void {
  const group = config.group;
  logger.info(
    {
      schema: report.schema,
      tables: report.tables.length,
      added: report.targetsAdded,
      removed: report.targetsRemoved,
      group,
    },
    'source installed',
  );
  for (const claimed of report.targetsClaimed)
    logger.warn({ target: claimed.name, from: claimed.from, group }, claimedMessage(claimed, group));
  if (report.notInConfig.length > 0)
    logger.warn({ tables: report.notInConfig }, notInConfigAdvice(report.notInConfig));
  for (const gap of report.toCopy) logger.warn({ ...gap }, copyAdvice(gap));
  if (report.originOnly.length > 0)
    logger.warn({ tables: report.originOnly }, originOnlyAdvice(config.schema, report.originOnly));
  for (const { table, why } of report.captureGaps)
    logger.error({ table }, `capture of ${table} made again; ${why}`);
  for (const gap of report.copying)
    logger.info(
      { target: gap.target, table: gap.table },
      `target ${gap.target}: copies ${gap.table}, ${copyingReason(gap)} (initialSync: copy)`,
    );
}

/** Log the tables the term's targets drain: removed from their config, their changes still applied. */
export function logDrains(logger: Logger, facts: SourceFacts): void {
  for (const [target, drains] of facts.drains)
    for (const { table } of drains)
      logger.info(
        { target, table: formatQualifiedName(table) },
        `target ${target}: ${formatQualifiedName(table)} removed from its tables; its changes already in the log are still applied`,
      );
}
