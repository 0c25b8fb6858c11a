/**
 * Online sync: copy a target's tables from one consistent snapshot of the source, without blocking its
 * writers (a REPEATABLE READ read-only transaction takes no lock but ACCESS SHARE), streamed with COPY
 * into the target. In one target transaction, the tables are emptied and filled in the order the
 * target's foreign keys allow (copy-plan.ts), and each is given a floor: the copy's snapshot, whose changes the stream then leaves out for that table (chunk.ts), while every
 * change the snapshot does not see is applied as usual. So no change is lost or applied twice, and the
 * target's position does not move; the other tables carry on from it. A target whose position the log
 * cannot serve (src/changelog/horizon.ts) has every table copied and gets a new position in the same
 * transaction, taken before the copy's snapshot. A copy cut off (daemon killed)
 * rolls back whole and the request, kept on the source, starts it over.
 */
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import type pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';

import { ident, qualifiedIdent, sameName } from '../config/identifiers.js';
import type { Config, TargetConfig } from '../config/types.js';
import { referencesInto } from '../capture/catalog.js';
import { connect } from '../db/connect.js';
import { setTextForms } from '../db/text-forms.js';
import { coerceError, CopyFailed, sqlState } from '../failure/errors.js';
import type { Position } from '../changelog/window.js';
import type { PositionKey } from '../apply/chunk.js';
import { mergeStatements, planCopy, truncateStatement } from './copy-plan.js';
import type { TablePlan } from '../apply/plan.js';
import { saveAppliedPosition } from '../apply/applied-position.js';

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
  /** Tables merged instead of emptied, and why (copy-plan.ts). */
  merged: { table: string; why: string }[];
}

/** Text forms that every server reads back the same way, for both ends of a COPY. */
const copySettings = `${setTextForms('local')}; set local extra_float_digits = 3; set local bytea_output = 'hex'`;

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
 * their floors. `target` is the worker's connection (no transaction open). How each table is emptied
 * and filled so that the target's foreign keys hold: copy-plan.ts.
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
  /** Told the copy's snapshot as soon as it is fixed, before anything is written to the target. */
  onSnapshot?: (snapshot: string) => void;
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
    options.onSnapshot?.(snapshot);
    await target.query('begin');
    try {
      await target.query(copySettings);
      // Deferrable keys are checked at the commit, when every table is whole again.
      await target.query('set constraints all deferred');
      const plan = planCopy(
        tables,
        await referencesInto(
          target,
          tables.map((t) => t.targetRelid),
        ),
      );
      const copy = new TableCopy(snapshotClient, target, targetConfig, progress);
      const stages = new Map(
        plan.order.filter((t) => plan.merged.has(t.relid)).map((t) => [t, mergeStatements(t, config.schema)]),
      );
      for (const [table, merge] of stages) {
        await copy.step(table, 'staging', () => target.query(merge.createStage));
        await copy.fill(table, merge.stage);
        await copy.step(table, 'staging', () => target.query(merge.indexStage));
      }
      if (plan.truncated.length > 0) {
        const names = plan.truncated.map((t) => t.targetName).join(', ');
        await copy.step(names, 'emptying', () => target.query(truncateStatement(plan.truncated)));
      }
      for (const [table, merge] of [...stages].reverse()) {
        await copy.step(table, 'deleting rows the source lacks', () => target.query(merge.deleteExtra));
      }
      for (const table of plan.order) {
        const merge = stages.get(table);
        if (merge === undefined) {
          await copy.fill(table, qualifiedIdent(table.target));
        } else {
          if (merge.updateDifferent !== undefined) {
            await copy.step(table, 'updating rows that differ', () => target.query(merge.updateDifferent!));
          }
          await copy.step(table, 'inserting missing rows', () => target.query(merge.insertMissing));
          await target.query(`drop table ${merge.stage}`);
        }
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
      await copy.step(plan.order.map((t) => t.targetName).join(', '), 'committing', () =>
        target.query('commit'),
      );
      const merged = plan.order
        .filter((t) => plan.merged.has(t.relid))
        .map((t) => ({ table: t.sourceName, why: plan.merged.get(t.relid)! }));
      return { rows: copy.rows, tables: tables.map((t) => t.sourceName), snapshot, merged };
    } catch (thrown) {
      await target.query('rollback').catch(() => undefined);
      throw thrown;
    }
  } finally {
    // Ending the session ends its transaction. Not a ROLLBACK first: a COPY TO whose rows the target
    // refused midway still holds the connection, and a statement sent behind it would wait for ever.
    await snapshotClient.end().catch(() => undefined);
  }
}

/** The copy of one table after another at the snapshot: rows counted, each failure named. */
class TableCopy {
  rows = 0;

  constructor(
    private readonly snapshotClient: pg.ClientBase,
    private readonly target: pg.ClientBase,
    private readonly targetConfig: TargetConfig,
    private readonly progress: (progress: SyncProgress) => void,
  ) {}

  /** COPY the table's rows at the snapshot (its row filter applied) into `into`: the table or its stage. */
  async fill(table: TablePlan, into: string): Promise<void> {
    const estimate = await estimatedRows(this.snapshotClient, table.relid);
    const where = this.targetConfig.tables.find((m) => sameName(m.source, table.source))?.where;
    const columns = table.columns.map(ident).join(', ');
    // A parent's own rows: those of tables that inherit from it are theirs (TablePlan.inherits).
    const from = `${table.inherits ? 'only ' : ''}${qualifiedIdent(table.source)}`;
    const select = `select ${columns} from ${from}${where === undefined ? '' : ` where (${where})`}`;
    const before = this.rows;
    let rows = 0;
    this.progress({ table: table.sourceName, rows, estimate, rowsBefore: before });
    await this.step(table, 'copying', () =>
      pipeline(
        this.snapshotClient.query(copyTo(`copy (${select}) to stdout`)),
        rowCounter((n) => {
          rows = n;
          this.progress({ table: table.sourceName, rows, estimate, rowsBefore: before });
        }),
        this.target.query(copyFrom(`copy ${into} (${columns}) from stdin`)),
      ),
    );
    this.rows += rows;
  }

  /** Run one step of the copy; a failure says which table, which step, and the way out where known. */
  async step<T>(table: TablePlan | string, what: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (thrown) {
      const name = typeof table === 'string' ? table : table.targetName;
      throw new CopyFailed(
        `copy to target ${this.targetConfig.name}: ${what} ${name} failed: ${copyFailure(thrown, this.targetConfig.name)}`,
        thrown,
      );
    }
  }
}

/** The database's message, its detail, and what to do about it where the SQLSTATE tells. */
function copyFailure(thrown: unknown, target: string): string {
  const error = thrown as { message?: unknown; detail?: unknown; constraint?: unknown; table?: unknown };
  const parts = [coerceError(thrown).message];
  if (typeof error.detail === 'string') parts.push(error.detail);
  const state = sqlState(thrown);
  if (state === '23503') {
    const constraint =
      typeof error.constraint === 'string' ? `foreign key ${error.constraint}` : 'a foreign key';
    const on = typeof error.table === 'string' ? ` of ${error.table}` : '';
    parts.push(
      `the target's ${constraint}${on} refuses the copy: copy the tables it joins in one sync ` +
        `(\`trigsync sync ${target}\` copies them all), make that key DEFERRABLE on the target, or drop it there`,
    );
  } else if (state === '42501') {
    parts.push(
      `grant the target role what it lacks (docs/operations.md, "Roles and privileges"), then \`trigsync retry ${target}\``,
    );
  }
  return parts.join('; ');
}
