/**
 * Online sync: copy a target's tables from one consistent snapshot of the source, without blocking its
 * writers (a REPEATABLE READ read-only transaction takes no lock but ACCESS SHARE), streamed with COPY
 * into the target. In one target transaction, each table is truncated, filled, and given a floor: the
 * copy's snapshot, whose changes the stream then leaves out for that table (chunk.ts), while every
 * change the snapshot does not see is applied as usual. So no change is lost or applied twice, and the
 * target's position does not move; the other tables carry on from it. A target whose position the log
 * cannot serve (src/log/horizon.ts) has every table copied and gets a new position in the same
 * transaction, taken before the copy's snapshot. A copy cut off (daemon killed)
 * rolls back whole and the request, kept on the source, starts it over.
 */
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import type pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';

import { ident, qualifiedIdent, sameName } from '../config/identifiers.js';
import type { Config, TargetConfig } from '../config/types.js';
import { connect } from '../db/connect.js';
import { parseSnapshot, type Snapshot } from '../log/snapshot.js';
import type { Position } from '../log/window.js';
import type { PositionKey } from './chunk.js';
import type { TablePlan } from './plan.js';
import { saveAppliedPosition } from './statements.js';

export interface SyncProgress {
  table: string;
  /** Rows copied of this table so far. */
  rows: number;
  /** The planner's estimate of the table's rows (reltuples); undefined when it has none. */
  estimate: number | undefined;
  /** Rows copied of the tables before this one. */
  rowsBefore: number;
}

export interface SyncResult {
  rows: number;
  tables: string[];
  snapshot: string;
}

/** Text forms that every server reads back the same way, for both ends of a COPY. */
const copySettings = `set local datestyle = 'ISO, YMD'; set local intervalstyle = 'postgres';
  set local extra_float_digits = 3; set local bytea_output = 'hex'`;

/** Counts rows in COPY text (one per newline: a newline inside a value is escaped) and reports them. */
function rowCounter(report: (rows: number) => void): Transform {
  let rows = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) rows++;
      report(rows);
      done(null, chunk);
    },
  });
}

async function estimatedRows(source: pg.ClientBase, relid: number): Promise<number | undefined> {
  const result = await source.query<{ n: number }>(
    `select reltuples::int8 as n from pg_class where oid = $1`,
    [relid],
  );
  const n = result.rows[0]?.n;
  return n === undefined || n < 0 ? undefined : n;
}

/**
 * Copy `tables` of the target at one source snapshot, in one target transaction that also records
 * their floors. `target` is the worker's connection (no transaction open).
 */
export async function copyTables(options: {
  config: Config;
  targetConfig: TargetConfig;
  origin: string;
  tables: readonly TablePlan[];
  target: pg.ClientBase;
  progress: (progress: SyncProgress) => void;
  /** A new position for the target, recorded with the copy (taken before the copy's snapshot). */
  restart?: { key: PositionKey; position: Position } | undefined;
}): Promise<SyncResult> {
  const { config, targetConfig, origin, tables, target, progress, restart } = options;
  const snapshotClient = await connect(config.source.url, { applicationName: config.applicationName });
  try {
    await snapshotClient.query('begin isolation level repeatable read read only');
    await snapshotClient.query(copySettings);
    // Locked before the snapshot is fixed (LOCK takes none), as pg_dump does: a TRUNCATE ignores older
    // snapshots, so one committed between the snapshot and a table's copy would make the copy read an
    // empty table while the stream leaves out everything before it (the matrix test met it as conflicts).
    await snapshotClient.query(
      `lock table ${tables.map((t) => qualifiedIdent(t.source)).join(', ')} in access share mode`,
    );
    // The first query fixes the transaction's snapshot; pg_current_snapshot() is that snapshot.
    const snapshot = (await snapshotClient.query<{ s: string }>('select pg_current_snapshot()::text as s'))
      .rows[0]!.s;
    await target.query('begin');
    try {
      await target.query(copySettings);
      let copied = 0;
      for (const table of tables) {
        const estimate = await estimatedRows(snapshotClient, table.relid);
        const where = targetConfig.tables.find((m) => sameName(m.source, table.source))?.where;
        const columns = table.columns.map(ident).join(', ');
        const select = `select ${columns} from ${qualifiedIdent(table.source)}${where === undefined ? '' : ` where (${where})`}`;
        await target.query(`truncate only ${qualifiedIdent(table.target)}`);
        let rows = 0;
        progress({ table: table.sourceName, rows, estimate, rowsBefore: copied });
        await pipeline(
          snapshotClient.query(copyTo(`copy (${select}) to stdout`)),
          rowCounter((n) => {
            rows = n;
            progress({ table: table.sourceName, rows, estimate, rowsBefore: copied });
          }),
          target.query(copyFrom(`copy ${qualifiedIdent(table.target)} (${columns}) from stdin`)),
        );
        copied += rows;
        await target.query(
          `insert into ${ident(config.schema)}.table_floor (origin, target, relid, snapshot) values ($1, $2, $3, $4)
           on conflict (origin, target, relid) do update set snapshot = excluded.snapshot, copied_at = now()`,
          [origin, targetConfig.name, table.relid, snapshot],
        );
      }
      if (restart !== undefined) {
        const { key, position } = restart;
        await saveAppliedPosition(target, key.schema, key.origin, key.target, position);
      }
      await target.query('commit');
      return { rows: copied, tables: tables.map((t) => t.sourceName), snapshot };
    } catch (thrown) {
      await target.query('rollback').catch(() => undefined);
      throw thrown;
    }
  } finally {
    await snapshotClient.query('rollback').catch(() => undefined);
    await snapshotClient.end().catch(() => undefined);
  }
}

/** The floors this target holds for this source: relid → the snapshot of the copy. */
export async function loadFloors(
  target: pg.ClientBase,
  schema: string,
  origin: string,
  name: string,
): Promise<Map<number, Snapshot>> {
  const result = await target.query<{ relid: number; snapshot: string }>(
    `select relid, snapshot from ${ident(schema)}.table_floor where origin = $1 and target = $2`,
    [origin, name],
  );
  return new Map(result.rows.map((r) => [r.relid, parseSnapshot(r.snapshot)]));
}

/** Floors that the position has passed leave nothing to hide: drop them. */
export async function dropFloors(
  target: pg.ClientBase,
  schema: string,
  origin: string,
  name: string,
  relids: readonly number[],
): Promise<void> {
  await target.query(
    `delete from ${ident(schema)}.table_floor where origin = $1 and target = $2 and relid = any($3::int8[])`,
    [origin, name, relids],
  );
}
