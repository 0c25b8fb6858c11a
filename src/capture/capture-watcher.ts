/**
 * Keeps the capture triggers in step with the captured tables while the daemon runs. The triggers carry
 * what they capture in their arguments (src/capture/triggers.ts): the json columns, the columns written
 * as text, the partitioned table a partition logs under. So a column added to a captured table, or a
 * partition attached to a captured partitioned table (PostgreSQL clones only row triggers to it, and a
 * statement that names a partition fires only the partition's statement triggers), needs its triggers
 * made anew. The leader looks every 2 s and does so. Until then, on a table that had none, a json column
 * added is captured with JSON null for SQL NULL and an hstore column's values park the targets, and writes
 * that name a new partition are not captured: docs/operations.md ("Foreign keys, triggers and partitions
 * on targets", "Schema changes") says to wait for the daemon's log line before using them. It also notes
 * the names the tables' columns have, so that an image captured before a rename reads by the new one.
 *
 * It also makes again a capture that someone stopped: a trigger dropped, disabled, or set back to fire
 * on origin only (sql/source/018). Writes made meanwhile were not captured, so every target that takes
 * the table is noted as lacking them (status, check), and those of the group that copy what they lack
 * are asked to copy it. And it follows each captured table's name: a table dropped and created again
 * under it ends the term, whose next install captures the new table (followNames).
 */
import type pg from 'pg';

import { formatQualifiedName, qualifiedIdent } from '../config/identifiers.js';
import type { Config, QualifiedName } from '../config/types.js';
import { inTransactionGivingWay } from '../db/giving-way.js';
import { PeriodicSourceJob } from '../db/periodic-job.js';
import type { TermFence } from '../db/term-fence.js';
import type { Logger } from '../lib/logger.js';
import { describeRelids, partitionRoots } from './catalog.js';
import { captureImage, capturedBefore, ensureTableCapture, recordCaptureFires } from './install.js';
import { recordColumnNames } from './renamed-columns.js';
import { noteCaptureGap } from './table-set.js';
import { captureGapWhy, captureIsCurrent, type TriggersEnsured } from './triggers.js';

const watchIntervalMs = 2_000;

export class CaptureWatcher extends PeriodicSourceJob {
  readonly name = 'capture-watcher';
  /** Captured tables found dropped, by oid: said once. */
  private readonly dropped = new Set<number>();
  /** Captured tables found to be partitions of a table not captured, by oid: said once. */
  private readonly attached = new Set<number>();
  constructor(
    config: Config,
    /** The captured tables, by oid. */
    private readonly tables: ReadonlyMap<number, QualifiedName>,
    logger: Logger,
    fence: TermFence,
    private readonly term: WatchersTerm,
  ) {
    super(config, logger, fence, watchIntervalMs, 'checking the capture triggers');
  }

  protected async work(client: pg.Client): Promise<void> {
    const described = await describeRelids(client, [...this.tables.keys()]);
    await this.followNames(client, described);
    await this.followAttached(client);
    await recordColumnNames(client, this.config.schema, [...described.keys()]);
    const tables = [...described.values()].map((info) => ({ info, image: captureImage(info) }));
    const { schema, applicationName } = this.config;
    if (
      await captureIsCurrent(
        client,
        schema,
        applicationName,
        tables.map((t) => ({ relid: t.info.relid, image: t.image })),
      )
    )
      return;
    let remade: string[] = [];
    let gaps: CaptureGap[] = [];
    await inTransactionGivingWay(
      client,
      async () => {
        remade = [];
        gaps = [];
        const before = await capturedBefore(client, schema);
        for (const { info } of tables) {
          const name = this.tables.get(info.relid)!;
          const ensured = await ensureTableCapture(
            client,
            this.config,
            { ...info, name },
            before.get(info.relid) ?? { made: true, always: false },
          );
          if (!ensured.changed) continue;
          remade.push(formatQualifiedName(name));
          await recordCaptureFires(client, schema, [{ relid: info.relid, name }]);
          if (ensured.stopped.length > 0) gaps.push(await this.noteGap(client, info.relid, name, ensured));
        }
      },
      { signal: this.signal },
    );
    for (const gap of gaps) this.logger.error(gap, gapMessage(gap));
    if (remade.length > gaps.length)
      this.logger.info({ tables: remade }, 'capture triggers made anew (a column or a partition was added)');
  }

  /**
   * The captured tables by their names. One dropped is said once: nothing more of it is captured. A name
   * that now names another table (the captured one dropped, or renamed, and a table created under its
   * name) is a table the term's workers do not know: the term begins again, and its install captures the
   * new table and tells each target to copy it (src/operator/install-source.ts). A table renamed alone
   * is still captured (`existing`: the captured tables that exist), under its oid.
   */
  private async followNames(client: pg.ClientBase, existing: ReadonlyMap<number, unknown>): Promise<void> {
    const named = [...this.tables];
    const found = await client.query<{ relid: string | null }>(
      `select to_regclass(n)::oid::int8 as relid from unnest($1::text[]) with ordinality as t(n, i) order by i`,
      [named.map(([, name]) => qualifiedIdent(name))],
    );
    const replaced: string[] = [];
    for (const [i, [relid, name]] of named.entries()) {
      const now = found.rows[i]?.relid ?? null;
      const table = formatQualifiedName(name);
      if (now !== null && Number(now) !== relid) replaced.push(table);
      else if (now === null && !existing.has(relid) && !this.dropped.has(relid)) {
        this.dropped.add(relid);
        this.logger.warn(
          { table },
          `captured table ${table} was dropped: its changes logged before are still applied, nothing more ` +
            `of it is captured; remove it from tables, or create it again (trigsync then captures the new ` +
            `table and says what to copy)`,
        );
      }
    }
    if (replaced.length === 0) return;
    this.logger.error(
      { tables: replaced },
      `${replaced.join(', ')} now name${replaced.length === 1 ? 's' : ''} another table (the one captured ` +
        `was dropped or renamed): the daemon begins its term again, to capture it and tell each target ` +
        `to copy it`,
    );
    this.term.renew(`${replaced.join(', ')} now another table`);
  }

  /**
   * A captured table attached as a partition (ATTACH PARTITION): its statement triggers do not fire for
   * writes that name the partitioned table, which are not captured. Said once, as an error: the start
   * refuses such a table (src/capture/source-tables.ts), and the operator lists the partitioned table.
   */
  private async followAttached(client: pg.ClientBase): Promise<void> {
    for (const [relid, root] of await partitionRoots(client, [...this.tables.keys()])) {
      if (this.attached.has(relid)) continue;
      this.attached.add(relid);
      const table = formatQualifiedName(this.tables.get(relid)!);
      const parent = formatQualifiedName(root);
      this.logger.error(
        { table, partitionOf: parent },
        `captured table ${table} is now a partition of ${parent}: writes that name ${parent} are not ` +
          `captured, only those that name ${table}; list ${parent} instead (a where on its partition key ` +
          `keeps to this partition's rows), restart, and copy it to the targets`,
      );
    }
  }

  /**
   * The table's capture was off: every target that takes it may lack what was written meanwhile. Those
   * of this daemon's group that copy what they lack (initialSync: copy) are asked to copy it.
   */
  private async noteGap(
    client: pg.ClientBase,
    relid: number,
    name: QualifiedName,
    ensured: TriggersEnsured,
  ): Promise<CaptureGap> {
    const table = formatQualifiedName(name);
    const why = captureGapWhy(ensured.stopped);
    const targets = await noteCaptureGap(client, this.config.schema, relid, why);
    const copying: string[] = [];
    for (const target of this.config.targets) {
      if (target.initialSync !== 'copy' || !targets.includes(target.name)) continue;
      await this.term.askCopy(client, target.name, [table]);
      copying.push(target.name);
    }
    return { table, why, targets, copying };
  }
}

/** What the watcher asks of the daemon's term. */
export interface WatchersTerm {
  /** Ask a target to copy tables, in the caller's transaction (src/sync/requests.ts requestSync). */
  askCopy: (client: pg.ClientBase, target: string, tables: string[]) => Promise<unknown>;
  /** End the term and begin the next, for `reason` (src/daemon/leadership.ts renew). */
  renew: (reason: string) => void;
}

/** A table whose capture was found off, and what was done about it. */
interface CaptureGap {
  table: string;
  why: string;
  /** The targets that may lack its writes of meanwhile. */
  targets: string[];
  /** Those asked to copy it. */
  copying: string[];
}

function gapMessage({ table, why, targets, copying }: CaptureGap): string {
  const waiting = targets.filter((t) => !copying.includes(t));
  return (
    `capture of ${table} made again; ${why}; writes of it made meanwhile were not captured` +
    (copying.length > 0 ? `; copying it to ${copying.join(', ')}` : '') +
    (waiting.length > 0
      ? `; copy it to ${waiting.join(', ')} with ${waiting.map((t) => `\`trigsync sync ${t} --table ${table}\``).join(', ')}`
      : '')
  );
}
