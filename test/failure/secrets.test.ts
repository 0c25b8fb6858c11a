// Secrets (issue #9, SPEC §5): no password reaches a log line, an error, status, the error queue or the
// metrics, whatever fails: a refused password, a change the target refuses, an unreachable server.
import { readFile } from 'node:fs/promises';

import { describe, expect, it } from 'vitest';

import { withClient } from '../support/cluster.js';
import { createRole, freshDatabase, privateCluster, waitFor } from '../support/fixtures.js';
import { ChildDaemon, configFile, runCli } from '../support/replication.js';

// Distinctive, and with characters a URL must encode: a careless redaction of the encoded form leaks.
const sourcePassword = 'Src-S3cret/pw@1:x';
const targetPassword = 'Tgt-S3cret#pw%2';
const wrongPassword = 'Wrong-S3cret?pw&3';
const secrets = [sourcePassword, targetPassword, wrongPassword];

/** Every way a password could be spelled in text that leaked it. */
function spellings(secret: string): string[] {
  return [secret, encodeURIComponent(secret), encodeURI(secret), JSON.stringify(secret).slice(1, -1)];
}

function expectNoSecret(where: string, text: string): void {
  for (const secret of secrets) {
    for (const spelling of spellings(secret)) {
      expect(text.includes(spelling), `${where} contains a password (${spelling})`).toBe(false);
    }
  }
}

describe('secrets', () => {
  it('never appear in logs, errors, status, the error queue or the metrics', async () => {
    const cluster = await privateCluster('secrets');
    await createRole(cluster, 'ts_source', sourcePassword);
    await createRole(cluster, 'ts_target', targetPassword);
    const src = await freshDatabase(cluster, { owner: 'ts_source' });
    const dst = await freshDatabase(cluster, { owner: 'ts_target' });
    const refused = await freshDatabase(cluster, { owner: 'ts_target' });
    const table = 'create table items (id int primary key, v text)';
    await withClient(cluster.url(src.name, { user: 'ts_source', password: sourcePassword }), (c) =>
      c.query(table),
    );
    await withClient(cluster.url(dst.name, { user: 'ts_target', password: targetPassword }), (c) =>
      c.query(`${table}; alter table items add check (v <> 'refuse me')`),
    );
    const raw = {
      source: { url: cluster.url(src.name, { user: 'ts_source', password: sourcePassword }) },
      tables: ['items'],
      targets: [
        {
          name: 'dst',
          url: cluster.url(dst.name, { user: 'ts_target', password: targetPassword }),
          initialSync: 'none',
        },
        {
          name: 'refused',
          url: cluster.url(refused.name, { user: 'ts_target', password: wrongPassword }),
          initialSync: 'none',
        },
      ],
      apply: { pollIntervalMs: 200 },
      retry: { initialDelayMs: 100, maxDelayMs: 500, dataErrorDelayMs: 500 },
      log: { level: 'trace' },
    };
    const daemon = await ChildDaemon.create(raw);
    await daemon.start();
    await withClient(raw.source.url, async (client) => {
      await client.query(`insert into items values (1, 'fine'), (2, 'refuse me'), (3, 'after')`);
    });
    const file = await configFile(raw);
    await waitFor(
      async () => {
        const { out } = await runCli(file, 'status', '--json');
        const status = JSON.parse(out) as {
          targets: { name: string; state: string; lastError: string | null }[];
        };
        const states = status.targets.map((t) => [t.name, t.state, t.lastError ?? ''] as const);
        return states.every(([, state, error]) => state === 'parked' && error !== '');
      },
      { what: 'both targets to park: a refused change and a refused password', timeoutMs: 30_000 },
    );

    const errorQueue = await withClient(raw.source.url, async (client) =>
      JSON.stringify((await client.query('select * from trigsync.error_queue')).rows),
    );
    expect(errorQueue).toContain('items_v_check');
    expectNoSecret('the error queue', errorQueue);
    const targets = await withClient(raw.source.url, async (client) =>
      JSON.stringify((await client.query('select name, state, last_error from trigsync.target')).rows),
    );
    expect(targets).toMatch(/password authentication failed/);
    expectNoSecret('trigsync.target', targets);

    for (const args of [
      ['status'],
      ['status', '--json'],
      ['status', '--check'],
      ['errors'],
      ['check'],
      ['verify', '--wait', '1'],
    ]) {
      expectNoSecret(`trigsync ${args.join(' ')}`, (await runCli(file, ...args)).out);
    }
    const metrics = await (await fetch(await daemon.metricsUrl())).text();
    expect(metrics).toContain('trigsync_target_parked');
    expectNoSecret('/metrics', metrics);

    // An unreachable server and a malformed URL: the errors name the URL, without its password.
    const unreachable = await configFile({
      ...raw,
      source: { url: `postgres://ts_source:${encodeURIComponent(sourcePassword)}@127.0.0.1:1/none` },
    });
    for (const args of [['check'], ['status'], ['install']]) {
      const { code, out } = await runCli(unreachable, ...args);
      expect(code, out).not.toBe(0);
      expectNoSecret(`trigsync ${args.join(' ')} on an unreachable source`, out);
    }
    const malformed = await configFile({
      ...raw,
      source: { url: `postgres://ts_source:${sourcePassword}@[bad/none` },
    });
    const { code, out } = await runCli(malformed, 'check');
    expect(code, out).not.toBe(0);
    expectNoSecret('trigsync check on a malformed URL', out);

    await daemon.stop();
    const log = await readFile(daemon.logFile, 'utf8');
    expect(log).toMatch(/password authentication failed/);
    expect(log).toMatch(/refuse me|violates check constraint/);
    expectNoSecret('the daemon log', log);
  });
});
