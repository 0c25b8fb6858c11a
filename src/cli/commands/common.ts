/** What several commands share. */
import type { CommandContext } from '../handlers.js';

/** loadConfig's options from the command line and the environment. */
export function configOptions(context: CommandContext): { file?: string; env: NodeJS.ProcessEnv } {
  return context.configFile === undefined
    ? { env: context.env }
    : { file: context.configFile, env: context.env };
}
