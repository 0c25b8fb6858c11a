// Conflicts in a multi-master pair: the same keys changed on A and on B before either replicates. Each
// side counts what it meets (trigsync_conflicts_total) and resolves it as its `conflict` policy says.
// Non-superuser roles only.
import { describe, expect, it } from 'vitest';

import type { ConflictMode } from '../../src/config/types.js';
import { withClient } from '../support/cluster.js';
import {
  createRole,
  freshDatabase,
  sharedClusters,
  uniqueName,
  waitFor,
  type PgCluster,
} from '../support/fixtures.js';
import {
  configFile,
  conflictsCounted,
  makeConfig,
  runCli,
  startDaemon,
  waitCaughtUp,
} from '../support/replication.js';

interface Node {
  name: string;
  url: string;
}

/** A database owned by a login role of its own (no superuser), with the replicated table. */
async function node(cluster: PgCluster, name: string): Promise<Node> {
  const role = uniqueName(`conflict_${name}`);
  const password = `pw-${role}`;
  await createRole(cluster, role, password);
  const db = await freshDatabase(cluster, { owner: role });
  const url = cluster.url(db.name, { user: role, password });
  await withClient(url, (c) => c.query('create table items (id int primary key, v text not null)'));
  return { name, url };
}

function rawConfig(self: Node, other: Node, conflict: ConflictMode): Record<string, unknown> {
  return {
    source: { url: self.url },
    tables: ['items'],
    targets: [{ name: other.name, url: other.url, initialSync: 'none', conflict }],
    apply: { pollIntervalMs: 100 },
    retry: { initialDelayMs: 100, maxDelayMs: 1_000, dataErrorDelayMs: 200 },
    metrics: { enabled: false },
  };
}

async function rows(url: string): Promise<Record<number, string>> {
  return withClient(url, async (c) => {
    const result = await c.query<{ id: number; v: string }>('select id, v from items order by id');
    return Object.fromEntries(result.rows.map((r) => [r.id, r.v]));
  });
}

/**
 * A and B replicate to each other; then, with both daemons stopped, each side changes the same keys:
 * key 1 updated on both (differs), key 2 deleted on both (missing), key 3 inserted on both with other
 * content (exists), key 4 inserted on both alike (no conflict). Returns the daemons restarted.
 */
async function divergedPair(conflict: ConflictMode) {
  const { source, target1 } = sharedClusters();
  const [a, b] = await Promise.all([node(source, 'a'), node(target1, 'b')]);
  const rawA = rawConfig(a, b, conflict);
  const rawB = rawConfig(b, a, conflict);
  const configA = makeConfig(rawA);
  const configB = makeConfig(rawB);
  for (const url of [a.url, b.url]) {
    const superuser = await withClient(url, (c) =>
      c.query<{ s: boolean }>('select usesuper as s from pg_user where usename = current_user'),
    );
    expect(superuser.rows[0]!.s).toBe(false);
  }

  let daemons = [await startDaemon(configA), await startDaemon(configB)];
  await withClient(a.url, (c) => c.query(`insert into items values (1, 'base'), (2, 'base')`));
  await waitCaughtUp(configA);
  await waitCaughtUp(configB);
  expect(await rows(b.url)).toEqual({ 1: 'base', 2: 'base' });
  await Promise.all(daemons.map((d) => d.stop()));

  for (const side of [a, b]) {
    await withClient(side.url, async (c) => {
      await c.query(`update items set v = $1 where id = 1`, [`from ${side.name}`]);
      await c.query(`delete from items where id = 2`);
      await c.query(`insert into items values (3, $1), (4, 'same')`, [`from ${side.name}`]);
    });
  }
  daemons = [await startDaemon(configA), await startDaemon(configB)];
  const fileA = await configFile(rawA);
  return { a, b, configA, configB, daemons, fileA };
}

interface QueuedError {
  changeId: number;
  op: string;
  key: string;
  message: string;
  attempts: number;
}

async function queuedErrors(file: string): Promise<QueuedError[]> {
  return (JSON.parse((await runCli(file, 'errors', 'b', '--json')).out) as { errors: QueuedError[] }).errors;
}

describe('conflicts between two writable nodes', () => {
  it('apply: the incoming change wins on each side, and each conflict is counted', async () => {
    const { a, b, configA, configB, daemons } = await divergedPair('apply');
    await waitCaughtUp(configA);
    await waitCaughtUp(configB);
    // Each side took the other's version: concurrent updates of one key swap, they do not converge.
    expect(await rows(a.url)).toEqual({ 1: 'from b', 3: 'from b', 4: 'same' });
    expect(await rows(b.url)).toEqual({ 1: 'from a', 3: 'from a', 4: 'same' });
    expect(await conflictsCounted(daemons[0]!, 'b')).toBe(3);
    expect(await conflictsCounted(daemons[1]!, 'a')).toBe(3);
    await Promise.all(daemons.map((d) => d.stop()));
  });

  it('skip: each side keeps its own row, counts the conflict and goes on', async () => {
    const { a, b, configA, configB, daemons } = await divergedPair('skip');
    await waitCaughtUp(configA);
    await waitCaughtUp(configB);
    expect(await rows(a.url)).toEqual({ 1: 'from a', 3: 'from a', 4: 'same' });
    expect(await rows(b.url)).toEqual({ 1: 'from b', 3: 'from b', 4: 'same' });
    expect(await conflictsCounted(daemons[0]!, 'b')).toBe(3);
    expect(await conflictsCounted(daemons[1]!, 'a')).toBe(3);
    await Promise.all(daemons.map((d) => d.stop()));
  });

  it('park: the target stops at the first conflict, shows it in its error queue, and one skip per conflict keeps its row', async () => {
    const { b, configA, daemons, fileA } = await divergedPair('park');
    let errors: QueuedError[] = [];
    // Retried every 200 ms while parked, but counted once.
    await waitFor(
      async () => {
        errors = await queuedErrors(fileA);
        return errors[0] !== undefined && errors[0].attempts >= 3;
      },
      { what: 'target b to park on the conflict and retry it', timeoutMs: 20_000 },
    );
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ op: 'U', key: '{"id":1}' });
    expect(errors[0]!.message).toMatch(
      /^conflict: update of public\.items \{"id":1\} found the target's row different/,
    );
    expect(await conflictsCounted(daemons[0]!, 'b')).toBe(1);
    expect(await rows(b.url)).toEqual({ 1: 'from b', 3: 'from b', 4: 'same' });
    const status = JSON.parse((await runCli(fileA, 'status', '--json')).out) as {
      targets: { state: string }[];
    };
    expect(status.targets[0]!.state).toBe('parked');

    // The operator keeps B's rows: one skip for each conflict (an update is one change, both its rows).
    const expected = [
      { op: 'U', key: '{"id":1}' },
      { op: 'D', key: '{"id":2}' },
      { op: 'I', key: '{"id":3}' },
    ];
    for (const [i, conflict] of expected.entries()) {
      await waitFor(
        async () => {
          errors = await queuedErrors(fileA);
          return errors[0]?.key === conflict.key;
        },
        { what: `the conflict on ${conflict.key}`, timeoutMs: 20_000 },
      );
      expect(errors[0]).toMatchObject(conflict);
      expect(await conflictsCounted(daemons[0]!, 'b')).toBe(i + 1);
      const skipped = await runCli(fileA, 'skip', 'b', String(errors[0]!.changeId), '--yes');
      expect(skipped.code, skipped.out).toBe(0);
    }
    await waitCaughtUp(configA, 20_000);
    expect(await rows(b.url)).toEqual({ 1: 'from b', 3: 'from b', 4: 'same' });
    expect(await queuedErrors(fileA)).toEqual([]);
    const audit = await withClient(configA.source.url, (c) =>
      c.query<{ op: string; row: string }>(
        `select op, row::text from trigsync.skipped_change where target = 'b' order by change_id`,
      ),
    );
    expect(audit.rows.map((r) => r.op)).toEqual(['U', 'D', 'I']);
    await Promise.all(daemons.map((d) => d.stop()));
  });
});
