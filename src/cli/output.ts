/** Where a command writes: stdout for results, stderr for errors. Tests pass a collecting one. */
export interface Output {
  print(text: string): void;
  error(text: string): void;
}

export const processOutput: Output = {
  print: (text) => process.stdout.write(`${text}\n`),
  error: (text) => process.stderr.write(`${text}\n`),
};

/** An Output that keeps what was written, for tests. */
export function collectingOutput(): Output & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, print: (t) => stdout.push(t), error: (t) => stderr.push(t) };
}
