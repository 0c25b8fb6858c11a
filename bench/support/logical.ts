// PostgreSQL's native logical replication beside trigsync, on the same servers: a publication on the
// source, a subscription on the target. The servers need wal_level=logical (logicalSettings).
import type pg from 'pg';

import { waitFor } from '../../test/support/wait.js';

/** For withServers(): what a publisher needs, on every cluster of the run. */
export const logicalSettings = ['wal_level=logical', 'max_wal_senders=20', 'max_replication_slots=20'];

export interface NativeReplication {
  /** The subscription's name; its slot on the source has the same. */
  readonly name: string;
  /** Stops applying; the slot keeps every change from here on. */
  disable(): Promise<void>;
  enable(): Promise<void>;
  /** Drops the subscription and with it the slot on the source. */
  drop(): Promise<void>;
}

/**
 * Publishes `tables` (qualified, already quoted where needed) on the source and subscribes the target to
 * them without an initial copy: both sides start equal. `sourceUrl` is how the target reaches the source.
 * Returns once the subscription's worker is streaming.
 */
export async function subscribeNative(options: {
  name: string;
  source: pg.Client;
  sourceUrl: string;
  target: pg.Client;
  tables: readonly string[];
}): Promise<NativeReplication> {
  const { name, source, target } = options;
  await source.query(`create publication ${name} for table ${options.tables.join(', ')}`);
  await target.query(
    `create subscription ${name} connection '${libpqConnection(options.sourceUrl)}'
       publication ${name} with (copy_data = false)`,
  );
  await waitFor(
    async () => {
      const rows = await source.query<{ n: number }>(
        `select count(*)::int as n from pg_stat_replication where application_name = $1 and state = 'streaming'`,
        [name],
      );
      return rows.rows[0]?.n === 1;
    },
    { what: `subscription ${name} to stream`, timeoutMs: 30_000, intervalMs: 50 },
  );
  return {
    name,
    disable: async () => {
      await target.query(`alter subscription ${name} disable`);
      // The walsender lingers for a moment after the worker exits; a slot still active would be
      // taken again by the next enable only after it goes.
      await waitFor(
        async () => {
          const rows = await source.query<{ active: boolean }>(
            'select active from pg_replication_slots where slot_name = $1',
            [name],
          );
          return rows.rows[0]?.active === false;
        },
        { what: `slot ${name} to be released`, timeoutMs: 30_000, intervalMs: 50 },
      );
    },
    enable: async () => {
      await target.query(`alter subscription ${name} enable`);
    },
    drop: async () => {
      await target.query(`drop subscription if exists ${name}`);
      await source.query(`drop publication if exists ${name}`);
    },
  };
}

/** A libpq key=value string from a postgres:// URL, for CREATE SUBSCRIPTION ... CONNECTION. */
function libpqConnection(url: string): string {
  const parsed = new URL(url);
  const quote = (value: string): string => `'${value.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
  const parts = {
    host: parsed.hostname,
    port: parsed.port || '5432',
    user: decodeURIComponent(parsed.username),
    password: decodeURIComponent(parsed.password),
    dbname: decodeURIComponent(parsed.pathname.slice(1)),
  };
  // Inside a SQL literal: the libpq quoting above, then each ' doubled.
  return Object.entries(parts)
    .map(([key, value]) => `${key}=${quote(value)}`)
    .join(' ')
    .replaceAll("'", "''");
}
