/**
 * Captures partitions attached while the daemon runs. A statement that names a partition fires only
 * the partition's own statement triggers, and PostgreSQL gives a new partition none of its parent's
 * (it clones row triggers only), so the leader looks for partitions of captured partitioned tables
 * without capture triggers every few seconds and gives them theirs. Until then, writes through the
 * partitioned table are captured and writes that name the new partition are not: docs/operations.md
 * ("Foreign keys, triggers and partitions on targets") says to attach, then wait for the daemon's log
 * line, before writing to a partition by name.
 */
import type pg from 'pg';

import { formatQualifiedName } from '../config/identifiers.js';
import type { Config, QualifiedName } from '../config/types.js';
import { PeriodicSourceJob } from '../db/periodic-job.js';
import type { Logger } from '../lib/logger.js';
import type { TableInfo } from './catalog.js';
import { ensureTableCapture } from './install.js';
import { triggerName } from './triggers.js';

const watchIntervalMs = 2_000;

type CapturedPartitioned = TableInfo & { name: QualifiedName };

/** Whether a partition of `relid` lacks its capture triggers. */
async function uncapturedPartitions(client: pg.ClientBase, schema: string, relid: number): Promise<number> {
  const result = await client.query<{ n: number }>(
    `select count(*)::int4 as n from pg_partition_tree($1::oid) p
      where p.relid <> $1::oid
        and not exists (select from pg_trigger t where t.tgrelid = p.relid and t.tgname = $2)`,
    [relid, triggerName(schema, 'insert')],
  );
  return result.rows[0]?.n ?? 0;
}

export class PartitionWatcher extends PeriodicSourceJob {
  readonly name = 'partition-watcher';
  constructor(
    config: Config,
    private readonly tables: readonly CapturedPartitioned[],
    logger: Logger,
  ) {
    super(config, logger, watchIntervalMs, 'checking partitions');
  }

  protected async work(client: pg.Client): Promise<void> {
    for (const table of this.tables) await this.watch(client, table);
  }

  private async watch(client: pg.Client, table: CapturedPartitioned): Promise<void> {
    const missing = await uncapturedPartitions(client, this.config.schema, table.relid);
    if (missing === 0) return;
    await client.query('begin');
    try {
      await ensureTableCapture(client, this.config, table);
      await client.query('commit');
    } catch (thrown) {
      await client.query('rollback').catch(() => undefined);
      throw thrown;
    }
    this.logger.info(
      { table: formatQualifiedName(table.name), partitions: missing },
      'capturing new partition(s)',
    );
  }
}
