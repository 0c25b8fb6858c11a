// Multi-master (G1-G3 in a mesh): every node on its own PostgreSQL server runs a daemon whose targets
// are the other nodes. Writers on every node, each on its node's keys, for 12 s; then every node holds
// the same rows, and each change was logged exactly once, on the node that made it: nothing echoes.
// The daemons run as roles that own their database and are not superusers.
import { describe, expect, it } from 'vitest';

import type { Config } from '../../src/config/types.js';
import type { Daemon } from '../../src/daemon/daemon.js';
import { createLogger } from '../../src/lib/logger.js';
import { waitFor } from '../support/fixtures.js';
import {
  configUrls,
  countRows,
  installAudit,
  meshConfig,
  meshNodes,
  meshTables,
  readAudit,
  runMeshWriters,
  superuserUrls,
  type MeshNode,
  type MeshWorkload,
} from '../support/mesh.js';
import { conflictsCounted, expectSameRows, startDaemon, waitCaughtUp } from '../support/replication.js';

const writeMs = 12_000;
/** Long enough for B to log 1,500 rows with its daemon running then stopped, on a loaded machine too. */
const restartWriteMs = 20_000;
const writersPerNode = 3;

interface Mesh {
  nodes: MeshNode[];
  configs: Config[];
  daemons: Daemon[];
  /** What every daemon logged, restarts included: shown when a check fails. */
  logs: string[];
}

/** Node i's daemon, its log kept in the mesh's. */
function startNodeDaemon(mesh: Pick<Mesh, 'configs' | 'logs'>, i: number): Promise<Daemon> {
  const logger = createLogger('info', {
    write: (line: string) => void mesh.logs.push(`node ${i}: ${line.trimEnd()}`),
  });
  return startDaemon(mesh.configs[i]!, logger);
}

/** n nodes, a daemon each, the audit copy of every log; every daemon connects as a non-superuser. */
async function startMesh(n: number): Promise<Mesh> {
  const nodes = await meshNodes(n);
  const configs = nodes.map((_, i) => meshConfig(nodes, i));
  expect(await superuserUrls(configs.flatMap(configUrls))).toEqual([]);
  const mesh: Mesh = { nodes, configs, daemons: [], logs: [] };
  mesh.daemons = await Promise.all(configs.map((_, i) => startNodeDaemon(mesh, i)));
  // After the daemons installed the log, before anything is written to it.
  for (const node of nodes) await installAudit(node);
  return mesh;
}

/**
 * Every daemon caught up, every table equal on every node, and each node's log holding exactly the
 * changes its own writers committed, all of its own keys.
 */
async function expectConverged(mesh: Mesh, workload: MeshWorkload): Promise<void> {
  try {
    await expectConvergedQuietly(mesh, workload);
  } catch (thrown) {
    console.error(`the daemons' logs:\n${mesh.logs.join('\n')}`);
    throw thrown;
  }
}

async function expectConvergedQuietly(
  { nodes, configs, daemons }: Mesh,
  workload: MeshWorkload,
): Promise<void> {
  // Per node: how long after the writers stopped its changes had reached every other node.
  const convergeMs = await Promise.all(
    configs.map(async (config) => {
      await waitCaughtUp(config, 120_000);
      return Date.now() - workload.endedAt;
    }),
  );

  for (const table of meshTables) {
    const query = `select * from ${table.name}`;
    for (const other of nodes.slice(1))
      await expectSameRows({ url: nodes[0]!.url, query }, { url: other.url, query }, table.key);
  }

  const figures = [];
  for (const node of nodes) {
    const tally = workload.tallies[node.index]!;
    const audit = await readAudit(node, nodes.length);
    expect(audit.foreign, `rows of other nodes logged on ${node.name} (echoes)`).toEqual([]);
    expect(audit.logged, `changes logged on ${node.name} vs committed by its writers`).toEqual(tally.changes);
    // The load did what it says: every kind of change, many times, on every table.
    expect(tally.commits).toBeGreaterThan(100);
    expect(tally.rollbacks).toBeGreaterThan(5);
    for (const table of meshTables)
      for (const op of ['I', 'U', 'D'] as const)
        expect(tally.changes[table.name][op], `${node.name} ${table.name} ${op}`).toBeGreaterThan(10);
    figures.push({
      node: node.name,
      commits: tally.commits,
      rollbacks: tally.rollbacks,
      failed: tally.failed,
      logged: audit.total,
      convergeMs: convergeMs[node.index],
    });
  }
  console.table(figures);
  // Disjoint key ranges never conflict: a conflict counted here would be a false one.
  for (const daemon of daemons) expect(await conflictsCounted(daemon)).toBe(0);
  // G7 in a mesh: each daemon prunes its own log once the other nodes have applied it.
  for (const node of nodes)
    await waitFor(async () => (await countRows(node, 'trigsync.change_log')) === 0, {
      what: `${node.name}'s log to be pruned`,
      timeoutMs: 30_000,
    });
  // Every node's rows reached every other node: each holds keys of every range.
  const owners = await nodes[0]!.db.cluster.query<{ n: string }>(
    `select count(distinct mod(id, $1)) as n from items`,
    [nodes.length],
    nodes[0]!.db.name,
  );
  expect(Number(owners[0]!.n)).toBe(nodes.length);
}

async function stopAll(daemons: readonly Daemon[]): Promise<void> {
  await Promise.all(daemons.map((daemon) => daemon.stop()));
}

describe('multi-master', () => {
  it('A with B: writers on both nodes for 12 s replicate both ways, logged once, no echo', async () => {
    const mesh = await startMesh(2);
    const workload = await runMeshWriters(mesh.nodes, { writersPerNode, durationMs: writeMs });
    await expectConverged(mesh, workload);
    await stopAll(mesh.daemons);
  }, 180_000);

  it('a mesh of A, B and C: writers on every node for 12 s converge, logged once, no echo', async () => {
    const mesh = await startMesh(3);
    const workload = await runMeshWriters(mesh.nodes, { writersPerNode, durationMs: writeMs });
    await expectConverged(mesh, workload);
    await stopAll(mesh.daemons);
  }, 180_000);

  it('a mesh of three survives a restart of one daemon while every node keeps writing', async () => {
    const mesh = await startMesh(3);
    const running = runMeshWriters(mesh.nodes, { writersPerNode, durationMs: restartWriteMs });
    const b = mesh.nodes[1]!;
    try {
      // Stop B's daemon once its node has logged some changes; restart it once more piled up meanwhile.
      await waitFor(async () => (await countRows(b, 'mesh_audit.logged')) > 500, {
        what: 'B to log changes',
        timeoutMs: 20_000,
      });
      await mesh.daemons[1]!.stop();
      const stoppedAt = await countRows(b, 'mesh_audit.logged');
      await waitFor(async () => (await countRows(b, 'mesh_audit.logged')) > stoppedAt + 1_000, {
        what: 'B to log changes while its daemon is stopped',
        timeoutMs: 20_000,
      });
      mesh.daemons[1] = await startNodeDaemon(mesh, 1);
    } finally {
      // The writers end at their deadline whatever happened here; their connections must not outlive the test.
      await running;
    }
    await expectConverged(mesh, await running);
    await stopAll(mesh.daemons);
  }, 180_000);
});
