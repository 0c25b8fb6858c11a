/** `trigsync demo [--duration SECONDS]`: the embedded demo (src/demo/), stopped cleanly by Ctrl-C. */
import { runDemo } from '../../demo/demo.js';
import type { Terminal } from '../../demo/live-view.js';
import type { CommandContext } from '../command-context.js';
import { ExitCode } from '../exit-codes.js';
import { processOutput } from '../output.js';
import { secondsOption } from './common.js';

/** A second signal this soon after the first is the same Ctrl-C, delivered twice. */
const duplicateSignalMs = 500;

export async function demoCommand(context: CommandContext): Promise<ExitCode> {
  const { out } = context;
  const duration = secondsOption(context, 'duration');

  // The live table redraws in place only on a real terminal; tests and pipes get plain lines.
  const tty = out === processOutput && process.stdout.isTTY;
  const terminal: Terminal = tty
    ? {
        print: (line) => out.print(line),
        write: (text) => process.stdout.write(text),
        columns: () => process.stdout.columns,
      }
    : { print: (line) => out.print(line) };

  const stopRequested = new AbortController();
  let firstSignalAt: number | undefined;
  const onSignal = (): void => {
    if (firstSignalAt === undefined) {
      firstSignalAt = Date.now();
      // The demo says so itself, between its own lines (the live table).
      stopRequested.abort();
      return;
    }
    // Under `npm run demo`, one Ctrl-C can arrive twice: from the terminal and forwarded by npm.
    if (Date.now() - firstSignalAt < duplicateSignalMs) return;
    // The demo's exit handler kills the servers before the process ends.
    process.exit(ExitCode.failure);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const outcome = await runDemo({ durationSeconds: duration, terminal, signal: stopRequested.signal });
    return outcome === 'different' ? ExitCode.problemFound : ExitCode.ok;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
