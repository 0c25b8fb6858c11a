// Benchmark 3: pruning the change log under sustained load, designs simulated in plain SQL (the product
// is not changed): what src/changelog/pruner.ts does, DELETE in chunks of what is older than the horizon,
// left to autovacuum or followed by a VACUUM of the log, versus a log of rotating partitions where
// pruning is a TRUNCATE of the oldest one. A writer inserts log-like rows at a steady high rate (or as fast as it
// can); a consumer prunes every second whatever is older than about two seconds. We record the insert
// rate and latency second by second, the time of every pruning cycle, the WAL written and the size of
// the log at the end.
import type pg from 'pg';

import { ident } from '../src/config/identifiers.js';
import { randomId, type Interval, type LoadResult, type Workload } from './support/load.js';
import { describeMachine, machineHeader } from './support/machine.js';
import type { BenchContext } from './support/options.js';
import { fmt, formatTable, mean, percentile, writeResults, type Cell } from './support/report.js';
import { createDatabase, withServers } from './support/servers.js';
import { benchClient } from './support/trigsync.js';

const writers = 4;
const rowsPerTransaction = 10;
/** Prune what is older than this, once a second. */
const keepMs = 2_000;
const cycleMs = 1_000;
/** As src/changelog/pruner.ts. */
const deleteChunk = 20_000;
const partitions = 4;

// The columns of trigsync's change_log; ids from a sequence without cache, as there.
const columns = `
  id bigint not null default nextval('log_id_seq'),
  txid xid8 not null default pg_current_xact_id(),
  captured_at timestamptz not null default statement_timestamp(),
  relid oid not null,
  op "char" not null,
  row json`;

interface Design {
  key: 'delete' | 'vacuum' | 'rotate';
  label: string;
  ddl: string;
}

const deleteDdl = `
  create sequence log_id_seq as bigint cache 1;
  create table log (${columns}, primary key (id));
  create index log_txid on log (txid, id);`;

const designs: Design[] = [
  { key: 'delete', label: 'DELETE + autovacuum', ddl: deleteDdl },
  { key: 'vacuum', label: 'DELETE + VACUUM', ddl: deleteDdl },
  {
    key: 'rotate',
    label: `${partitions} rotating partitions`,
    // Writers find the current partition through a sequence: not transactional, so rotating never waits
    // for a writer, and a writer never waits for the rotation.
    ddl: `
      create sequence log_id_seq as bigint cache 1;
      create sequence log_rotation as bigint minvalue 0 start 0;
      create function log_slot() returns int language sql stable
        as $$ select (last_value % ${partitions})::int from log_rotation $$;
      create table log (slot int not null default log_slot(), ${columns}) partition by list (slot);
      ${Array.from(
        { length: partitions },
        (_, i) => `create table log_${i} partition of log for values in (${i});
                   alter table log_${i} add primary key (id);`,
      ).join('\n')}
      create index log_txid on log (txid, id);`,
  },
];

// About 200 bytes of json per row, like a captured row image.
const pad = 'x'.repeat(110);
const writerWorkload: Workload = {
  name: 'log',
  script: `\\set r random(1, 1000000000)
insert into log (relid, op, row)
  select 16384, 'I', json_build_object('id', :r + g, 'a', g, 'b', '${pad}', 'c', now())
    from generate_series(1, ${rowsPerTransaction}) g;
`,
  statement: `insert into log (relid, op, row)
  select 16384, 'I', json_build_object('id', $1::int + g, 'a', g, 'b', '${pad}', 'c', now())
    from generate_series(1, ${rowsPerTransaction}) g`,
  values: () => [randomId(1e9)],
};

interface Cycle {
  /** Seconds since the start of the run. */
  at: number;
  ms: number;
  /** Rows deleted (DELETE designs only). */
  removed: number | null;
}

interface DesignResult {
  design: Design['key'];
  /** Log rows per second and transaction latency, second by second. */
  perSecond: Interval[];
  cycles: Cycle[];
  rowBytes: number;
  rowsAtEnd: number;
  heapMB: number;
  indexMB: number;
  walBytesPerRow: number;
  autovacuums: number;
}

export async function pruneBench({ options, load }: BenchContext): Promise<void> {
  await withServers(['log'], async ({ clusters: [cluster] }) => {
    const machine = await describeMachine(cluster!, load);
    console.log(`${machineHeader('pruning under load', machine)}\n`);
    const rate = options.pruneRate === 0 ? undefined : options.pruneRate / rowsPerTransaction;
    const results: DesignResult[] = [];
    for (const design of designs) {
      const url = await createDatabase(cluster!, `log_${design.key}`);
      const client = await benchClient(url);
      try {
        await client.query(design.ddl);
        await client.query('checkpoint');
        const walStart = await walPosition(client);
        const stop = new AbortController();
        const writing = load
          .run(writerWorkload, {
            url,
            clients: writers,
            seconds: options.pruneSeconds,
            ...(rate === undefined ? {} : { rate }),
          })
          .finally(() => stop.abort());
        const [written, cycles] = await Promise.all([writing, consume(client, design.key, stop.signal)]);
        results.push(await measure(client, design.key, written, cycles, walStart));
        console.error(`  ${design.label}: ${fmt(written.tps * rowsPerTransaction)} rows/s`);
      } finally {
        await client.end();
      }
      // Else autovacuum would clean up this design's dead rows during the next design's run.
      await cluster!.query(`drop database log_${design.key}`);
    }
    const pace = rate === undefined ? 'as fast as they can' : `at ${fmt(options.pruneRate, 0)} rows/s in all`;
    console.log(
      `${writers} writers ${pace}, ${rowsPerTransaction} log rows per transaction; ` +
        `every ${cycleMs / 1000} s, pruning of what is older than ${keepMs / 1000} s\n`,
    );
    console.log(overTime(results, options.pruneSeconds));
    console.log(`\n${summaryTable(results)}`);
    console.log(`\n${conclusion(results, rate === undefined)}`);
    const file = await writeResults('prune', new Date(machine.date), {
      machine,
      options: {
        seconds: options.pruneSeconds,
        rowsPerSecond: options.pruneRate,
        writers,
        rowsPerTransaction,
        keepMs,
        cycleMs,
        deleteChunk,
      },
      results,
    });
    console.log(`\nresults: ${file}`);
  });
}

async function walPosition(client: pg.Client): Promise<string> {
  return (await client.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn')).rows[0]!.lsn;
}

/** Prunes once a second until the writer stops. */
async function consume(client: pg.Client, design: Design['key'], signal: AbortSignal): Promise<Cycle[]> {
  const started = performance.now();
  const horizons: { at: number; xmin: string }[] = [];
  const cycles: Cycle[] = [];
  let rotation = 0;
  for (let next = started + cycleMs; !signal.aborted; next += cycleMs) {
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, next - performance.now())));
    if (signal.aborted) break;
    const begun = performance.now();
    let removed: number | null = null;
    if (design !== 'rotate') {
      // The horizon of ~2 s ago: every transaction older than the oldest one running then.
      const now = await client.query<{ xmin: string }>(
        'select pg_snapshot_xmin(pg_current_snapshot())::text as xmin',
      );
      horizons.push({ at: begun, xmin: now.rows[0]!.xmin });
      const horizon = horizons.filter((h) => h.at <= begun - keepMs).at(-1);
      if (horizon === undefined) continue;
      removed = await deleteOlder(client, horizon.xmin);
      // What the pruner does since it vacuums after each prune: the space of the rows just deleted is
      // reused at once instead of when autovacuum comes round.
      if (design === 'vacuum') await client.query('vacuum log');
    } else {
      // Partition r is current from here; r - 1 and r - 2 hold the last ~2 s; r + 1 (= r - 3) is older:
      // empty it, ready to become current at the next rotation.
      rotation++;
      await client.query(`select setval('log_rotation', $1)`, [rotation]);
      await client.query(`truncate ${ident(`log_${(rotation + 1) % partitions}`)}`);
    }
    cycles.push({ at: (begun - started) / 1000, ms: performance.now() - begun, removed });
  }
  return cycles;
}

/** As pruneLog() in src/changelog/pruner.ts: chunks, so that no statement holds locks long. */
async function deleteOlder(client: pg.Client, xmin: string): Promise<number> {
  let removed = 0;
  for (;;) {
    const result = await client.query(
      `delete from log where txid < $1::xid8 and id <= (
         select max(id) from (select id from log where txid < $1::xid8 order by id limit ${deleteChunk}) chunk)`,
      [xmin],
    );
    removed += result.rowCount ?? 0;
    if ((result.rowCount ?? 0) < deleteChunk) return removed;
  }
}

async function measure(
  client: pg.Client,
  design: Design['key'],
  written: LoadResult,
  cycles: Cycle[],
  walStart: string,
): Promise<DesignResult> {
  // pg_partition_tree() is empty for a plain table.
  const size = await client.query<{ heap: number; indexes: number }>(
    `select sum(pg_table_size(relid))::int8 as heap, sum(pg_indexes_size(relid))::int8 as indexes
       from (select relid from pg_partition_tree('log') union select 'log'::regclass) t`,
  );
  const rows = await client.query<{ rows: number; bytes: number | null }>(
    'select count(*) as rows, avg(octet_length(row::text))::float8 as bytes from log',
  );
  const wal = await client.query<{ bytes: number }>(
    'select pg_wal_lsn_diff(pg_current_wal_lsn(), $1)::float8 as bytes',
    [walStart],
  );
  // Statistics reach pg_stat_user_tables within a second or so; good enough for a count of runs.
  const stats = await client.query<{ autovacuums: number }>(
    `select coalesce(sum(autovacuum_count), 0)::int8 as autovacuums
       from pg_stat_user_tables where relname like 'log%'`,
  );
  const mb = (bytes: number | undefined): number => (bytes ?? 0) / 2 ** 20;
  return {
    design,
    perSecond: written.perSecond.map((s) => ({ tps: s.tps * rowsPerTransaction, latencyMs: s.latencyMs })),
    cycles,
    rowBytes: rows.rows[0]?.bytes ?? NaN,
    rowsAtEnd: rows.rows[0]?.rows ?? NaN,
    heapMB: mb(size.rows[0]?.heap),
    indexMB: mb(size.rows[0]?.indexes),
    walBytesPerRow: (wal.rows[0]?.bytes ?? NaN) / (written.transactions * rowsPerTransaction),
    autovacuums: stats.rows[0]?.autovacuums ?? 0,
  };
}

const labelOf = (key: Design['key']): string => designs.find((d) => d.key === key)?.label ?? key;
const rowsOf = (r: DesignResult): number[] => r.perSecond.map((s) => s.tps);
const latencyOf = (r: DesignResult): number[] => r.perSecond.map((s) => s.latencyMs);
const pruneMs = (r: DesignResult): number[] => r.cycles.map((c) => c.ms);
const thirds = (values: number[]): [first: number, last: number] => {
  const third = Math.max(1, Math.floor(values.length / 3));
  return [mean(values.slice(0, third)), mean(values.slice(-third))];
};

/** The rows of the table are time: insert rate, latency and the longest pruning cycle per interval. */
function overTime(results: DesignResult[], seconds: number): string {
  const step = Math.max(1, Math.round(seconds / 12));
  const rows: Cell[][] = [];
  for (let from = 0; from < seconds; from += step) {
    const cells: Cell[] = [`${from}-${Math.min(seconds, from + step)}`];
    for (const r of results) {
      const interval = r.perSecond.slice(from, from + step);
      cells.push(mean(interval.map((s) => s.tps)), Math.max(...interval.map((s) => s.latencyMs)));
      const during = r.cycles.filter((c) => c.at >= from && c.at < from + step).map((c) => c.ms);
      cells.push(during.length === 0 ? '-' : Math.max(...during));
    }
    rows.push(cells);
  }
  const headers = ['s', ...results.flatMap((r) => [`${r.design}: rows/s`, 'latency ms max', 'prune ms max'])];
  return ['Over time (latency: the worst second of the interval)', formatTable(headers, rows)].join('\n');
}

function summaryTable(results: DesignResult[]): string {
  const rows = results.map((r): Cell[] => {
    const ms = pruneMs(r);
    const [first, last] = thirds(rowsOf(r));
    return [
      labelOf(r.design),
      mean(rowsOf(r)),
      first,
      last,
      Math.min(...rowsOf(r)),
      mean(latencyOf(r)),
      Math.max(...latencyOf(r)),
      percentile(ms, 50),
      percentile(ms, 95),
      Math.max(...ms),
      r.rowsAtEnd,
      r.heapMB + r.indexMB,
      r.walBytesPerRow,
      r.autovacuums,
    ];
  });
  return [
    'Summary (rows/s of the log in the first and last third of the run; size of heap + indexes at the end)',
    formatTable(
      [
        'design',
        'rows/s',
        'first ⅓',
        'last ⅓',
        'worst 1 s',
        'latency ms',
        'worst 1 s',
        'prune p50 ms',
        'p95',
        'max',
        'rows at end',
        'MB',
        'WAL B/row',
        'autovacuums',
      ],
      rows,
    ),
    `Row image: ~${fmt(results[0]?.rowBytes ?? NaN, 0)} bytes of json per log row. A pruning cycle is the ` +
      'DELETEs (and the VACUUM), or setval + TRUNCATE.',
  ].join('\n');
}

/** Which design keeps its insert rate, its latency and its pruning time. */
function conclusion(results: DesignResult[], flatOut: boolean): string {
  const lines = results.map((r) => {
    const [first, last] = thirds(rowsOf(r));
    const p95 = percentile(pruneMs(r), 95);
    return (
      `${labelOf(r.design)}: last third at ${fmt((last / first) * 100, 0)}% of the first third's rate, ` +
      `worst second ${fmt(Math.max(...latencyOf(r)))} ms latency; pruning p95 ${fmt(p95)} ms; ` +
      `${fmt(r.heapMB + r.indexMB)} MB at the end; ${fmt(r.walBytesPerRow, 0)} WAL bytes per row.`
    );
  });
  const best = (score: (r: DesignResult) => number): string =>
    labelOf(results.reduce((a, b) => (score(b) < score(a) ? b : a)).design);
  return [
    ...lines,
    `Fastest pruning (p95): ${best((r) => percentile(pruneMs(r), 95))}; ` +
      `lowest worst-second latency: ${best((r) => Math.max(...latencyOf(r)))}` +
      // At a fixed rate all designs insert the same; only flat out does the rate tell them apart.
      (flatOut ? `; highest insert rate: ${best((r) => -mean(rowsOf(r)))}.` : '.'),
  ].join('\n');
}
