/**
 * One batch of `repair`: the differing keys of one table made equal to the source in one short target
 * transaction, while the daemon's worker keeps applying.
 *
 * The transaction locks the target table against other writers (SHARE ROW EXCLUSIVE: reads go on) and
 * the target's applied-position row, which every batch of the worker writes before it commits: the
 * worker waits for the repair, never the other way round, and the position P read under the lock stays
 * what the target holds. Only then is the source snapshot L taken. Whatever P has applied was read by
 * the worker in snapshots older than L, so L sees it; a key none of whose changes in L is outside P
 * (keysInFlight of L and P) holds on the target exactly its changes up to L, and is rightly the
 * source's row in L. Its changes after L reach the target later, in order, on top of that row. A key
 * with a change in L that P has not applied (the worker's batch in flight among them) is left for a
 * later round. Changes pruned from the log were applied everywhere: in P and in L alike, so they never
 * matter. Each key written is recorded on the source (`<schema>.repaired_key`) before the target
 * commits, and the record commits right after it.
 */
import os from 'node:os';

import type pg from 'pg';

import { imagesOf, type RowImages } from '../apply/batch.js';
import type { TablePlan } from '../apply/plan.js';
import { deleteRows, insertRows, updateRows } from '../apply/statements.js';
import type { ColumnInfo } from '../capture/catalog.js';
import { ident, qualifiedIdent } from '../config/identifiers.js';
import { sqlState } from '../failure/errors.js';
import { beginSnapshot, endTransaction, keysInFlight, targetPosition, type Follower } from './catch-up.js';
import { diffRows } from './ranges.js';
import { keyImage, splitInFlight, writesOf, type RepairAction } from './repair-plan.js';
import { keyId, type Key, type KeyedImage, type TableSide } from './table-side.js';
import { keyObject } from './verify.js';

/** The sessions a batch uses; each idle (no transaction open) between batches. */
export interface BatchSessions {
  /** The source session, in verify's session settings: the snapshot L is taken on it. */
  source: pg.ClientBase;
  /** The target session: trigsync's application_name, replica role where permitted. */
  target: pg.ClientBase;
  /** A second source session that writes the records. */
  recorder: pg.ClientBase;
  schema: string;
  targetName: string;
  /** How the target follows the source; undefined: nothing replicates to it from this source. */
  follower: Follower | undefined;
}

export interface BatchTable {
  table: TablePlan;
  sides: { source: TableSide; target: TableSide };
  /** The source table's columns: its row images are made from them. */
  columns: ColumnInfo[];
  keyTypes: string[];
}

export interface BatchResult {
  written: { key: Key; action: RepairAction }[];
  /** Keys a change in flight touches, or whose locks were not granted in time: for a later round. */
  later: Key[];
  /** Keys that still differ right after their write (the target holds something else): reported. */
  failed: Key[];
}

/** How long the batch waits for the table lock and the position's row (a worker's batch in flight). */
const lockWaitMs = 5_000;
/**
 * How long a write waits for a row lock once the position is locked: under the server's deadlock
 * timeout (1 s by default), so that when a row is held by a session waiting for this one, this
 * transaction gives way rather than the worker's.
 */
const writeWaitMs = 300;
/** Keys changed in flight that are listed, at most; beyond, the batch waits for a later round. */
const maxKeysInFlight = 100_000;

/** The operating-system user running the command, for the record; null where the system has none. */
function osUser(): string | null {
  try {
    return os.userInfo().username;
  } catch {
    return null;
  }
}

/** A lock not granted in time, or a deadlock this transaction lost: the batch is tried again later. */
function lockNotGranted(thrown: unknown): boolean {
  const state = sqlState(thrown);
  return state === '55P03' || state === '40P01';
}

function imagesOfKeys(table: TablePlan, keys: readonly Key[]): RowImages {
  return imagesOf(table, keys, (key) => ({ row: keyImage(table.key, key), nulls: null }));
}

async function record(
  sessions: BatchSessions,
  t: BatchTable,
  snapshot: string,
  written: readonly { key: Key; action: RepairAction }[],
): Promise<void> {
  const rows = written.map((w) => ({ key: keyObject(t.table, t.keyTypes, w.key), action: w.action }));
  await sessions.recorder.query(
    `insert into ${ident(sessions.schema)}.repaired_key (target, table_name, key, action, snapshot, os_user)
     select $1, $2, k.key, k.action, $3::pg_snapshot, $4
       from json_to_recordset($5::json) as k(key jsonb, action text)`,
    [sessions.targetName, t.table.sourceName, snapshot, osUser(), JSON.stringify(rows)],
  );
}

/** Write the differences of `keys` (that no change in flight touches), committed and recorded. */
export async function repairBatch(
  sessions: BatchSessions,
  t: BatchTable,
  keys: readonly Key[],
): Promise<BatchResult> {
  const { source, target, recorder, follower } = sessions;
  const { table, sides } = t;
  let sourceOpen = false;
  let recording = false;
  await target.query('begin');
  try {
    await target.query(`set local lock_timeout = ${lockWaitMs}`);
    await target.query(`lock table ${qualifiedIdent(table.target)} in share row exclusive mode`);
    const position =
      follower === undefined ? undefined : await targetPosition(target, source, follower, true);
    const snapshot = await beginSnapshot(source);
    sourceOpen = true;
    const inFlight =
      follower === undefined || position === undefined
        ? []
        : await keysInFlight(
            source,
            snapshot.snapshot,
            follower,
            position,
            { relid: table.relid, relation: table.source, key: table.key, renamed: table.renamed },
            maxKeysInFlight,
          );
    const { now, later } = splitInFlight(keys, inFlight);
    const result: BatchResult = { written: [], later, failed: [] };
    if (now.length === 0) {
      await target.query('rollback');
      return result;
    }
    const [before, onTarget] = await Promise.all([sides.source.fetchKeys(now), sides.target.fetchKeys(now)]);
    const writes = writesOf(diffRows(before, onTarget));
    const images = await sides.source.fetchImages([...writes.update, ...writes.insert], t.columns);
    const imageOf = (key: Key): KeyedImage['image'] => images.get(keyId(key))!.image;

    await target.query(`set local lock_timeout = ${writeWaitMs}`);
    await deleteRows(target, table, imagesOfKeys(table, writes.delete), imagesOf(table, [], imageOf), []);
    const updated = imagesOf(table, writes.update, imageOf);
    await updateRows(target, table, updated, updated, false);
    await insertRows(target, table, imagesOf(table, writes.insert, imageOf));
    for (const action of ['delete', 'update', 'insert'] as const) {
      for (const key of writes[action]) result.written.push({ key, action });
    }
    if (result.written.length === 0) {
      await target.query('rollback');
      return result;
    }
    const after = await sides.target.fetchKeys(now);
    result.failed = diffRows(before, after).map((d) => d.key);

    await recorder.query('begin');
    recording = true;
    await record(sessions, t, snapshot.snapshot, result.written);
    await target.query('commit');
    recording = false;
    await recorder.query('commit').catch((thrown: unknown) => {
      throw new Error(
        `repaired ${result.written.length} key(s) of ${table.sourceName} on target ${sessions.targetName}, ` +
          `but could not record them in ${sessions.schema}.repaired_key: ${String(thrown)}`,
        { cause: thrown },
      );
    });
    return result;
  } catch (thrown) {
    await target.query('rollback').catch(() => undefined);
    if (recording) await recorder.query('rollback').catch(() => undefined);
    if (lockNotGranted(thrown)) return { written: [], later: [...keys], failed: [] };
    throw thrown;
  } finally {
    if (sourceOpen) await endTransaction(source);
  }
}
