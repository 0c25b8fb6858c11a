import { spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { commands } from '../src/cli/commands.js';
import { freshDatabase, sharedClusters, waitFor } from './support/fixtures.js';
import { trigsync } from './support/binary.js';

describe('trigsync command', () => {
  it('--help lists every command of SPEC §4, and the others', async () => {
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
      'repair',
      'check',
      'demo',
    ];
    // Beyond SPEC §4: pausing one target (docs/operations.md, "Pause a target").
    const beyond = ['pause', 'resume'];
    for (const name of [...spec, ...beyond]) expect(stdout).toMatch(new RegExp(`^  ${name}\\b`, 'm'));
    expect(commands.map((c) => c.name).sort()).toEqual([...spec, ...beyond].sort());
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

  it('check reaches every database and reports its server version; an unreachable one fails with 1', async () => {
    const { source, target1 } = sharedClusters();
    const src = await freshDatabase(source);
    const dst = await freshDatabase(target1);
    await source.query('create table orders (id int primary key, total numeric, note text)', [], src.name);
    await target1.query('create table orders (id int primary key, total numeric)', [], dst.name);
    const dir = await mkdtemp(join(tmpdir(), 'trigsync-cli-'));
    const file = join(dir, 'config.yaml');
    const config = (targetUrl: string): string =>
      [
        `source: { url: '${src.url}' }`,
        'tables: [public.orders]',
        'targets:',
        `  - { name: reporting, url: '${targetUrl}', initialSync: none, tables: [{ source: orders, columns: [id, total] }] }`,
      ].join('\n');

    await writeFile(file, config(dst.url));
    const ok = await trigsync('check', '--config', file, '--json');
    expect(ok.code).toBe(0);
    const report = JSON.parse(ok.stdout) as {
      databases: {
        name: string;
        reachable: boolean;
        serverVersion: string;
        url: string;
        triggers?: string;
      }[];
    };
    expect(report.databases.map((d) => [d.name, d.reachable])).toEqual([
      ['source', true],
      ['reporting', true],
    ]);
    // The test servers' role is a superuser: it applies as native logical replication does.
    expect(report.databases[1]!.triggers).toBe('replica');
    expect(report.databases[0]!.serverVersion).toMatch(/^\d+/);
    expect(report.databases[0]!.url).not.toContain(source.password);

    // A column the target lacks: named, with the table and the target.
    await target1.query('alter table orders drop column total', [], dst.name);
    const missing = await trigsync('check', '--config', file);
    // A configuration error, as start and install take it.
    expect(missing.code).toBe(2);
    expect(missing.stdout).toMatch(
      /PROBLEM targets\.reporting: public\.orders -> public\.orders: target table lacks column\(s\) total/,
    );

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

describe('trigsync install, start, status', () => {
  it('install, then status --json reports every target with the fields of SPEC §4; SIGTERM ends start with 0', async () => {
    const { source, target1 } = sharedClusters();
    const src = await freshDatabase(source);
    const dst = await freshDatabase(target1);
    await source.query('create table orders (id int primary key, note text)', [], src.name);
    await target1.query('create table orders (id int primary key, note text)', [], dst.name);
    const dir = await mkdtemp(join(tmpdir(), 'trigsync-cli-'));
    const file = join(dir, 'config.json');
    await writeFile(
      file,
      JSON.stringify({
        source: { url: src.url },
        tables: ['orders'],
        targets: [{ name: 'reporting', url: dst.url, initialSync: 'none' }],
        apply: { pollIntervalMs: 100 },
        metrics: { enabled: false },
      }),
    );
    const install = await trigsync('install', '--config', file);
    expect(install.code).toBe(0);
    expect(install.stdout).toMatch(/capturing public\.orders/);
    await source.query(`insert into orders select g, 'n' from generate_series(1, 10) g`, [], src.name);

    const before = JSON.parse((await trigsync('status', '--json', '--config', file)).stdout) as Status;
    expect(before.targets).toEqual([
      expect.objectContaining({
        name: 'reporting',
        state: 'new',
        backlog: 10,
        errorQueue: 0,
        lastError: null,
      }),
    ]);
    expect(before.targets[0]!.lagSeconds).toBeGreaterThanOrEqual(0);
    expect(before.log.rows).toBe(10);

    const daemon = spawn(process.execPath, ['bin/trigsync.js', 'start', '--config', file], {
      stdio: 'ignore',
    });
    const exited = new Promise<number | null>((resolve) => daemon.once('exit', (code) => resolve(code)));
    await waitFor(
      async () => {
        const now = JSON.parse((await trigsync('status', '--json', '--config', file)).stdout) as Status;
        return now.targets[0]?.backlog === 0 && now.targets[0].state === 'live';
      },
      { what: 'the target to catch up', timeoutMs: 20_000 },
    );
    daemon.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(await target1.query('select count(*)::int as n from orders', [], dst.name)).toEqual([{ n: 10 }]);
  });
});

interface Status {
  targets: {
    name: string;
    state: string;
    backlog: number;
    lagSeconds: number;
    errorQueue: number;
    lastError: string | null;
  }[];
  log: { rows: number };
}
