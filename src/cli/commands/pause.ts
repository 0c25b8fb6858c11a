/**
 * `trigsync pause TARGET` and `trigsync resume TARGET`: stop applying to one target, keeping its place in
 * the log, and go on from there. Recorded on the source, so a pause outlives the daemon's restarts; the
 * running daemon acts on it at once.
 */
import { loadConfig } from '../../config/load.js';
import { ConfigError } from '../../failure/errors.js';
import { askPause } from '../../operator/commands.js';
import type { CommandContext } from '../command-context.js';
import { ExitCode } from '../exit-codes.js';
import { configOptions, notRegistered, onInstalledSource } from './common.js';
import { targetArgument } from './errors.js';

async function setPaused(context: CommandContext, paused: boolean): Promise<ExitCode> {
  const config = loadConfig(configOptions(context));
  const target = targetArgument(context, config, true)!;
  const before = await onInstalledSource(config, (client) =>
    askPause(client, config.schema, target, paused),
  ).catch((thrown: unknown) => {
    // A source installed by a trigsync before pauses (sql/source/024).
    if ((thrown as { code?: string }).code === '42703' && /paused_/.test((thrown as Error).message)) {
      throw new ConfigError(
        `the source's trigsync schema predates pausing a target; upgrade it first: run install (or start)`,
      );
    }
    throw thrown;
  });
  if (!before.registered) {
    throw notRegistered(target);
  }
  const since = before.since === undefined ? undefined : `since ${before.since} by ${before.by}`;
  if (paused) {
    context.out.print(
      since === undefined
        ? `${target} paused: the running daemon applies nothing more to it after the batch in flight, ` +
            `and the source keeps its changes until \`trigsync resume ${target}\``
        : `${target} was paused already, ${since}`,
    );
  } else {
    context.out.print(
      since === undefined
        ? `${target} was not paused`
        : `${target} resumed (it was paused ${since}): the running daemon applies what waited now`,
    );
  }
  return ExitCode.ok;
}

export function pauseCommand(context: CommandContext): Promise<ExitCode> {
  return setPaused(context, true);
}

export function resumeCommand(context: CommandContext): Promise<ExitCode> {
  return setPaused(context, false);
}
