/**
 * `trigsync install` and `uninstall --yes`: create or remove trigsync's objects on the source and targets;
 * `uninstall --table T --yes` stops capturing only the tables named. A registered target the config no
 * longer lists cannot be reached: uninstall says what it leaves there and the SQL that removes it.
 */
import type pg from 'pg';

import { buildTargetPlan } from '../../apply/plan.js';
import { reconcileGuards } from '../../capture/guard.js';
import { sourceOrigin, uninstallSource, uninstallTarget } from '../../capture/install.js';
import { migrate } from '../../capture/migrations.js';
import { describeSourceTables } from '../../capture/source-tables.js';
import { copyAdvice, copyingReason, notInConfigAdvice, uncaptureTables } from '../../capture/table-set.js';
import { originOnlyAdvice } from '../../capture/triggers.js';
import { formatIdentifier, ident, parseQualifiedName, sqlLiteral } from '../../config/identifiers.js';
import { loadConfig } from '../../config/load.js';
import { configSecrets, redactSecrets } from '../../config/redact.js';
import { defaultGroup, type Config, type TargetConfig } from '../../config/types.js';
import { sourceDatabase, withClient } from '../../db/connect.js';
import { ConfigError, UsageError, coerceError } from '../../failure/errors.js';
import { installSource } from '../../operator/install-source.js';
import { claimedMessage } from '../../changelog/targets.js';
import type { CommandContext, OptionValue } from '../command-context.js';
import { ExitCode } from '../exit-codes.js';
import { configOptions } from './common.js';
import { relationExists } from '../../db/relation-exists.js';

type TargetOutcome =
  { name: string; ok: true } | { name: string; ok: false; config: boolean; message: string };

async function eachTarget(
  config: Config,
  work: (target: TargetConfig) => Promise<void>,
): Promise<TargetOutcome[]> {
  const secrets = configSecrets(config);
  return Promise.all(
    config.targets.map(async (target): Promise<TargetOutcome> => {
      try {
        await work(target);
        return { name: target.name, ok: true };
      } catch (thrown) {
        const message = redactSecrets(coerceError(thrown).message, secrets);
        return { name: target.name, ok: false, config: thrown instanceof ConfigError, message };
      }
    }),
  );
}

function report(context: CommandContext, outcomes: TargetOutcome[]): ExitCode {
  for (const o of outcomes) {
    context.out.print(o.ok ? `target ${o.name}: ok` : `target ${o.name}: FAILED: ${o.message}`);
  }
  const failed = outcomes.filter((o) => !o.ok);
  if (failed.some((o) => !o.ok && o.config)) return ExitCode.usage;
  return failed.length > 0 ? ExitCode.problemFound : ExitCode.ok;
}

export async function installCommand(context: CommandContext): Promise<ExitCode> {
  const config = loadConfig(configOptions(context));
  const options = { applicationName: config.applicationName };
  const sourceTables = await withClient(
    config.source.url,
    { ...options, database: sourceDatabase },
    async (client) => {
      const result = await installSource(client, config);
      context.out.print(
        `source: schema ${config.schema} at version ${result.schema.to}; capturing ${result.tables.map((t) => t.table).join(', ')}`,
      );
      for (const name of result.targetsAdded) {
        if (config.targets.find((t) => t.name === name)?.initialSync === 'copy') {
          context.out.print(
            `target ${name}: registered; the daemon copies its tables first (initialSync: copy), then follows`,
          );
        }
      }
      if (result.notInConfig.length > 0)
        context.out.print(`source: ${notInConfigAdvice(result.notInConfig)}`);
      for (const gap of result.toCopy) context.out.print(copyAdvice(gap));
      if (result.originOnly.length > 0)
        context.out.print(`source: ${originOnlyAdvice(config.schema, result.originOnly)}`);
      for (const { table, why } of result.captureGaps)
        context.out.print(`source: capture of ${table} made again; ${why}`);
      for (const gap of result.copying)
        context.out.print(
          `target ${gap.target}: the daemon copies ${gap.table}, ${copyingReason(gap)} (initialSync: copy)`,
        );
      for (const claimed of result.targetsClaimed) context.out.print(claimedMessage(claimed, config.group));
      if (result.targetsRemoved.length > 0) {
        context.out.print(
          `source: target(s) ${result.targetsRemoved.join(', ')} no longer configured; they hold the log until dropped`,
        );
      }
      return (await describeSourceTables(client, config)).tables;
    },
  );
  const outcomes = await eachTarget(config, (target) =>
    withClient(target.url, options, async (client) => {
      await migrate(client, config.schema, 'target');
      const plan = await buildTargetPlan(config, target, sourceTables, client);
      await reconcileGuards(client, config, target, plan);
      for (const warning of plan.warnings) context.out.print(`${target.name}: warning: ${warning}`);
    }),
  );
  return report(context, outcomes);
}

export async function uninstallCommand(context: CommandContext): Promise<ExitCode> {
  const named = tableOptions(context.options.table);
  if (context.options.yes !== true) {
    throw new UsageError(
      named.length > 0
        ? `uninstall --table removes the capture triggers of ${named.join(', ')}; confirm with --yes`
        : "uninstall removes trigsync's schema, change log and triggers; confirm with --yes",
    );
  }
  const config = loadConfig(configOptions(context));
  if (named.length > 0) return uninstallTables(context, config, named);
  const options = { applicationName: config.applicationName };
  const { origin, tables, removed, unlisted } = await withClient(
    config.source.url,
    { ...options, database: sourceDatabase },
    async (client) => {
      const origin = await sourceOrigin(client, config.schema).catch(() => undefined);
      const unlisted = await unlistedTargets(client, config);
      return { origin, unlisted, ...(await uninstallSource(client, config)) };
    },
  );
  context.out.print(
    removed === 'schema'
      ? `source: removed schema ${config.schema} and the triggers on ${tables.join(', ')}`
      : `source: removed trigsync's capture objects and the triggers on ${tables.join(', ')}; schema ` +
          `${config.schema} stays, as this database is another source's target`,
  );
  const outcomes = await eachTarget(config, (target) =>
    withClient(target.url, options, (client) => uninstallTarget(client, config.schema, origin, target)),
  );
  const code = report(context, outcomes);
  for (const target of unlisted) context.out.print(leftBehind(config, target, origin));
  return code;
}

/** A target the source's registry held that the config does not list. */
interface UnlistedTarget {
  name: string;
  group: string;
  state: string;
}

/**
 * The registered targets this config does not list (removed from it, or another group's): uninstall
 * knows no URL of theirs, so their databases keep trigsync's schema.
 */
async function unlistedTargets(client: pg.ClientBase, config: Config): Promise<UnlistedTarget[]> {
  const s = ident(config.schema);
  const found = await relationExists(client, `${s}.target`);
  if (!found) return [];
  // to_jsonb: group_name came with a later migration than the registry.
  const registered = await client.query<UnlistedTarget>(
    `select name, state, coalesce(to_jsonb(t) ->> 'group_name', $1) as group from ${s}.target t order by name`,
    [defaultGroup],
  );
  return registered.rows.filter((r) => !config.targets.some((t) => t.name === r.name));
}

/** What stays on an unlisted target's database, and the SQL that removes it there. */
function leftBehind(config: Config, target: UnlistedTarget, origin: string | undefined): string {
  const s = formatIdentifier(config.schema);
  const whose =
    target.group !== config.group
      ? `group ${target.group}'s, not in this config`
      : target.state === 'removed'
        ? 'removed from the config'
        : 'not in this config';
  return [
    `target ${target.name}: ${whose}, so not reached: its database keeps trigsync's schema ${s} ` +
      '(positions, read-only guards). To remove it, run on that database:',
    ...(origin === undefined
      ? []
      : [`  delete from ${s}.applied_position where origin = ${sqlLiteral(origin)};`]),
    `  -- then, unless another source still applies there (rows left in ${s}.applied_position) or the ` +
      'database is a trigsync source itself:',
    `  drop schema ${s} cascade;`,
  ].join('\n');
}

/** `--table`, given once or more. */
function tableOptions(value: OptionValue): string[] {
  if (typeof value === 'string') return [value];
  return Array.isArray(value) ? value : [];
}

/** `uninstall --table T ... --yes`: the capture of these tables goes, everything else stays. */
async function uninstallTables(context: CommandContext, config: Config, tables: string[]): Promise<ExitCode> {
  const names = tables.map((option) => {
    try {
      return parseQualifiedName(option);
    } catch (thrown) {
      throw new UsageError(`--table ${option}: ${coerceError(thrown).message}`);
    }
  });
  const options = { applicationName: config.applicationName };
  const removed = await withClient(config.source.url, { ...options, database: sourceDatabase }, (client) =>
    uncaptureTables(client, config, names),
  );
  context.out.print(`source: removed the capture triggers of ${removed.join(', ')}; no longer captured`);
  return ExitCode.ok;
}
