/**
 * Reading the change log by transaction visibility (the PgQ technique), never by id or time alone:
 * a transaction that commits late would otherwise be skipped.
 *
 * A tick is a snapshot of the source plus two id bounds read around it: `idBound` before the snapshot
 * (every change written after the snapshot has a larger id; the sequence has no cache) and `idCeiling`
 * after it (every change visible in the snapshot has an id at most this).
 *
 * A target's position is a window between two ticks. Everything visible in `from` is applied. The window
 * holds the changes visible in `to` and not in `from`; they are applied in id order, in chunks, and
 * `appliedId` is the last one applied. Within a window, id order is each row's commit order, because a
 * writer takes the row lock before its capture trigger draws an id. The window's changes are:
 *   A. those of the transactions in progress at `from` (its xip list) written at or before from.idBound:
 *      point lookups by txid, however old a long transaction is;
 *   B. those with from.idBound < id <= to.idCeiling, visible in `to` and not in `from`: a short range scan.
 * A's ids are all below B's, so "A then B, each by id" is id order.
 */
import type pg from 'pg';

import { ident } from '../config/identifiers.js';

export interface Tick {
  /** pg_snapshot in text form, `xmin:xmax:xip,...`. */
  snapshot: string;
  idBound: number;
  idCeiling: number;
}

export interface Position {
  from: { snapshot: string; idBound: number };
  /** The open window's end; undefined between windows. */
  to: Tick | undefined;
  /** Within the open window, the last change applied (0: none yet). */
  appliedId: number;
}

/** Take a tick: the id bound, then the snapshot, then the id ceiling, as three statements in that order. */
export async function takeTick(client: pg.ClientBase, schema: string): Promise<Tick> {
  const lastId = `select case when is_called then last_value else last_value - 1 end as id
                    from ${ident(schema)}.change_log_id_seq`;
  const bound = await client.query<{ id: number }>(lastId);
  const snapshot = await client.query<{ snapshot: string }>('select pg_current_snapshot()::text as snapshot');
  const ceiling = await client.query<{ id: number }>(lastId);
  return {
    snapshot: snapshot.rows[0]!.snapshot,
    idBound: bound.rows[0]!.id,
    idCeiling: ceiling.rows[0]!.id,
  };
}

/** The position of a target that starts following now. */
export function positionAt(tick: Tick): Position {
  return { from: { snapshot: tick.snapshot, idBound: tick.idBound }, to: undefined, appliedId: 0 };
}

/** Open a window up to `tick`; a position whose window is open keeps it. */
export function openWindow(position: Position, tick: Tick): Position {
  return position.to === undefined ? { ...position, to: tick, appliedId: 0 } : position;
}

/** The window is done: its end becomes the new start. */
export function closeWindow(position: Position): Position {
  if (position.to === undefined) return position;
  return {
    from: { snapshot: position.to.snapshot, idBound: position.to.idBound },
    to: undefined,
    appliedId: 0,
  };
}

/** Positions as stored in the `target` (source) and `applied_position` (target) tables. */
export interface StoredPosition {
  from_snapshot: string;
  from_id_bound: number;
  to_snapshot: string | null;
  to_id_bound: number | null;
  to_id_ceiling: number | null;
  applied_id: number;
}

export function toStored(p: Position): StoredPosition {
  return {
    from_snapshot: p.from.snapshot,
    from_id_bound: p.from.idBound,
    to_snapshot: p.to?.snapshot ?? null,
    to_id_bound: p.to?.idBound ?? null,
    to_id_ceiling: p.to?.idCeiling ?? null,
    applied_id: p.appliedId,
  };
}

export function fromStored(s: StoredPosition): Position {
  const to =
    s.to_snapshot === null || s.to_id_bound === null || s.to_id_ceiling === null
      ? undefined
      : { snapshot: s.to_snapshot, idBound: Number(s.to_id_bound), idCeiling: Number(s.to_id_ceiling) };
  return {
    from: { snapshot: s.from_snapshot, idBound: Number(s.from_id_bound) },
    to,
    appliedId: to === undefined ? 0 : Number(s.applied_id),
  };
}

/** One change as a worker reads it. */
export interface LogChange {
  id: number;
  relid: number;
  op: 'I' | 'D' | 'V' | 'U' | 'T';
  capturedAt: Date;
  /** The row image as JSON text, exactly as captured; null for T. */
  row: string | null;
  /** The key columns as a JSON object text (the collapse key); null for T. */
  key: string | null;
  /** For I and U: whether the new row passes the target's row filter. */
  keep: boolean;
}

/** Per-table expressions of a target's read query, over `c.row`. */
export interface ReadTable {
  relid: number;
  /** SQL giving the key object as json text, e.g. json_build_object('id', c.row->'id')::text. */
  keyExpression: string;
  /** SQL boolean over the new row, or undefined when the target takes every row. */
  filterExpression: string | undefined;
}

/**
 * The read query of one target: parameters $1 from snapshot, $2 from id bound, $3 to snapshot,
 * $4 to id ceiling, $5 applied id, $6 limit.
 */
export function windowQuery(schema: string, tables: ReadTable[]): string {
  const log = `${ident(schema)}.change_log`;
  const relids = tables.map((t) => String(t.relid)).join(', ') || 'null';
  const keyCases = tables.map((t) => `when ${t.relid} then ${t.keyExpression}`).join(' ');
  const filterCases = tables
    .filter((t) => t.filterExpression !== undefined)
    .map((t) => `when ${t.relid} then coalesce((${t.filterExpression}), false)`)
    .join(' ');
  const keep =
    filterCases === ''
      ? 'true'
      : `case when c.op in ('I', 'U') then case c.relid ${filterCases} else true end else true end`;
  return `
    select c.id, c.relid::int8 as relid, c.op, c.captured_at, c.row::text as row,
           case when c.op = 'T' then null else case c.relid ${keyCases || 'when 0 then null'} end end as key,
           ${keep} as keep
      from (
        (select * from ${log} c
          where c.txid = any (array(select pg_snapshot_xip($1::pg_snapshot)))
            and c.id <= $2 and c.id > $5
            and pg_visible_in_snapshot(c.txid, $3::pg_snapshot)
            and c.relid in (${relids})
          order by c.id limit $6)
        union all
        (select * from ${log} c
          where c.id > greatest($2, $5) and c.id <= $4
            and pg_visible_in_snapshot(c.txid, $3::pg_snapshot)
            and not pg_visible_in_snapshot(c.txid, $1::pg_snapshot)
            and c.relid in (${relids})
          order by c.id limit $6)
      ) c
     order by c.id
     limit $6`;
}

/** Read the next chunk of the open window, in id order. */
export async function readWindow(
  client: pg.ClientBase,
  query: string,
  position: Position,
  limit: number,
): Promise<LogChange[]> {
  const to = position.to;
  if (to === undefined) throw new Error('readWindow: no open window');
  const result = await client.query<{
    id: number;
    relid: number;
    op: LogChange['op'];
    captured_at: Date;
    row: string | null;
    key: string | null;
    keep: boolean;
  }>({
    text: query,
    values: [
      position.from.snapshot,
      position.from.idBound,
      to.snapshot,
      to.idCeiling,
      position.appliedId,
      limit,
    ],
  });
  return result.rows.map((r) => ({
    id: r.id,
    relid: r.relid,
    op: r.op,
    capturedAt: r.captured_at,
    row: r.row,
    key: r.key,
    keep: r.keep,
  }));
}
