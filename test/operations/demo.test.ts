// `trigsync demo` as a user runs it: the built command (npm test builds first) in a child process,
// without a terminal, from the repository root. It brings its own three servers, so it needs none of
// the shared clusters; it must end by itself, exit 0, and leave no server process and no files behind.
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { describe, expect, it } from 'vitest';

import { main } from '../../src/cli/main.js';
import { collectingOutput } from '../../src/cli/output.js';
import { liveLagSeconds } from '../../src/demo/shown-state.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const execFileAsync = promisify(execFile);

interface DemoRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** What `trigsync status` printed for the demo's config while the demo ran. */
  statusWhileRunning: string;
  /** What the demo's metrics URL served while the demo ran. */
  metricsWhileRunning: string;
}

/** Runs the demo; once it has printed its config and metrics URL, tries both as a user would. */
function runDemo(durationSeconds: number): Promise<DemoRun> {
  return new Promise((resolve, reject) => {
    const child = spawn('node', ['bin/trigsync.js', 'demo', '--duration', String(durationSeconds)], {
      cwd: root,
      env: { ...process.env, TRIGSYNC_CONFIG: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let probe: Promise<{ status: string; metrics: string }> | undefined;
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const config = /^Config:\s+(\S+)/m.exec(stdout)?.[1];
      const metrics = /^Metrics:\s+(http\S+)/m.exec(stdout)?.[1];
      if (probe === undefined && config !== undefined && metrics !== undefined) {
        probe = (async () => {
          const status = await execFileAsync('node', ['bin/trigsync.js', 'status', '--config', config], {
            cwd: root,
          });
          const response = await fetch(metrics);
          return { status: status.stdout, metrics: await response.text() };
        })();
        // Reported through the result; an unhandled rejection would end the test run.
        probe.catch(() => undefined);
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      const probed = probe ?? Promise.reject(new Error('the demo never printed its config and metrics URL'));
      probed.then(
        ({ status, metrics }) =>
          resolve({ code, stdout, stderr, statusWhileRunning: status, metricsWhileRunning: metrics }),
        (thrown: unknown) =>
          resolve({
            code,
            stdout,
            stderr: `${stderr}\nprobe failed: ${String(thrown)}`,
            statusWhileRunning: '',
            metricsWhileRunning: '',
          }),
      );
    });
  });
}

/** postgres and initdb processes whose working directory or command line lies under dir. */
function postgresProcessesUnder(dir: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    try {
      const command = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      if (command !== 'postgres' && command !== 'initdb') continue;
      const cwd = readlinkSync(`/proc/${pid}/cwd`);
      const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cwd.startsWith(dir) || args.includes(dir)) found.push(pid);
    } catch {
      // Gone while we looked.
    }
  }
  return found;
}

describe('trigsync demo', () => {
  it('runs unattended to the end: a replica parks and drains, verify is equal, nothing is left behind', async () => {
    const started = Date.now();
    const run = await runDemo(20);
    const seconds = (Date.now() - started) / 1000;
    const output = `${run.stdout}\n--- stderr ---\n${run.stderr}`;
    expect(run.code, output).toBe(0);

    // The story, in order.
    const at = (pattern: RegExp): number => {
      const match = pattern.exec(run.stdout);
      expect(match, `${String(pattern)} in:\n${output}`).not.toBeNull();
      return match!.index;
    };
    const copied = at(/reporting: initial copy done, \d+ rows/);
    const refused = at(/reporting: read-only; a direct write is refused: .*read-only trigsync replica/);
    const parked = at(/analytics is parked/);
    const drained = at(/analytics: drained: live again, \d+ changes applied/);
    const equal = at(/^verify: equal/m);
    expect([copied, refused, parked, drained, equal]).toEqual(
      [copied, refused, parked, drained, equal].sort((a, b) => a - b),
    );
    expect(run.stdout).toMatch(/^ {2}analytics +shop\.orders +yes /m);

    // The live view is truthful (src/demo/shown-state.ts): live only within the live lag, every
    // catching_up with its reason, and a parked replica with the error it waits on, not 0 errors.
    for (const [line, lag] of run.stdout.matchAll(/\w+ live backlog \d+ lag ([\d.]+)s/g)) {
      expect(Number(lag), line).toBeLessThanOrEqual(liveLagSeconds);
    }
    for (const [note] of run.stdout.matchAll(/^\[ *\d+s\] \w+: catching_up.*$/gm)) {
      expect(note).toMatch(/catching_up: [\d,]+ changes? behind, oldest [\d.]+s old$/);
    }
    expect(run.stdout).toMatch(/^\[ *\d+s\] analytics: parked: connection error: /m);
    for (const [line] of run.stdout.matchAll(/analytics parked backlog .*/g)) {
      expect(line).toMatch(/ errors parked: connection error: /);
    }
    expect(run.stdout).toMatch(/^Metrics:\s+http:\/\/127\.0\.0\.1:\d+\/metrics$/m);
    expect(run.stdout).toMatch(/npx trigsync status --config \S+trigsync\.yaml/);
    // Not a terminal: plain lines, no escape codes.
    expect(run.stdout).not.toContain('\x1b[');

    // What it told the user to try worked while it ran.
    expect(run.statusWhileRunning).toMatch(/^reporting\s/m);
    expect(run.statusWhileRunning).toMatch(/^analytics\s/m);
    expect(run.metricsWhileRunning).toContain('trigsync_');

    // Cleaned up: its directory is gone and none of its servers runs.
    const dir = /^Demo files:\s+(\S+)/m.exec(run.stdout)?.[1];
    expect(dir, output).toMatch(/trigsync-demo-/);
    expect(run.stdout).toContain(`Stopped the three servers and removed ${dir}`);
    expect(existsSync(dir!)).toBe(false);
    expect(postgresProcessesUnder(dir!)).toEqual([]);
    // About --duration, plus the servers' start and the cleanup.
    expect(seconds).toBeLessThan(60);
  }, 120_000);

  it('--duration takes whole seconds, at least 20: anything else is a usage error', async () => {
    for (const duration of ['5', '19', 'abc', '30.5', '']) {
      const out = collectingOutput();
      expect(await main(['demo', '--duration', duration], out), duration).toBe(2);
      expect(out.stderr.join('\n')).toMatch(/--duration takes a whole number of seconds, at least 20/);
    }
  });
});
