// What a figure was measured on, printed above every benchmark's tables and kept in its JSON.
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';

import type { LocalCluster } from '../../test/support/local-cluster.js';
import type { LoadGenerator } from './load.js';

export interface Machine {
  date: string;
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  /** 1, 5 and 15 minutes, at the start: other work on the machine skews every figure. */
  loadAverage: number[];
  node: string;
  postgres: string;
  /** The server settings that decide what a commit costs. */
  settings: Record<string, string>;
  load: string;
}

const reportedSettings = [
  'fsync',
  'synchronous_commit',
  'full_page_writes',
  'wal_sync_method',
  'shared_buffers',
  'min_wal_size',
  'max_wal_size',
  'autovacuum',
];

export async function describeMachine(cluster: LocalCluster, load: LoadGenerator): Promise<Machine> {
  const [version] = await cluster.query<{ version: string }>('select version()');
  const settings = await cluster.query<{ name: string; value: string }>(
    `select name, current_setting(name) as value from pg_settings where name = any($1) order by name`,
    [reportedSettings],
  );
  return {
    date: new Date().toISOString(),
    cpus: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    loadAverage: loadavg().map((n) => Math.round(n * 100) / 100),
    node: process.version,
    postgres: version?.version ?? 'unknown',
    settings: Object.fromEntries(settings.map((s) => [s.name, s.value])),
    load: load.description,
  };
}

export function machineHeader(title: string, machine: Machine): string {
  const settings = Object.entries(machine.settings)
    .map(([name, value]) => `${name}=${value}`)
    .join(' ');
  return [
    `== trigsync benchmark: ${title} ==`,
    `date     ${machine.date}`,
    `machine  ${machine.cpus} CPUs (${machine.cpuModel}), ${machine.memoryGiB} GiB, Node ${machine.node}, ` +
      `load average ${machine.loadAverage.join(' ')} at start`,
    `server   ${machine.postgres}`,
    `         ${settings}`,
    `load     ${machine.load}`,
  ].join('\n');
}
