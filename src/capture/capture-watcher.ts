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
 */
import type pg from 'pg';

import { formatQualifiedName } from '../config/identifiers.js';
import type { Config, QualifiedName } from '../config/types.js';
import { inTransactionGivingWay } from '../db/giving-way.js';
import { PeriodicSourceJob } from '../db/periodic-job.js';
import type { TermFence } from '../db/term-fence.js';
import type { Logger } from '../lib/logger.js';
import { describeRelids } from './catalog.js';
import { captureImage, ensureTableCapture } from './install.js';
import { captureIsCurrent } from './triggers.js';

const watchIntervalMs = 2_000;

export class CaptureWatcher extends PeriodicSourceJob {
  readonly name = 'capture-watcher';
  constructor(
    config: Config,
    /** The captured tables, by oid. */
    private readonly tables: ReadonlyMap<number, QualifiedName>,
    logger: Logger,
    fence: TermFence,
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
    await inTransactionGivingWay(
      client,
      async () => {
        remade = [];
        for (const { info } of tables) {
          const name = this.tables.get(info.relid)!;
          if (await ensureTableCapture(client, this.config, { ...info, name }))
            remade.push(formatQualifiedName(name));
        }
      },
      { signal: this.signal },
    );
    this.logger.info({ tables: remade }, 'capture triggers made anew (a column or a partition was added)');
  }
}
