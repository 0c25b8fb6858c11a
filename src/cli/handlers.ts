/** Command name → the function that runs it. Commands not listed here are not built yet. */
import type { CommandHandler } from './command-context.js';
import { checkCommand } from './commands/check.js';
import { demoCommand } from './commands/demo.js';
import { errorsCommand, retryCommand, skipCommand } from './commands/errors.js';
import { installCommand, uninstallCommand } from './commands/install.js';
import { pauseCommand, resumeCommand } from './commands/pause.js';
import { repairCommand } from './commands/repair.js';
import { startCommand } from './commands/start.js';
import { statusCommand } from './commands/status.js';
import { syncCommand } from './commands/sync.js';
import { verifyCommand } from './commands/verify.js';

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
  pause: pauseCommand,
  resume: resumeCommand,
  verify: verifyCommand,
  repair: repairCommand,
  demo: demoCommand,
};
