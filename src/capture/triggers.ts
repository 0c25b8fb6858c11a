/**
 * The capture triggers on one table: statement-level, with transition tables, one per event. A
 * partitioned table has them on itself (statements that name it) and on each partition (statements that
 * name the partition), all logging the partitioned table's changes. A table that inherits or is
 * inherited from captures UPDATE and DELETE by row instead (sql/source/017), each row as the table it
 * is in.
 */
import type pg from 'pg';

import {
  formatIdentifier,
  formatQualifiedName,
  ident,
  qualifiedIdent,
  sqlLiteral,
} from '../config/identifiers.js';
import type { QualifiedName } from '../config/types.js';
import { onUsersTable } from '../db/giving-way.js';
import { ConfigError } from '../failure/errors.js';

const events = ['insert', 'update', 'delete', 'truncate'] as const;
type CaptureEvent = (typeof events)[number];

const referencing: Record<CaptureEvent, string> = {
  insert: 'referencing new table as new_rows',
  update: 'referencing old table as old_rows new table as new_rows',
  delete: 'referencing old table as old_rows',
  truncate: '',
};

/**
 * Whether this session's role may alter (and so drop, or make fire ALWAYS) the triggers of table `c` of
 * pg_class: it owns the table, or is a member of the role that does. SQL, over the alias `c`.
 */
export const ownsTable = `pg_has_role(c.relowner, 'USAGE')`;

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

/**
 * What a table's capture writes: under which table, and how its rows become images. Columns go by their
 * attnum in the logged table (a partition's columns are its partitioned table's, under the same names):
 * capture names them as they are called at each write (sql/source/020), so that a column renamed or
 * dropped since the triggers were made never fails the writer's statement.
 */
export interface CaptureImage {
  /** The captured table's oid: a partition's changes are logged as its partitioned table's. */
  loggedRelid: number;
  /** The columns to write through their own text output (to_json would cast them to json). */
  textColumns: readonly number[];
  /** All columns: the select list names them when some are written as text. */
  columns: readonly number[];
  /** json and jsonb columns: their SQL NULL and JSON null look alike in an image, so they are noted. */
  jsonColumns: readonly number[];
  /** The table inherits or is inherited from (TableInfo.inherits): UPDATE and DELETE are captured by row. */
  byRow: boolean;
}

/** One capture trigger as it should be on a table. */
interface TriggerSpec {
  name: string;
  /** The trigger function, schema-qualified. */
  function: string;
  /** CREATE TRIGGER's text after the name, up to EXECUTE FUNCTION, for the table `on`. */
  definition: (on: string) => string;
}

/** The capture triggers of a table whose rows are written as `image`. */
function triggerSpecs(schema: string, image: CaptureImage): TriggerSpec[] {
  const statementFunction = captureFunction(schema, image);
  return events.map((event): TriggerSpec => {
    const byRow = image.byRow && (event === 'update' || event === 'delete');
    return {
      name: triggerName(schema, event),
      function: byRow ? `${ident(schema)}.capture_row` : statementFunction,
      definition: (on) =>
        byRow
          ? `after ${event} on ${on} for each row`
          : `after ${event} on ${on} ${referencing[event]} for each statement`,
    };
  });
}

/** pg_trigger.tgargs: the arguments, each followed by a NUL byte. */
function triggerArgsBytes(args: readonly string[]): Buffer {
  return Buffer.concat(args.map((a) => Buffer.from(`${a}\0`, 'utf8')));
}

/**
 * Whether every table of `tables` and each of its partitions has its capture triggers, made for `image`
 * as it is now (columns added since, a partition attached since, an inheritance begun or ended since:
 * not), and firing ALWAYS, or on origin where trigsync's role may not alter the table (ensureCaptureTriggers).
 */
export async function captureIsCurrent(
  client: pg.ClientBase,
  schema: string,
  applicationName: string,
  tables: readonly { relid: number; image: CaptureImage }[],
): Promise<boolean> {
  const expected = tables.flatMap((t) => {
    const args = triggerArgsBytes(captureArgs(applicationName, t.image));
    return triggerSpecs(schema, t.image).map((spec) => ({ root: t.relid, spec, args }));
  });
  const result = await client.query<{ current: boolean }>(
    `with expected as (select * from unnest($1::oid[], $2::text[], $3::text[], $4::bytea[])
                                  as e(root, name, function, args)),
          tables as (select distinct e.root, t.relid
                       from expected e
                       cross join lateral (select e.root as relid
                                           union all
                                           select p.relid from pg_partition_tree(e.root) p
                                            where p.relid <> e.root) t)
     select not exists (select from tables t join expected e on e.root = t.root
                                           join pg_class c on c.oid = t.relid
                         where not exists (select from pg_trigger g
                                            where g.tgrelid = t.relid and g.tgname = e.name
                                              and g.tgargs = e.args and g.tgfoid = e.function::regproc
                                              and (g.tgenabled = 'A' or g.tgenabled = 'O'
                                                   and not ${ownsTable})))
              as current`,
    [
      expected.map((e) => e.root),
      expected.map((e) => e.spec.name),
      expected.map((e) => e.spec.function),
      expected.map((e) => e.args),
    ],
  );
  return result.rows[0]?.current === true;
}

/**
 * The trigger function: capture_rows() (sql/source/014) where the images are whole rows without json
 * columns, as most are; capture() for the rest.
 */
function captureFunction(schema: string, image: CaptureImage): string {
  const name = image.textColumns.length === 0 && image.jsonColumns.length === 0 ? 'capture_rows' : 'capture';
  return `${ident(schema)}.${name}`;
}

/**
 * The trigger arguments of capture() and capture_row(): the application name, '', the logged table and
 * then, where some columns need naming, the attnums of all columns, of those written as text and of the
 * json ones (sql/source/020), or '' where none do (capture_rows() reads the first three alone).
 */
function captureArgs(applicationName: string, image: CaptureImage): string[] {
  const args = [applicationName, '', String(image.loggedRelid)];
  if (image.textColumns.length === 0 && image.jsonColumns.length === 0) return [...args, ''];
  return [
    ...args,
    attnumArray(image.columns),
    attnumArray(image.textColumns),
    attnumArray(image.jsonColumns),
  ];
}

/** An int2[] literal. */
function attnumArray(attnums: readonly number[]): string {
  return `{${attnums.join(',')}}`;
}

/** What a table's capture triggers were found as, and what was done about them. */
export interface TriggersEnsured {
  /** A trigger was made, made anew or set to fire ALWAYS. */
  changed: boolean;
  /** The triggers found to have stopped the table's capture (a capture gap): captureGapWhy says it. */
  stopped: StoppedTrigger[];
}

/** A capture trigger found otherwise than trigsync left it, which stopped capture meanwhile. */
export interface StoppedTrigger {
  trigger: string;
  /** The table it is on (a partition's, for a partition). */
  table: string;
  how: string;
}

/** What the table's capture was known as before: what a trigger found otherwise means. */
export interface CaptureBefore {
  /** Its triggers were made before: one missing was dropped. */
  made: boolean;
  /** They fired ALWAYS (sql/source/018): one firing on origin only was disabled and enabled again. */
  always: boolean;
}

/**
 * Make the four triggers where they are missing or were made otherwise (other arguments, another
 * function), and make each fire ALWAYS where trigsync's role may alter the table: an ordinary trigger
 * does not fire in a session with session_replication_role = replica. A trigger found disabled, set to
 * fire in replica mode only, dropped, or firing on origin only after it fired ALWAYS, is named in
 * `stopped`: writes of the table were not captured meanwhile (sql/source/018). Runs in the caller's
 * transaction; a disabled trigger that trigsync's role may not enable is a ConfigError naming the
 * owner's statement.
 */
export async function ensureCaptureTriggers(
  client: pg.ClientBase,
  schema: string,
  applicationName: string,
  relid: number,
  table: QualifiedName,
  image: CaptureImage,
  before: CaptureBefore,
): Promise<TriggersEnsured> {
  const args = captureArgs(applicationName, image);
  const specs = triggerSpecs(schema, image);
  const existing = await client.query<{
    name: string;
    there: boolean;
    current: boolean;
    fires: string | null;
    owner: boolean;
  }>(
    `select e.name, g.tgname is not null as there,
            coalesce(g.tgargs = $3::bytea and g.tgfoid = e.function::regproc, false) as current,
            g.tgenabled as fires, ${ownsTable} as owner
       from unnest($2::text[], $4::text[]) as e(name, function)
       join pg_class c on c.oid = $1::oid
       left join pg_trigger g on g.tgrelid = $1::oid and g.tgname = e.name`,
    [relid, specs.map((s) => s.name), triggerArgsBytes(args), specs.map((s) => s.function)],
  );
  const state = new Map(existing.rows.map((r) => [r.name, r]));
  const owner = existing.rows[0]?.owner === true;
  const on = qualifiedIdent(table);
  const display = formatQualifiedName(table);
  const statements: string[] = [];
  const stopped: StoppedTrigger[] = [];
  const fireAlways = (name: string) => `alter table ${on} enable always trigger ${ident(name)}`;
  for (const spec of specs) {
    const there = state.get(spec.name);
    const stop = there?.there === true ? stoppedBy(there.fires, before) : before.made ? 'dropped' : undefined;
    if (stop !== undefined) stopped.push({ trigger: spec.name, table: display, how: stop });
    if (there?.current === true) {
      if (owner && there.fires !== 'A') statements.push(fireAlways(spec.name));
      // Firing on origin is the most a role that may not alter the table can have.
      else if (!owner && there.fires !== 'O' && there.fires !== 'A')
        throw new ConfigError(
          `capture trigger ${spec.name} on ${display} is ${stop}, and trigsync's role does not own the ` +
            `table: as its owner run \`alter table ${display} enable always trigger ${formatIdentifier(spec.name)}\`, ` +
            `then copy the table to each target (\`trigsync sync TARGET --table ${display}\`): what was ` +
            `written meanwhile was not captured`,
        );
      continue;
    }
    // Only a trigger that is there is dropped: DROP TRIGGER, even IF EXISTS, locks out the table's readers.
    if (there?.there === true) statements.push(`drop trigger ${ident(spec.name)} on ${on}`);
    statements.push(
      `create trigger ${ident(spec.name)} ${spec.definition(on)}
         execute function ${spec.function}(${args.map(sqlLiteral).join(', ')})`,
    );
    if (owner) statements.push(fireAlways(spec.name));
  }
  if (statements.length > 0) await onUsersTable(client, display, statements);
  return { changed: statements.length > 0, stopped };
}

/**
 * What to say of tables whose capture fires on origin only, trigsync's role not owning them: what it
 * misses, and what their owner may run once.
 */
export function originOnlyAdvice(schema: string, tables: readonly string[]): string {
  const always = events
    .map((e) => `enable always trigger ${formatIdentifier(triggerName(schema, e))}`)
    .join(', ');
  return (
    `trigsync's role does not own ${tables.join(', ')}: their capture fires on origin only, so writes ` +
    `made under session_replication_role = replica are not captured, and a capture disabled and enabled ` +
    `again goes unnoticed. Make the role their owner, or as their owner run \`alter table T ${always}\` ` +
    `for each (and each partition), once`
  );
}

/**
 * Of `tables`, those whose capture fires on origin only, or will once installed: trigsync's role does
 * not own them, and their owner has not made all four capture triggers fire ALWAYS. Display names.
 */
export async function originOnlyTables(
  client: pg.ClientBase,
  schema: string,
  tables: readonly QualifiedName[],
): Promise<string[]> {
  const result = await client.query<{ name: string }>(
    `select format('%I.%I', n.nspname, c.relname) as name
       from unnest($1::text[], $2::text[]) with ordinality as t(schema_name, table_name, i)
       join pg_namespace n on n.nspname = t.schema_name
       join pg_class c on c.relnamespace = n.oid and c.relname = t.table_name
      where not ${ownsTable}
        and exists (select from unnest($3::text[]) e(name)
                     where not exists (select from pg_trigger g
                                        where g.tgrelid = c.oid and g.tgname = e.name and g.tgenabled = 'A'))
      order by t.i`,
    [tables.map((t) => t.schema), tables.map((t) => t.name), events.map((e) => triggerName(schema, e))],
  );
  return result.rows.map((r) => r.name);
}

/** What stopped a table's capture, in a few words: the triggers, by table and what was done to them. */
export function captureGapWhy(stopped: readonly StoppedTrigger[]): string {
  const groups = new Map<string, { table: string; how: string; triggers: string[] }>();
  for (const { trigger, table, how } of stopped) {
    const key = JSON.stringify([table, how]);
    const group = groups.get(key) ?? { table, how, triggers: [] };
    group.triggers.push(trigger);
    groups.set(key, group);
  }
  const parts = [...groups.values()].map(
    ({ table, how, triggers }) =>
      `capture trigger${triggers.length > 1 ? 's' : ''} ${triggers.join(', ')} on ${table} ${how}`,
  );
  return `its capture was off: ${parts.join('; ')}`;
}

/** What a capture trigger's pg_trigger.tgenabled says stopped capture; undefined: nothing did. */
function stoppedBy(fires: string | null, before: CaptureBefore): string | undefined {
  if (fires === 'D') return 'disabled';
  if (fires === 'R') return 'set to fire in replica mode only';
  if (fires === 'O' && before.always) return 'set back to fire on origin only (disabled and enabled again)';
  return undefined;
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
