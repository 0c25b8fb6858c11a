/** `trigsync start`: run the daemon in the foreground until SIGTERM or SIGINT. */
import { loadConfig } from '../../config/load.js';
import { Daemon } from '../../daemon/daemon.js';
import { createLogger } from '../../lib/logger.js';
import { sleep } from '../../lib/runnable.js';
import type { CommandContext } from '../command-context.js';
import { ExitCode } from '../exit-codes.js';
import { configOptions } from './common.js';

export async function startCommand(context: CommandContext): Promise<ExitCode> {
  const config = loadConfig(configOptions(context));
  const logger = createLogger(config.log.level);
  const stopRequested = new AbortController();
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      logger.warn({ signal }, 'second signal: stopping at once');
      process.exit(ExitCode.failure);
    }
    logger.info({ signal }, 'stopping: finishing the batches in flight');
    stopRequested.abort();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  const daemon = new Daemon(config, logger);
  try {
    // start() waits for an unreachable source (containers start together) until stopped.
    const started = daemon.start();
    await Promise.race([started, once(stopRequested.signal)]);
    if (!stopRequested.signal.aborted) {
      await started;
      // Runs until a signal, or until it finds a problem only an operator can fix (a config error).
      const failure = await Promise.race([once(stopRequested.signal).then(() => undefined), daemon.failed]);
      if (failure !== undefined) throw failure;
    }
    const timer = new AbortController();
    const timeout = sleep(config.shutdownTimeoutMs, timer.signal).then(() => 'timeout' as const);
    const outcome = await Promise.race([daemon.stop().then(() => 'stopped' as const), timeout]);
    timer.abort();
    if (outcome === 'timeout') {
      // A batch still waits on its target: the process would stay alive for it, so exit now. The target
      // rolls the batch back when the connection drops; its position did not move.
      logger.error(
        { timeoutMs: config.shutdownTimeoutMs },
        'shutdown timed out; exiting with batches in flight',
      );
      logger.flush();
      process.exit(ExitCode.failure);
    }
    return ExitCode.ok;
  } catch (thrown) {
    await daemon.stop();
    throw thrown;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    logger.flush();
  }
}

function once(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}
