// The help and the argument errors of `trigsync`, through the built binary as a user runs it (npm test
// builds first). None of these reaches a database: they end before a configuration is read.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { commands } from '../../src/cli/commands.js';
import { runBinary, trigsync } from '../support/binary.js';

const binary = fileURLToPath(new URL('../../bin/trigsync.js', import.meta.url));

/** A usage error: exit 2, nothing on stdout, and never the message of Node's argument parser. */
async function usageError(...args: string[]): Promise<string> {
  const { code, stdout, stderr } = await trigsync(...args);
  expect(code, args.join(' ')).toBe(2);
  expect(stdout).toBe('');
  expect(stderr).not.toMatch(/ERR_PARSE_ARGS|Unknown option '|argument is ambiguous|Unexpected argument/);
  return stderr.trimEnd();
}

describe('trigsync help', () => {
  it('help, --help and -h print the overview, with help itself among the commands', async () => {
    const help = await trigsync('help');
    expect(help.code).toBe(0);
    for (const spec of commands) expect(help.stdout).toMatch(new RegExp(`^  ${spec.name}\\b`, 'm'));
    expect(help.stdout).toMatch(/^ {2}help \[COMMAND\]/m);
    expect(help.stdout).toContain("Run 'trigsync help COMMAND'");
    expect(await trigsync('--help')).toEqual(help);
    expect(await trigsync('-h')).toEqual(help);
  });

  it('of every command lists its options with their defaults, an example and the docs, however asked', async () => {
    // One command at a time would take a while: each run is a node process.
    await Promise.all(
      commands.map(async (spec) => {
        const [help, long, short] = await Promise.all([
          trigsync('help', spec.name),
          trigsync(spec.name, '--help'),
          trigsync(spec.name, '-h'),
        ]);
        expect(help.code, spec.name).toBe(0);
        expect(help.stdout).toMatch(new RegExp(`^Usage: trigsync ${spec.name}\\b`));
        for (const [name, option] of Object.entries(spec.options)) {
          const line = new RegExp(`^ {2}(?:-\\w, | {4})--${name}\\b.*$`, 'm').exec(help.stdout)?.[0];
          expect(line, `${spec.name} --${name}`).toBeDefined();
          if (option.seconds !== undefined) expect(line).toContain(`default: ${option.seconds.default} s`);
        }
        expect(help.stdout).toMatch(new RegExp(`^Examples:\\n  trigsync ${spec.name}\\b`, 'm'));
        expect(help.stdout).toContain(`Docs: ${spec.docs}`);
        expect(long, `${spec.name} --help`).toEqual(help);
        expect(short, `${spec.name} -h`).toEqual(help);
      }),
    );
  });

  it('help verify and help status show the defaults a new user looks for', async () => {
    const verify = await trigsync('help', 'verify');
    expect(verify.stdout).toMatch(
      /^Usage: trigsync verify \[TARGET\] \[--table T\] \[--json\] \[--wait SECONDS\] \[--config PATH\]$/m,
    );
    expect(verify.stdout).toMatch(/^ {6}--wait SECONDS +how long to wait .*\(default: 30 s\)$/m);
    expect(verify.stdout).toMatch(/^ {2}TARGET +the target to compare \(default: every target\)$/m);
    expect(verify.stdout).toContain('Docs: docs/operations.md#verify');
    const status = await trigsync('status', '--help');
    expect(status.stdout).toMatch(/^ {6}--max-lag SECONDS +the lag --check accepts \(default: 60 s\)$/m);
    expect((await trigsync('help', 'demo')).stdout).toMatch(
      /--duration SECONDS .*at least 20; default: 60 s/,
    );
  });

  it('help of a command that does not exist is a usage error that suggests one', async () => {
    expect(await usageError('help', 'stauts')).toBe(
      "trigsync: unknown command 'stauts'; did you mean 'status'?\nRun 'trigsync help' for the commands.",
    );
    expect(await usageError('help', 'nosuch')).toBe(
      "trigsync: unknown command 'nosuch'\nRun 'trigsync help' for the commands.",
    );
  });
});

describe('trigsync argument errors', () => {
  it('an unknown command suggests the one meant', async () => {
    expect(await usageError('stats')).toBe(
      "trigsync: unknown command 'stats'; did you mean 'status'?\nRun 'trigsync help' for the commands.",
    );
  });

  it('an unknown option suggests the one meant, or names the command it belongs to', async () => {
    expect(await usageError('status', '--jsn')).toBe(
      "trigsync: status has no option --jsn; did you mean --json?\nRun 'trigsync help status' for its options.",
    );
    expect(await usageError('retry', 'reporting', '--dry-run')).toBe(
      "trigsync: retry has no option --dry-run: --dry-run is an option of repair\nRun 'trigsync help retry' for its options.",
    );
  });

  it('a missing required argument names it, with the usage', async () => {
    expect(await usageError('retry')).toBe(
      [
        'trigsync: retry needs TARGET (the parked target)',
        'Usage: trigsync retry TARGET [--config PATH]',
        "Run 'trigsync help retry' for its options.",
      ].join('\n'),
    );
    expect(await usageError('skip', 'reporting', '--yes')).toMatch(
      /^trigsync: skip needs CHANGE_ID \(the change to drop, as trigsync errors lists it\)\nUsage: trigsync skip TARGET CHANGE_ID --yes/,
    );
  });

  it('too many arguments, a value given to a flag, and an option without its value', async () => {
    expect(await usageError('verify', 'reporting', 'archive')).toBe(
      "trigsync: verify takes at most 1 argument ([TARGET]), not 'archive'\nRun 'trigsync help verify' for its options.",
    );
    expect(await usageError('status', '--json', 'yes')).toMatch(
      /^trigsync: status takes no arguments, not 'yes' \(--json is a flag and takes no value\)\n/,
    );
    expect(await usageError('status', '--check=yes')).toMatch(
      /^trigsync: --check is a flag and takes no value, not 'yes'\nRun 'trigsync help status'/,
    );
    expect(await usageError('verify', '--wait')).toMatch(/^trigsync: --wait needs a value: --wait SECONDS\n/);
    expect(await usageError('status', '--max-lag', 'soon')).toMatch(
      /^trigsync: --max-lag takes a number of seconds, not 'soon'\nRun 'trigsync help status' for its options\.$/,
    );
  });
});

describe('trigsync before a build', () => {
  it('says to build first, in one line, and exits 3', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'trigsync-unbuilt-'));
    try {
      await mkdir(join(dir, 'bin'));
      await copyFile(binary, join(dir, 'bin', 'trigsync.js'));
      await writeFile(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
      const unbuilt = await runBinary(join(dir, 'bin', 'trigsync.js'), ['--help']);
      expect(unbuilt).toEqual({
        code: 3,
        stdout: '',
        stderr:
          "trigsync: not built yet; run 'npm run build' first (npm run demo and npm test build it for you)\n",
      });

      // A dist/ that fails to load for another reason is not mistaken for a missing build.
      await mkdir(join(dir, 'dist', 'cli'), { recursive: true });
      await writeFile(join(dir, 'dist', 'cli', 'main.js'), "import './missing.js';\n");
      const broken = await runBinary(join(dir, 'bin', 'trigsync.js'), ['--help']);
      expect(broken.code).toBe(1);
      expect(broken.stderr).toMatch(/ERR_MODULE_NOT_FOUND[\s\S]*missing\.js/);
      expect(broken.stderr).not.toContain('not built yet');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('goes on to its end when its reader stops reading (trigsync help | head -1)', async () => {
    const child = spawn(process.execPath, [binary, 'help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    // The pipe closed before the first line: every write of the command meets EPIPE.
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });
});
