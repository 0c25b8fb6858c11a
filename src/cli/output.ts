/** Where a command writes: stdout for results, stderr for errors. Tests pass a collecting one. */
export interface Output {
  print(text: string): void;
  error(text: string): void;
}

export const processOutput: Output = {
  print: (text) => {
    readerMayLeave();
    if (!readerLeft) process.stdout.write(`${text}\n`);
  },
  error: (text) => process.stderr.write(`${text}\n`),
};

/**
 * A reader that stops reading (`trigsync status | head -3`) closes the pipe: what it would have read is
 * dropped, and the command goes on to its end (an install half done would be worse than lines unread),
 * where an EPIPE on stdout would otherwise end the process with a stack trace.
 */
let readerLeft = false;
let watching = false;
function readerMayLeave(): void {
  if (watching) return;
  watching = true;
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    readerLeft = true;
  });
}

/** An Output that keeps what was written, for tests. */
export function collectingOutput(): Output & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, print: (t) => stdout.push(t), error: (t) => stderr.push(t) };
}
