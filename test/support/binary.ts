// The built `trigsync` command, run as a user runs it (npm test builds first): its exit code and output.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface BinaryResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `file` (a launcher) with node, without the environment's TRIGSYNC_CONFIG. */
export async function runBinary(file: string, args: readonly string[]): Promise<BinaryResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, [file, ...args], {
      env: { ...process.env, TRIGSYNC_CONFIG: '' },
    });
    return { code: 0, stdout, stderr };
  } catch (thrown) {
    const failed = thrown as BinaryResult;
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

/** `trigsync ARGS` from the project's bin/. */
export function trigsync(...args: string[]): Promise<BinaryResult> {
  return runBinary('bin/trigsync.js', args);
}
