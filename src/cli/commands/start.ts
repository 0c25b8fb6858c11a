/** `trigsync start`: run the daemon in the foreground until SIGTERM or SIGINT. */
import { loadConfig } from '../../config/load.js';
import { Daemon } from '../../daemon/daemon.js';
import { classifyError, coerceError } from '../../failure/errors.js';
import { createLogger } from '../../lib/logger.js';
import { Backoff, sleep } from '../../lib/runnable.js';
import { ExitCode } from '../exit-codes.js';
import type { CommandContext } from '../handlers.js';
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
  try {
    // The source may not be up yet (containers start together): retry until it is, or until stopped.
    const backoff = new Backoff(config.retry);
    let daemon: Daemon | undefined;
    while (daemon === undefined && !stopRequested.signal.aborted) {
      const candidate = new Daemon(config, logger);
      try {
        await candidate.start();
        daemon = candidate;
      } catch (thrown) {
        await candidate.stop();
        if (classifyError(thrown) !== 'connection') throw thrown;
        logger.warn({ err: coerceError(thrown).message }, 'source unreachable; retrying');
        await sleep(backoff.next(), stopRequested.signal);
      }
    }
    if (daemon === undefined) return ExitCode.ok;
    await new Promise<void>((resolve) =>
      stopRequested.signal.addEventListener('abort', () => resolve(), { once: true }),
    );
    const timer = new AbortController();
    const timeout = sleep(config.shutdownTimeoutMs, timer.signal).then(() => 'timeout' as const);
    const outcome = await Promise.race([daemon.stop().then(() => 'stopped' as const), timeout]);
    timer.abort();
    if (outcome === 'timeout') {
      logger.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown timed out');
      return ExitCode.failure;
    }
    return ExitCode.ok;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    logger.flush();
  }
}
