/** pino JSON logs on stdout (SPEC §5). Children carry the part, the target and the batch. */
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export function createLogger(level: LevelWithSilent = 'info', destination?: DestinationStream): Logger {
  return pino(
    {
      name: 'trigsync',
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      // A connection string may carry a password: never log one whole.
      redact: { paths: ['url', '*.url', 'password', '*.password', 'connectionString'], censor: '***' },
    },
    destination,
  );
}
