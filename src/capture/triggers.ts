/**
 * The capture triggers on one table: statement-level, with transition tables, one per event. A
 * partitioned table has them on itself (statements that name it) and on each partition (statements that
 * name the partition), all logging the partitioned table's changes.
 */
import type pg from 'pg';

import { formatQualifiedName, ident, qualifiedIdent, sqlLiteral } from '../config/identifiers.js';
import type { QualifiedName } from '../config/types.js';
import { onUsersTable } from '../db/giving-way.js';

const events = ['insert', 'update', 'delete', 'truncate'] as const;
type CaptureEvent = (typeof events)[number];

const referencing: Record<CaptureEvent, string> = {
  insert: 'referencing new table as new_rows',
  update: 'referencing old table as old_rows new table as new_rows',
  delete: 'referencing old table as old_rows',
  truncate: '',
};

/** Trigger names carry the schema so that two trigsync installs in one database do not collide. */
export function triggerName(schema: string, event: CaptureEvent): string {
  return objectName(`${schema}_capture_${event}`);
}

/** A name cut to the 63 bytes PostgreSQL keeps, without a broken character at the end. */
export function objectName(name: string): string {
  return Buffer.from(name)
    .subarray(0, 63)
    .toString('utf8')
    .replace(/\uFFFD+$/, '');
}

/** What a table's capture writes: under which table, and how its rows become images. */
export interface CaptureImage {
  /** The captured table's oid: a partition's changes are logged as its partitioned table's. */
  loggedRelid: number;
  /** The columns, in order, to write through their own text output (to_json would cast them to json). */
  textColumns: readonly string[];
  /** All columns in order: the select list names them when some are written as text. */
  columns: readonly string[];
  /** json and jsonb columns: their SQL NULL and JSON null look alike in an image, so they are noted. */
  jsonColumns: readonly string[];
}

/** pg_trigger.tgargs: the arguments, each followed by a NUL byte. */
function triggerArgsBytes(args: readonly string[]): Buffer {
  return Buffer.concat(args.map((a) => Buffer.from(`${a}\0`, 'utf8')));
}

/**
 * Whether every table of `tables` and each of its partitions has its four capture triggers, made for
 * `image` as it is now (columns added since, a partition attached since: not).
 */
export async function captureIsCurrent(
  client: pg.ClientBase,
  schema: string,
  applicationName: string,
  tables: readonly { relid: number; image: CaptureImage }[],
): Promise<boolean> {
  const result = await client.query<{ current: number }>(
    `select (select count(*)::int4 from pg_trigger g
              where g.tgrelid = t.relid and g.tgname = any($2::text[]) and g.tgargs = c.args
                and g.tgfoid = c.function::regproc) as current
       from unnest($1::oid[], $3::bytea[], $4::text[]) as c(root, args, function)
       cross join lateral (select c.root as relid
                           union all
                           select p.relid from pg_partition_tree(c.root) p where p.relid <> c.root) t`,
    [
      tables.map((t) => t.relid),
      events.map((e) => triggerName(schema, e)),
      tables.map((t) => triggerArgsBytes(captureArgs(applicationName, t.image))),
      tables.map((t) => captureFunction(schema, t.image)),
    ],
  );
  return result.rows.every((r) => r.current === events.length);
}

/**
 * The trigger function: capture_rows() (sql/source/014) where the images are whole rows without json
 * columns, as most are; capture() for the rest.
 */
function captureFunction(schema: string, image: CaptureImage): string {
  const name = image.textColumns.length === 0 && image.jsonColumns.length === 0 ? 'capture_rows' : 'capture';
  return `${ident(schema)}.${name}`;
}

/** The trigger arguments of sql/source/007's capture(), which capture_rows() takes too. */
function captureArgs(applicationName: string, image: CaptureImage): string[] {
  const text = new Set(image.textColumns);
  const selectList =
    text.size === 0
      ? ''
      : image.columns
          .map((c) => (text.has(c) ? `image.${ident(c)}::text as ${ident(c)}` : `image.${ident(c)}`))
          .join(', ');
  return [applicationName, '', String(image.loggedRelid), selectList, ...image.jsonColumns];
}

/**
 * Create the four triggers where they are missing or were made with other arguments.
 * Returns whether anything changed. Runs in the caller's transaction.
 */
export async function ensureCaptureTriggers(
  client: pg.ClientBase,
  schema: string,
  applicationName: string,
  relid: number,
  table: QualifiedName,
  image: CaptureImage,
): Promise<boolean> {
  const names = events.map((e) => triggerName(schema, e));
  const args = captureArgs(applicationName, image);
  const expected = triggerArgsBytes(args);
  const fn = captureFunction(schema, image);
  const existing = await client.query<{ tgname: string; current: boolean }>(
    `select tgname, tgargs = $3::bytea and tgfoid = $4::regproc as current
       from pg_trigger where tgrelid = $1::oid and tgname = any($2::text[])`,
    [relid, names, expected, fn],
  );
  const found = new Map(existing.rows.map((r) => [r.tgname, r.current]));
  const statements: string[] = [];
  for (const event of events) {
    const name = triggerName(schema, event);
    if (found.get(name) === true) continue;
    // Only a trigger that is there is dropped: DROP TRIGGER, even IF EXISTS, locks out the table's readers.
    if (found.has(name)) statements.push(`drop trigger ${ident(name)} on ${qualifiedIdent(table)}`);
    statements.push(
      `create trigger ${ident(name)} after ${event} on ${qualifiedIdent(table)} ${referencing[event]}
         for each statement execute function ${fn}(${args.map(sqlLiteral).join(', ')})`,
    );
  }
  if (statements.length === 0) return false;
  await onUsersTable(client, formatQualifiedName(table), statements);
  return true;
}

/** The partitions of a partitioned table, at every level, as they are now. */
export async function partitionsOf(
  client: pg.ClientBase,
  relid: number,
): Promise<{ relid: number; name: QualifiedName }[]> {
  const result = await client.query<{ relid: string; schema: string; name: string }>(
    `select c.oid::int8 as relid, n.nspname as schema, c.relname as name
       from pg_partition_tree($1::oid) p
       join pg_class c on c.oid = p.relid join pg_namespace n on n.oid = c.relnamespace
      where p.relid <> $1::oid order by p.level, c.relname`,
    [relid],
  );
  return result.rows.map((r) => ({ relid: Number(r.relid), name: { schema: r.schema, name: r.name } }));
}

/** Drop the capture triggers of a table and its partitions, if the table still exists. */
export async function dropCaptureTriggers(
  client: pg.ClientBase,
  schema: string,
  relid: number,
): Promise<void> {
  // Only triggers that are there: DROP TRIGGER, even IF EXISTS, locks out the table's readers.
  const found = await client.query<{ display: string; statement: string }>(
    `select format('%I.%I', n.nspname, c.relname) as display,
            format('drop trigger %I on %I.%I', g.tgname, n.nspname, c.relname) as statement
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
       join pg_trigger g on g.tgrelid = c.oid and g.tgname = any($2::text[])
      -- pg_partition_tree() of a table that is not partitioned is empty.
      where c.oid = $1::oid or c.oid in (select relid from pg_partition_tree($1::oid))
      order by c.oid <> $1::oid, c.relname, g.tgname`,
    [relid, events.map((e) => triggerName(schema, e))],
  );
  const byTable = new Map<string, string[]>();
  for (const { display, statement } of found.rows)
    byTable.set(display, [...(byTable.get(display) ?? []), statement]);
  for (const [display, statements] of byTable) await onUsersTable(client, display, statements);
}
