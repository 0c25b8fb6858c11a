/**
 * Keeps the capture triggers in step with the captured tables while the daemon runs. The triggers carry
 * what they capture in their arguments (src/capture/triggers.ts): the json columns, the columns written
 * as text, the partitioned table a partition logs under. So a column added to a captured table, or a
 * partition attached to a captured partitioned table (PostgreSQL clones only row triggers to it, and a
 * statement that names a partition fires only the partition's statement triggers), needs its triggers
 * made anew. The leader looks every 2 s and does so. Until then, a json column added is captured with
 * JSON null for SQL NULL, a text-written column (hstore) added is not captured, and writes that name a
 * new partition are not captured: docs/operations.md ("Foreign keys, triggers and partitions on
 * targets", "Schema changes") says to wait for the daemon's log line before using them.
 *
 * It also makes again a capture that someone stopped: a trigger dropped, disabled, or set back to fire
 * on origin only (sql/source/018). Writes made meanwhile were not captured, so every target that takes
 * the table is noted as lacking them (status, check), and those of the group that copy what they lack
 * are asked to copy it.
 */
import type pg from 'pg';

import { formatQualifiedName } from '../config/identifiers.js';
import type { Config, QualifiedName } from '../config/types.js';
import { inTransactionGivingWay } from '../db/giving-way.js';
import { PeriodicSourceJob } from '../db/periodic-job.js';
import type { TermFence } from '../db/term-fence.js';
import type { Logger } from '../lib/logger.js';
import { describeRelids } from './catalog.js';
import { captureImage, capturedBefore, ensureTableCapture, recordCaptureFires } from './install.js';
import { noteCaptureGap } from './table-set.js';
import { captureGapWhy, captureIsCurrent, type TriggersEnsured } from './triggers.js';

const watchIntervalMs = 2_000;

export class CaptureWatcher extends PeriodicSourceJob {
  readonly name = 'capture-watcher';
  constructor(
    config: Config,
    /** The captured tables, by oid. */
    private readonly tables: ReadonlyMap<number, QualifiedName>,
    logger: Logger,
    fence: TermFence,
    /** Ask a target to copy tables, in the caller's transaction (src/sync/requests.ts requestSync). */
    private readonly askCopy: (client: pg.ClientBase, target: string, tables: string[]) => Promise<unknown>,
  ) {
    super(config, logger, fence, watchIntervalMs, 'checking the capture triggers');
  }

  protected async work(client: pg.Client): Promise<void> {
    const described = await describeRelids(client, [...this.tables.keys()]);
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
      await this.askCopy(client, target.name, [table]);
      copying.push(target.name);
    }
    return { table, why, targets, copying };
  }
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
