/** Command name → the function that runs it. Commands not listed here are not built yet. */
import type { ExitCode } from './exit-codes.js';
import type { Output } from './output.js';
import { checkCommand } from './commands/check.js';
import { demoCommand } from './commands/demo.js';
import { errorsCommand, retryCommand, skipCommand } from './commands/errors.js';
import { installCommand, uninstallCommand } from './commands/install.js';
import { repairCommand } from './commands/repair.js';
import { startCommand } from './commands/start.js';
import { statusCommand } from './commands/status.js';
import { syncCommand } from './commands/sync.js';
import { verifyCommand } from './commands/verify.js';

/** An option's value: a list for an option that may be given more than once (`--table A --table B`). */
export type OptionValue = string | boolean | string[] | undefined;

export interface CommandContext {
  /** Positional arguments after the command word. */
  args: string[];
  options: Record<string, OptionValue>;
  configFile: string | undefined;
  env: NodeJS.ProcessEnv;
  out: Output;
}

export type CommandHandler = (context: CommandContext) => Promise<ExitCode>;

export const handlers: Partial<Record<string, CommandHandler>> = {
  check: checkCommand,
  install: installCommand,
  uninstall: uninstallCommand,
  start: startCommand,
  status: statusCommand,
  errors: errorsCommand,
  retry: retryCommand,
  skip: skipCommand,
  sync: syncCommand,
  verify: verifyCommand,
  repair: repairCommand,
  demo: demoCommand,
};
