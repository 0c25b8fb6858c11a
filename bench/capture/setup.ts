// What the capture benchmark measures with: its tables, workloads, capture modes and the issue's
// targets, and how a mode's triggers are put in place.
import { readFile } from 'node:fs/promises';

import type pg from 'pg';

import { dropCaptureTriggers } from '../../src/capture/triggers.js';
import { ident, sqlLiteral } from '../../src/config/identifiers.js';
import type { Config } from '../../src/config/types.js';
import { installSource } from '../../src/operator/install-source.js';
import { insertWorkload, randomId, type Workload } from '../support/load.js';
import { schema } from '../support/trigsync.js';
import type { WaitProfile } from '../support/waits.js';

export type Triggers = 'none' | 'statement' | 'row' | 'packed' | 'floor';

export interface Mode {
  key: string;
  label: string;
  triggers: Triggers;
  /** Whether the daemon runs (applying and pruning) during the measurement. */
  daemon: boolean;
  /** Whether native logical replication applies the tables to the target during the measurement. */
  native?: boolean;
}

export const none: Mode = { key: 'none', label: 'no capture', triggers: 'none', daemon: false };
export const statement: Mode = { key: 'statement', label: 'statement', triggers: 'statement', daemon: true };
// With the daemon stopped: its capture watcher would find trigsync's triggers gone and make them again
// beside the variant's, within 2 s, and the run would capture every row twice.
export const row: Mode = { key: 'row', label: 'row-level', triggers: 'row', daemon: false };
export const statementIdle: Mode = {
  key: 'statementIdle',
  label: 'statement, daemon off',
  triggers: 'statement',
  daemon: false,
};
/**
 * No trigger, native logical replication applying to the target instead: what a replicated writer costs
 * on the same machine when PostgreSQL itself replicates (a walsender decoding, an apply worker writing).
 */
export const native: Mode = {
  key: 'native',
  label: 'native LR applying',
  triggers: 'none',
  daemon: false,
  native: true,
};
/** The trial of a packed log (bench/sql/capture-packed.sql), which the daemon cannot read: statements only. */
export const packed: Mode = { key: 'packed', label: 'packed (trial)', triggers: 'packed', daemon: false };
/**
 * The floor of a log row per change (bench/sql/capture-floor.sql): a trigger that only inserts its rows'
 * to_json() into a copy of the change log, daemon stopped. No capture of this design costs a single-row
 * writer less. Not for the 100k-row statements: there it took 4.4× where trigsync's capture took 2.6×,
 * a gap not found outside the benchmark (both 3-3.5× in psql sessions of their own), so no floor there.
 */
export const floor: Mode = { key: 'floor', label: 'bare log row (floor)', triggers: 'floor', daemon: false };
export const singleRowModes = [none, statement, row, statementIdle, floor, native];
// A statement's time does not depend on the daemon, which only reads once it has committed.
export const statementModes = [none, statement, row];
export const bulkModes = [...statementModes, packed];

export const tables = ['public.bench_rows', 'public.bench_upd', 'public.bench_bulk'];
const payload = 'trigsync capture benchmark: a short text column';
const updateRows = 100_000;
export const bulkRows = 100_000;
export const bulkRepetitions = 5;

export const ddl = `
  create table bench_rows (id bigint primary key, a int, b text, c timestamptz);
  create table bench_upd (id bigint primary key, a int, b text, c timestamptz);
  create table bench_bulk (id bigint primary key, a int, b text, c timestamptz);
  insert into bench_upd select g, g, '${payload}', now() from generate_series(1, ${updateRows}) g;`;

export const insertRows = insertWorkload('bench_rows', payload);

export const updateWorkload: Workload = {
  name: 'update',
  script: `\\set id random(1, ${updateRows})
\\set a random(1, 1000000)
update bench_upd set a = :a, c = now() where id = :id;
`,
  statement: `update bench_upd set a = $2, c = now() where id = $1`,
  values: () => [randomId(updateRows), randomId(1e6)],
};

export const bulkInsert = `insert into bench_bulk (id, a, b, c)
  select g, g % 1000, '${payload}', now() from generate_series(1, ${bulkRows}) g`;
export const bulkUpdate = `update bench_bulk set a = a + 1, c = now()`;

/**
 * The target for a single-row ratio (with ÷ without), if one is set: INSERT's are the apply-speed goals
 * (0.85 at 1 client, 0.75 at 8), which raised the first ones (0.80 / 0.70).
 */
export function ratioTarget(workload: string, clients: number): number | undefined {
  if (workload === 'UPDATE') return 0.6;
  return clients === 1 ? 0.85 : clients === 8 ? 0.75 : undefined;
}
export const bulkTarget = 1.5;

export interface SingleRowResult {
  workload: string;
  clients: number;
  /** 1.. (--capture-rounds): each round runs every mode once. */
  round: number;
  mode: string;
  tps: number;
  latencyMs: number;
  /** Changes not yet applied when the load stopped (daemon running only). */
  backlogAtEnd: number | null;
  waits: WaitProfile;
}

export interface BulkResult {
  statement: string;
  mode: string;
  ms: number[];
}

/** Server time of one single-row statement, without its commit: medians. */
export interface CostResult {
  statement: string;
  mode: string;
  executionUs: number;
  triggerUs: number;
}

const statementEvents = ['insert', 'update', 'delete'] as const;
const transitionTables = {
  insert: 'new table as new_rows',
  update: 'old table as old_rows new table as new_rows',
  delete: 'old table as old_rows',
};

/** Puts the triggers of `triggers` on every benchmark table. */
export async function setTriggers(client: pg.Client, config: Config, triggers: Triggers): Promise<void> {
  for (const table of tables) {
    for (const name of ['row', 'truncate', ...statementEvents])
      await client.query(`drop trigger if exists bench_capture_${name} on ${table}`);
    // trigsync's own stay for its mode, as the daemon's start made them: dropped under a running daemon,
    // its capture watcher would find them gone and note a gap.
    if (triggers !== 'statement') {
      const found = await client.query<{ relid: number }>('select $1::regclass::oid::int8 as relid', [table]);
      await dropCaptureTriggers(client, schema, found.rows[0]!.relid);
    }
    if (triggers === 'row') {
      const arg = `'${config.applicationName.replaceAll("'", "''")}'`;
      await client.query(`create trigger bench_capture_row after insert or update or delete on ${table}
                            for each row execute function ${schema}.capture_row(${arg})`);
      await client.query(`create trigger bench_capture_truncate after truncate on ${table}
                            for each statement execute function ${schema}.capture(${arg})`);
    }
    if (triggers === 'packed' || triggers === 'floor') {
      const args = triggers === 'packed' ? await packedArguments(client, config, table) : '';
      for (const event of statementEvents) {
        await client.query(`create trigger bench_capture_${event} after ${event} on ${table}
                              referencing ${transitionTables[event]}
                              for each statement execute function ${schema}.capture_${triggers}(${args})`);
      }
    }
  }
  if (triggers === 'statement') await installSource(client, config);
  if (triggers === 'packed')
    await client.query(`truncate ${schema}.bench_packed_log, ${schema}.bench_packed_rows`);
  if (triggers === 'floor') await client.query(`truncate ${schema}.bench_floor_log`);
}

/** The packed trial's trigger arguments: it is told the table's columns, which its image type must match. */
async function packedArguments(client: pg.Client, config: Config, table: string): Promise<string> {
  const shape = await client.query<{ shape: string }>(
    `select string_agg(attname || ':' || atttypid, ',' order by attnum) as shape
       from pg_attribute where attrelid = $1::regclass and attnum > 0 and not attisdropped`,
    [table],
  );
  return [config.applicationName, shape.rows[0]!.shape].map(sqlLiteral).join(', ');
}

/** The variants' functions (bench/sql), next to trigsync's capture functions in the installed schema. */
export async function installBenchCapture(client: pg.Client): Promise<void> {
  for (const file of ['capture-row.sql', 'capture-packed.sql', 'capture-floor.sql']) {
    const sql = (await readFile(new URL(`../sql/${file}`, import.meta.url), 'utf8'))
      .replaceAll('{{schema_in_literal}}', ident(schema).replaceAll("'", "''"))
      .replaceAll('{{schema}}', ident(schema));
    await client.query(sql);
  }
}
