/**
 * Reading the change log by transaction visibility (the PgQ technique), never by id or time alone:
 * a transaction that commits late would otherwise be skipped.
 *
 * A tick is a snapshot of the source with three values read around it, in this order:
 *   idBound  the last change id, read first (under the sequence's lock, and the sequence has no cache):
 *            every change written later has a larger id;
 *   nextXid  a fresh transaction id: every transaction that wrote a change with id <= idBound is older;
 *   snapshot pg_current_snapshot();
 *   idCeiling the last change id again: every change visible in the snapshot has an id at most this.
 *
 * A target's position is a window between two ticks. Everything visible in `from` is applied. The window
 * holds the changes visible in `to` and not in `from`, applied in id order, in chunks; `appliedId` is the
 * last one applied (the rule of what a position has applied is written once: src/changelog/applied-by.ts).
 * Within a window, id order is each row's commit order, because a writer takes the row lock before its
 * capture trigger draws an id. Not visible in `from` means: in its xip list, or at or above its xmax
 * (which is the last completed xid + 1, so running transactions may sit above it). The window is:
 *   A. ids <= from.idBound: written by transactions older than from.nextXid that `from` does not see, so
 *      their txids are `from`'s xip list plus [from.xmax, from.nextXid): a few point lookups by txid,
 *      however old a long transaction is;
 *   B. from.idBound < id <= to.idCeiling, visible in `to` and not in `from`: a short range of ids.
 * A's ids are all below B's, so "A then B, each by id" is id order.
 */
import type pg from 'pg';

import type { Renames } from '../capture/renamed-columns.js';
import { ident } from '../config/identifiers.js';
import { underCurrentNames } from './renamed-images.js';
import { sendPipelined, valuesOrFirstFailure } from '../db/pipeline.js';
import { windowChangesSql, windowParameters } from './window-changes.js';
import { parseSnapshot } from './snapshot.js';

export interface Tick {
  /** pg_snapshot in text form, `xmin:xmax:xip,...`. */
  snapshot: string;
  idBound: number;
  /** xid8 in text form. */
  nextXid: string;
  idCeiling: number;
}

export interface Position {
  from: Omit<Tick, 'idCeiling'>;
  /** The open window's end; undefined between windows. */
  to: Tick | undefined;
  /** Within the open window, the last change applied (0: none yet). */
  appliedId: number;
}

/**
 * Take a tick: four statements in this order, each in its own transaction. Drawing a transaction id
 * costs one xid per tick. Every xid below the snapshot's xmax must be durable when the tick is used:
 * after a crash, an xid whose commit never reached the WAL is handed out again, and a stored snapshot
 * would take the newcomer as seen and skip its changes. That covers the tick's own xid, and any writer
 * that committed with synchronous_commit = off before the snapshot was taken: so the last statement,
 * after the snapshot, commits synchronously and writes WAL (a transaction that wrote none commits without
 * a flush whatever synchronous_commit says, hence the setval()), which flushes every commit before it.
 * The xid's own statement records it in the `tick` table, which a later check of the position reads.
 * The four go in one round trip: the server runs them in order, each committed before the next starts.
 * `afterXid` runs between the xid and the snapshot, which then take a round trip each (tests commit a
 * writer there; the SharedLog lets other workers join the tick meanwhile).
 */
export async function takeTick(
  client: pg.ClientBase,
  schema: string,
  afterXid?: () => Promise<void>,
): Promise<Tick> {
  // pg_sequence_last_value() reads under the buffer lock; `select last_value from` the sequence does
  // not, and nextval() writes a value 32 ahead there for a moment while it logs. A bound read that way
  // could name ids not drawn yet, by transactions newer than `nextXid`: part A would skip their changes
  // (seen: 22 changes lost out of 129k, 8 writers flat out on a durable server). NULL: no id drawn yet.
  const lastId = 'coalesce(pg_sequence_last_value($1::regclass), 0)';
  const idSequence = `${ident(schema)}.change_log_id_seq`;
  const flushSequence = `${ident(schema)}.tick_flush`;
  const xidStatements = [
    () => client.query(`select ${lastId} as id`, [idSequence]),
    // The tick's row (sql/source/008) names it for later checks (src/changelog/horizon.ts), and is WAL. Ticks
    // taken inside one transaction (install registers its targets so) share their xid, and its row. Its
    // commit need not wait for the flush: the last statement's flushes it, before the tick is used.
    () =>
      client.query(
        `with relaxed as (select set_config('synchronous_commit', 'off', true)),
              noted as (insert into ${ident(schema)}.tick (xid) select pg_current_xact_id() from relaxed
                        on conflict (xid) do nothing)
         select pg_current_xact_id()::text as xid`,
      ),
  ];
  const snapshotStatements = [
    () => client.query('select pg_current_snapshot()::text as snapshot'),
    // setval() makes this transaction write WAL (sql/source/006_tick.sql), so that its synchronous commit
    // flushes the WAL up to it: the commits the snapshot sees are on disk before the tick is used.
    () =>
      client.query(
        `select set_config('synchronous_commit', 'on', true) as durable, setval($2::regclass, 1) as flushed,
                ${lastId} as id`,
        [idSequence, flushSequence],
      ),
  ];
  let rows: unknown[];
  if (afterXid === undefined) {
    rows = await firstRowsOf(client, [...xidStatements, ...snapshotStatements]);
  } else {
    const xid = await firstRowsOf(client, xidStatements);
    await afterXid();
    rows = [...xid, ...(await firstRowsOf(client, snapshotStatements))];
  }
  const [bound, xid, snapshot, ceiling] = rows as [
    { id: number },
    { xid: string },
    { snapshot: string },
    { id: number },
  ];
  return { snapshot: snapshot.snapshot, idBound: bound.id, nextXid: xid.xid, idCeiling: ceiling.id };
}

/** The first row of each statement, sent in one round trip, in order; the first failure throws. */
async function firstRowsOf(
  client: pg.ClientBase,
  statements: readonly (() => Promise<pg.QueryResult>)[],
): Promise<unknown[]> {
  const results = valuesOrFirstFailure(await sendPipelined(client, () => statements.map((send) => send())));
  return results.map((result) => result.rows[0] as unknown);
}

/** The position of a target that starts following now. */
export function positionAt(tick: Tick): Position {
  return { from: startOf(tick), to: undefined, appliedId: 0 };
}

function startOf(tick: Tick): Position['from'] {
  return { snapshot: tick.snapshot, idBound: tick.idBound, nextXid: tick.nextXid };
}

/** Open a window up to `tick`; a position whose window is open keeps it. */
export function openWindow(position: Position, tick: Tick): Position {
  return position.to === undefined ? { ...position, to: tick, appliedId: 0 } : position;
}

/** The window is done: its end becomes the new start. */
export function closeWindow(position: Position): Position {
  if (position.to === undefined) return position;
  return { from: startOf(position.to), to: undefined, appliedId: 0 };
}

/** Positions as stored in the `target` (source) and `applied_position` (target) tables. */
export interface StoredPosition {
  from_snapshot: string;
  from_id_bound: number;
  from_next_xid: string;
  to_snapshot: string | null;
  to_id_bound: number | null;
  to_next_xid: string | null;
  to_id_ceiling: number | null;
  applied_id: number;
}

/** The stored columns in a fixed order, for statements that write them all. */
export const positionColumns = [
  'from_snapshot',
  'from_id_bound',
  'from_next_xid',
  'to_snapshot',
  'to_id_bound',
  'to_next_xid',
  'to_id_ceiling',
  'applied_id',
] as const satisfies readonly (keyof StoredPosition)[];

/** A position's values in the order of `positionColumns`. */
export function positionValues(p: Position): unknown[] {
  const stored = toStored(p);
  return positionColumns.map((column) => stored[column]);
}

export function toStored(p: Position): StoredPosition {
  return {
    from_snapshot: p.from.snapshot,
    from_id_bound: p.from.idBound,
    from_next_xid: p.from.nextXid,
    to_snapshot: p.to?.snapshot ?? null,
    to_id_bound: p.to?.idBound ?? null,
    to_next_xid: p.to?.nextXid ?? null,
    to_id_ceiling: p.to?.idCeiling ?? null,
    applied_id: p.appliedId,
  };
}

export function fromStored(s: StoredPosition): Position {
  const to =
    s.to_snapshot === null || s.to_id_bound === null || s.to_next_xid === null || s.to_id_ceiling === null
      ? undefined
      : {
          snapshot: s.to_snapshot,
          idBound: Number(s.to_id_bound),
          nextXid: s.to_next_xid,
          idCeiling: Number(s.to_id_ceiling),
        };
  return {
    from: { snapshot: s.from_snapshot, idBound: Number(s.from_id_bound), nextXid: s.from_next_xid },
    to,
    appliedId: to === undefined ? 0 : Number(s.applied_id),
  };
}

/**
 * One change as a worker reads it. I insert, D delete, U update (one row: `oldRow` and `row`), T truncate,
 * P truncate of one partition (`row`: `{"where": its bounds as SQL}`).
 * Logs written before sql/source/007 hold an update as V (its old image, in `row`) and then U without
 * `oldRow`.
 */
export interface LogChange {
  id: number;
  relid: number;
  op: 'I' | 'D' | 'V' | 'U' | 'T' | 'P';
  /** The writing transaction (xid8 in text). */
  txid: string;
  /** When it was captured, in milliseconds since the epoch (a number: parsing a Date per change costs). */
  capturedMs: number;
  /** The row image as JSON text, exactly as captured: the new row of I and U, the old of V and D; null for T. */
  row: string | null;
  /** The json and jsonb columns that are SQL NULL in the image (to_json writes JSON null for both). */
  nulls: string[] | null;
  /** Whether `row` passes the target's row filter. */
  keep: boolean;
  /** U: the old row image, and what `nulls` and `keep` are for `row`. Null for every other op. */
  oldRow: string | null;
  oldNulls: string[] | null;
  keepOld: boolean;
  /** U: the UPDATE statement that wrote it; its rows are applied together. */
  statement: number | null;
}

/**
 * At most textBytes, read without decompressing anything: the images' stored sizes, less 4 bytes each
 * (an uncompressed image's header, which its text does not count; an image is stored compressed only
 * when that is smaller). Were it more, a change that fits could be left out unmeasured, and its chunk,
 * under its bytes, taken for the window's last.
 */
const storedBytes = `coalesce(pg_column_size(c.row) - 4, 0) + coalesce(pg_column_size(c.old_row) - 4, 0)`;

/**
 * The bytes of a change's json images as text, what a worker holds of them. json has no length function
 * that reads the size of a compressed value from its header, as text has: the cast to text decompresses.
 */
const textBytes = `coalesce(octet_length(c.row::text), 0) + coalesce(octet_length(c.old_row::text), 0)`;

/** Per-table expressions of a target's read query. */
export interface ReadTable {
  relid: number;
  /** SQL boolean over a row image (a json expression), or undefined when the target takes every row. */
  filter: ((image: string) => string) | undefined;
  /** Columns renamed since images of the table were captured: read under their current names. */
  renamed?: Renames;
}

/**
 * The txids of part A: `from`'s xip list and every xid from its xmax up to its next xid (none, for a
 * tick taken by takeTick, whose xid is below its snapshot's xmax). A parameter of the read, not a
 * subquery in it: the planner then sees the txids, and walks the txid index for them rather than the
 * whole log below `from`'s id bound by id, as it did for a subquery's unknown array when the log held
 * more than the window (a lagging target holds it): 520k changes read to find none, 200 ms a window.
 */
export function txidsOfA(from: Position['from']): string[] {
  const { xmax, xip } = parseSnapshot(from.snapshot);
  const txids = [...xip].map(String);
  for (let x = xmax; x < BigInt(from.nextXid); x++) txids.push(String(x));
  return txids;
}

/**
 * The read query of one target: parameters $1 from snapshot, $2 from id bound, $3 the txids of part A
 * (txidsOfA), $4 to snapshot, $5 to id ceiling, $6 applied id, $7 most changes, $8 most bytes
 * (ChunkLimits).
 *
 * A change is taken while the changes before it in the chunk hold fewer than $8 bytes, so the first is
 * always taken, however large. A change's bytes are those of its images as text (textBytes), what the
 * worker will hold of it. Measuring a compressed image decompresses it, so a change is measured only
 * while the stored bytes of those before it (never more than their bytes as text) are under $8; and the
 * reader asks for about as many changes as it expects to take (src/apply/log-reader.ts).
 */
export function windowQuery(schema: string, tables: ReadTable[]): string {
  const relids = tables.map((t) => t.relid);
  const image = (column: string) => underCurrentNames(schema, tables, column, 'image');
  const names = (column: string) => underCurrentNames(schema, tables, column, 'names');
  const keepOf = (image: string): string => {
    const cases = tables
      .filter((t) => t.filter !== undefined)
      .map((t) => `when ${t.relid} then coalesce((${t.filter!(image)}), false)`)
      .join(' ');
    // No filter: NULL, which reads as kept and costs the reader no value to parse per change.
    return cases === ''
      ? 'null::boolean'
      : `case when c.op in ('I', 'U', 'V', 'D') and ${image} is not null
              then case c.relid ${cases} else true end else true end`;
  };
  // The next $7 changes by id, each with its bytes as text unless its stored bytes, and those of the
  // changes before it, leave it out; then those that the bytes before them let in.
  const before = (bytes: string): string =>
    `sum(${bytes}) over (order by c.id rows unbounded preceding) - (${bytes})`;
  return `
    select c.id::text || ' ' || c.relid::int8::text || ' ' || coalesce(c.bytes, 0)::text || ' '
             || (date_part('epoch', c.captured_at) * 1000)::text || ' ' || c.op::text || ' ' || c.txid::text as meta,
           ${image('c.row')}::text as row, ${names('c.nulls')} as nulls,
           ${keepOf(image('c.row'))} as keep, ${image('c.old_row')}::text as old_row, ${names('c.old_nulls')} as old_nulls,
           ${keepOf(image('c.old_row'))} as keep_old,
           c.statement
      from (
        select c.*, ${before('c.bytes')} as before
          from (
            select c.*, case when ${before(storedBytes)} < $8 then ${textBytes} end as bytes
              from ${windowChangesSql(schema, relids, windowParameters)} c
             order by c.id
             limit $7
          ) c
      ) c
     where c.before < $8
     order by c.id`;
}

/**
 * The change of a window's row; its bytes (the image's text, measured by the source) are added to
 * `read.bytes`. The scalars' text is `id relid bytes capturedMs op txid`.
 */
export function changeOf(
  [meta, row, nulls, keep, oldRow, oldNulls, keepOld, statement]: WindowRow,
  read: { bytes: number },
): LogChange {
  let at = 0;
  let id = 0;
  for (let c = meta.charCodeAt(at); c !== 32; c = meta.charCodeAt(++at)) id = id * 10 + c - 48;
  let relid = 0;
  for (let c = meta.charCodeAt(++at); c !== 32; c = meta.charCodeAt(++at)) relid = relid * 10 + c - 48;
  let bytes = 0;
  for (let c = meta.charCodeAt(++at); c !== 32; c = meta.charCodeAt(++at)) bytes = bytes * 10 + c - 48;
  read.bytes += bytes;
  const msEnd = meta.indexOf(' ', ++at);
  return {
    id,
    relid,
    op: meta[msEnd + 1] as LogChange['op'],
    txid: meta.slice(msEnd + 3),
    capturedMs: Number(meta.slice(at, msEnd)),
    row,
    nulls,
    // No row filter: NULL (windowQuery).
    keep: keep !== false,
    oldRow,
    oldNulls,
    keepOld: keepOld !== false,
    statement: statement === null ? null : Number(statement),
  };
}

/** The most a chunk holds: changes, and bytes (the change that reaches the bound is its last). */
export interface ChunkLimits {
  changes: number;
  bytes: number;
}

/** The next changes of a window, in id order. */
export interface Chunk {
  changes: LogChange[];
  /** The bytes of their images as text. */
  bytes: number;
  /** It reached one of its limits: the window may go on past it. Otherwise the window ends with it. */
  full: boolean;
}

/** The parameters of the read query (windowQuery) for the open window at `position`. */
export function windowValues(position: Position, limits: ChunkLimits): unknown[] {
  const to = position.to;
  if (to === undefined) throw new Error('readWindow: no open window');
  return [
    position.from.snapshot,
    position.from.idBound,
    txidsOfA(position.from),
    to.snapshot,
    to.idCeiling,
    position.appliedId,
    limits.changes,
    limits.bytes,
  ];
}

/**
 * A row of the window's query (windowQuery), as an array in its select list's order. The change's
 * scalars come as one text, `id relid bytes capturedMs op txid` (changeOf): the daemon's one thread
 * parses every change of a bulk apply, and each column is a string to decode and a value to parse.
 */
export type WindowRow = [
  meta: string,
  row: string | null,
  nulls: string[] | null,
  keep: boolean | null,
  oldRow: string | null,
  oldNulls: string[] | null,
  keepOld: boolean | null,
  statement: string | null,
];

/** Read the next chunk of the open window. */
export async function readWindow(
  client: pg.ClientBase,
  query: string,
  position: Position,
  limits: ChunkLimits,
): Promise<Chunk> {
  // Rows as arrays, in the select list's order: an object per row keyed by column name first was a
  // third more to make.
  const result = await client.query<WindowRow>({
    text: query,
    rowMode: 'array',
    values: windowValues(position, limits),
  });
  const changes: LogChange[] = new Array<LogChange>(result.rows.length);
  const read = { bytes: 0 };
  for (let i = 0; i < result.rows.length; i++) changes[i] = changeOf(result.rows[i]!, read);
  const { bytes } = read;
  // A change left out by the bytes follows changes of at least `limits.bytes`.
  return { changes, bytes, full: changes.length >= limits.changes || bytes >= limits.bytes };
}
