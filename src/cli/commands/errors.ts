/** The error queue and what operators do about it: `errors`, `retry TARGET`, `skip TARGET CHANGE_ID --yes`. */
import { loadConfig } from '../../config/load.js';
import type { Config } from '../../config/types.js';
import { UsageError } from '../../failure/errors.js';
import { listErrors, parkedWithoutChange } from '../../changelog/error-queue.js';
import { askRetry, askSkip } from '../../operator/commands.js';
import type { CommandContext } from '../command-context.js';
import { ExitCode } from '../exit-codes.js';
import { configOptions, onInstalledSource } from './common.js';

export function targetArgument(
  context: CommandContext,
  config: Config,
  required: boolean,
): string | undefined {
  const name = context.args[0];
  if (name === undefined) {
    if (required) throw new UsageError('name the target');
    return undefined;
  }
  if (!config.targets.some((t) => t.name === name)) {
    throw new UsageError(
      `no target named ${name} in the config (targets: ${config.targets.map((t) => t.name).join(', ')})`,
    );
  }
  return name;
}

/**
 * The change log's letter for each operation (docs/operations.md, "A parked target"), said in words in
 * the text output; `--json` keeps the letter.
 */
const operationNames: Record<string, string> = {
  I: 'insert',
  U: 'update',
  D: 'delete',
  T: 'truncate',
  P: 'truncate of a partition',
  V: 'old row of an update',
};

export async function errorsCommand(context: CommandContext): Promise<ExitCode> {
  const config = loadConfig(configOptions(context));
  const target = targetArgument(context, config, false);
  const { entries, parked } = await onInstalledSource(config, async (client) => ({
    entries: await listErrors(client, config.schema, target),
    parked: await parkedWithoutChange(client, config.schema, target),
  }));
  if (context.options.json === true) {
    context.out.print(JSON.stringify({ errors: entries, parked }));
    return ExitCode.ok;
  }
  // A target parked by no single change (a copy that cannot go on, say) has an empty queue: say why.
  for (const p of parked) {
    context.out.print(`${p.target}  parked since ${p.since}, not by a change\n    ${p.message}`);
  }
  if (entries.length === 0) {
    if (parked.length === 0)
      context.out.print(target === undefined ? 'no errors' : `no errors for ${target}`);
  } else {
    for (const e of entries) {
      context.out.print(
        `${e.target}  change ${e.changeId}  ${e.table}  ${operationNames[e.op] ?? e.op}  key ${e.key ?? '-'}  ` +
          `${e.sqlstate ?? '-'}  ` +
          `attempts ${e.attempts} since ${e.firstFailedAt}\n    ${e.message}`,
      );
    }
  }
  return ExitCode.ok;
}

export async function retryCommand(context: CommandContext): Promise<ExitCode> {
  const config = loadConfig(configOptions(context));
  const target = targetArgument(context, config, true)!;
  await onInstalledSource(config, (client) => askRetry(client, config.schema, target));
  context.out.print(`retry of ${target} requested; a running daemon tries it now`);
  return ExitCode.ok;
}

export async function skipCommand(context: CommandContext): Promise<ExitCode> {
  const config = loadConfig(configOptions(context));
  const target = targetArgument(context, config, true)!;
  const changeId = Number(context.args[1]);
  if (!Number.isSafeInteger(changeId) || changeId <= 0) {
    throw new UsageError(
      'name the change: trigsync skip TARGET CHANGE_ID --yes (see trigsync errors TARGET)',
    );
  }
  if (context.options.yes !== true) {
    throw new UsageError(`skipping drops change ${changeId} for ${target} for good; confirm with --yes`);
  }
  const skipped = await onInstalledSource(config, (client) =>
    askSkip(client, config.schema, target, changeId),
  );
  context.out.print(
    `skipped change ${changeId} (${skipped.op} on ${skipped.table}) for ${target}; recorded as done by ${skipped.skippedBy}`,
  );
  return ExitCode.ok;
}
