import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { describe, expect, it } from 'vitest';

import { commands } from '../src/cli/commands.js';
import { main } from '../src/cli/main.js';
import { collectingOutput } from '../src/cli/output.js';
import { freshDatabase, sharedClusters } from './support/fixtures.js';

const run = promisify(execFile);

/** The built command, as a user runs it (npm test builds first). */
async function trigsync(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('node', ['bin/trigsync.js', ...args], {
      env: { ...process.env, TRIGSYNC_CONFIG: '' },
    });
    return { code: 0, stdout, stderr };
  } catch (thrown) {
    const failed = thrown as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

describe('trigsync command', () => {
  it('--help lists every command of SPEC §4', async () => {
    const { code, stdout } = await trigsync('--help');
    expect(code).toBe(0);
    const spec = [
      'start',
      'install',
      'uninstall',
      'status',
      'errors',
      'retry',
      'skip',
      'sync',
      'verify',
      'check',
      'demo',
    ];
    for (const name of spec) expect(stdout).toMatch(new RegExp(`^  ${name}\\b`, 'm'));
    expect(commands.map((c) => c.name).sort()).toEqual([...spec].sort());
  });

  it('--version prints the package version', async () => {
    const { code, stdout } = await trigsync('--version');
    expect(code).toBe(0);
    expect(stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('check exits 2 and names the unknown key of a bad config', async () => {
    const { code, stderr } = await trigsync('check', '--config', 'test/fixtures/config/bad.yaml');
    expect(code).toBe(2);
    expect(stderr).toContain('sorce');
    expect(stderr).not.toContain('secret');
  });

  it('exits 2 on an unknown command or option, and without a config', async () => {
    expect((await trigsync('frobnicate')).code).toBe(2);
    expect((await trigsync('status', '--bogus')).code).toBe(2);
    const noConfig = await trigsync('check');
    expect(noConfig.code).toBe(2);
    expect(noConfig.stderr).toMatch(/--config|TRIGSYNC_CONFIG/);
  });

  it('a command whose issue has not landed says so and exits 2', async () => {
    const out = collectingOutput();
    expect(await main(['sync', 'reporting'], out)).toBe(2);
    expect(out.stderr.join('\n')).toMatch(/not built yet \(issue #6\)/);
  });

  it('check reaches every database and reports its server version; an unreachable one fails with 1', async () => {
    const { source, target1 } = sharedClusters();
    const src = await freshDatabase(source);
    const dst = await freshDatabase(target1);
    const dir = await mkdtemp(join(tmpdir(), 'trigsync-cli-'));
    const file = join(dir, 'config.yaml');
    const config = (targetUrl: string): string =>
      [
        `source: { url: '${src.url}' }`,
        'tables: [public.orders]',
        'targets:',
        `  - { name: reporting, url: '${targetUrl}', initialSync: none }`,
      ].join('\n');

    await writeFile(file, config(dst.url));
    const ok = await trigsync('check', '--config', file, '--json');
    expect(ok.code).toBe(0);
    const report = JSON.parse(ok.stdout) as {
      databases: { name: string; reachable: boolean; serverVersion: string; url: string }[];
    };
    expect(report.databases.map((d) => [d.name, d.reachable])).toEqual([
      ['source', true],
      ['reporting', true],
    ]);
    expect(report.databases[0]!.serverVersion).toMatch(/^\d+/);
    expect(report.databases[0]!.url).not.toContain(source.password);

    // A port where nothing listens: reported, named, and the password never shown.
    const down = new URL(dst.url);
    down.port = '1';
    await writeFile(file, config(down.toString()));
    const failed = await trigsync('check', '--config', file);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(/^reporting\s+FAILED/m);
    expect(failed.stdout).not.toContain(target1.password);
  });
});
