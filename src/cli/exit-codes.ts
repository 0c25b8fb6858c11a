/** Exit codes of the `trigsync` command (SPEC §4). */
export const ExitCode = {
  /** The command did what it was asked. */
  ok: 0,
  /** The command ran and found a problem: differences, a parked target for `status --check`. */
  problemFound: 1,
  /** Wrong usage or configuration; also a command that has not been built yet. */
  usage: 2,
  /** The command failed: a database unreachable, an unexpected error. */
  failure: 3,
} as const;

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];
