/** `trigsync install` and `uninstall --yes`: create or remove trigsync's objects on the source and targets. */
import { describeSourceTables, buildTargetPlan } from '../../apply/plan.js';
import { reconcileGuards } from '../../capture/guard.js';
import { installSource, sourceOrigin, uninstallSource, uninstallTarget } from '../../capture/install.js';
import { migrate } from '../../capture/migrations.js';
import { loadConfig } from '../../config/load.js';
import { configSecrets, redactSecrets } from '../../config/redact.js';
import type { Config, TargetConfig } from '../../config/types.js';
import { withClient } from '../../db/connect.js';
import { ConfigError, UsageError, coerceError } from '../../failure/errors.js';
import { ExitCode } from '../exit-codes.js';
import type { CommandContext } from '../handlers.js';
import { configOptions } from './common.js';

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
  const sourceTables = await withClient(config.source.url, options, async (client) => {
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
    if (result.uncaptured.length > 0)
      context.out.print(`source: no longer capturing ${result.uncaptured.join(', ')}`);
    if (result.targetsRemoved.length > 0) {
      context.out.print(
        `source: target(s) ${result.targetsRemoved.join(', ')} no longer configured; they hold the log until dropped`,
      );
    }
    return (await describeSourceTables(client, config)).tables;
  });
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
  if (context.options.yes !== true) {
    throw new UsageError("uninstall removes trigsync's schema, change log and triggers; confirm with --yes");
  }
  const config = loadConfig(configOptions(context));
  const options = { applicationName: config.applicationName };
  const { origin, tables } = await withClient(config.source.url, options, async (client) => {
    const origin = await sourceOrigin(client, config.schema).catch(() => undefined);
    return { origin, ...(await uninstallSource(client, config)) };
  });
  context.out.print(`source: removed schema ${config.schema} and the triggers on ${tables.join(', ')}`);
  const outcomes = await eachTarget(config, (target) =>
    withClient(target.url, options, (client) => uninstallTarget(client, config.schema, origin, target)),
  );
  return report(context, outcomes);
}
