/** What a command's handler is given and returns; the registry of handlers is handlers.ts. */
import type { CommandSpec } from './commands.js';
import type { ExitCode } from './exit-codes.js';
import type { Output } from './output.js';

/** An option's value: a list for an option that may be given more than once (`--table A --table B`). */
export type OptionValue = string | boolean | string[] | undefined;

export interface CommandContext {
  /** The description of the command being run: its options' defaults live there. */
  command: CommandSpec;
  /** Positional arguments after the command word. */
  args: string[];
  options: Record<string, OptionValue>;
  configFile: string | undefined;
  env: NodeJS.ProcessEnv;
  out: Output;
}

export type CommandHandler = (context: CommandContext) => Promise<ExitCode>;
