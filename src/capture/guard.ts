/**
 * Read-only guards on a target's tables (`readOnly: true`): one statement trigger per table, before every
 * INSERT, UPDATE, DELETE and TRUNCATE, that rejects writes from anyone but trigsync (the function is
 * sql/target/002_guard.sql). The worker and `install` reconcile them with the config after planning;
 * `uninstall` removes them.
 *
 * CREATE TRIGGER needs the TRIGGER privilege on the table, DROP TRIGGER its ownership: a role with
 * TRIGGER alone can add a guard but not replace or remove it. Each refusal names the table and what
 * the table's owner can run instead.
 */
import type pg from 'pg';

import {
  formatIdentifier,
  formatQualifiedName,
  ident,
  qualifiedIdent,
  sameNames,
  sqlLiteral,
} from '../config/identifiers.js';
import type { Config, QualifiedName, TargetConfig } from '../config/types.js';
import { inTransactionGivingWay, onUsersTable } from '../db/giving-way.js';
import { ConfigError, sqlState } from '../failure/errors.js';
import { objectName, ownsTable } from './triggers.js';

/** `<schema>_guard`: the schema in the name keeps two trigsync installs in one database apart. */
export function guardTriggerName(schema: string): string {
  return objectName(`${schema}_guard`);
}

/**
 * What the guards read of a target's plan (src/apply/plan.ts, which sits above capture): the target
 * tables it takes.
 */
interface PlannedTables {
  tables: ReadonlyMap<number, { target: QualifiedName }>;
}

/** What the catalog says about the guard of one table, and what the session may do about it. */
interface GuardState {
  table: QualifiedName;
  display: string;
  /** A trigger of the guard's name exists on the table. */
  present: boolean;
  /** It runs this schema's guard function with the wanted arguments. */
  current: boolean;
  owner: boolean;
  mayTrigger: boolean;
}

/**
 * Make the guards on the target's planned tables match the config: present, with trigsync's
 * application_name and `guardRole` as arguments, exactly when `readOnly` is true. Tables that left the
 * plan keep whatever guard they have.
 */
export async function reconcileGuards(
  client: pg.ClientBase,
  config: Config,
  target: TargetConfig,
  plan: PlannedTables,
  read?: GuardsRead,
): Promise<void> {
  const tables = [...plan.tables.values()].map((t) => t.target);
  const where = `targets.${target.name}`;
  // Nearly every connect finds the guards as they should be: one read, without the lock's transaction
  // (four round trips more, a sixth of a worker's start across a slow link), and none where the caller
  // read them already for these very tables.
  const states =
    read !== undefined && sameNames(read.tables, tables)
      ? read.states
      : (await readGuards(client, config, target, tables)).states;
  const settled = target.readOnly
    ? target.guardRole === undefined && states.every((s) => s.current)
    : states.every((s) => !s.present);
  if (settled) return;
  await underGuardLock(client, config.schema, async () => {
    if (!target.readOnly) {
      await removeGuards(client, config.schema, tables, where, 'readOnly: false');
      return;
    }
    const args = [config.applicationName, target.guardRole ?? ''];
    const role = await currentRole(client);
    const problems = target.guardRole === undefined ? [] : await guardRoleProblems(client, target);
    const stale = (await guardStates(client, config.schema, tables, args)).filter((s) => !s.current);
    for (const s of stale) {
      if (!s.mayTrigger) {
        problems.push(
          `${where}: cannot guard table ${s.display} (readOnly: true): role ${formatIdentifier(role)} lacks ` +
            `the TRIGGER privilege on it; as the table's owner run: ` +
            `grant trigger on ${s.display} to ${formatIdentifier(role)}`,
        );
      } else if (s.present && !s.owner) {
        problems.push(
          `${where}: cannot replace the guard on table ${s.display}, whose arguments changed: ` +
            notOwner(config.schema, s, role) +
            ' (trigsync then creates the new one)',
        );
      }
    }
    if (problems.length > 0) throw new ConfigError(problems);
    const name = ident(guardTriggerName(config.schema));
    for (const s of stale) {
      const create = `create trigger ${name} before insert or update or delete or truncate on ${qualifiedIdent(s.table)}
        for each statement execute function ${ident(config.schema)}.guard(${args.map(sqlLiteral).join(', ')})`;
      const drop = `drop trigger ${name} on ${qualifiedIdent(s.table)}`;
      await privileged(`${where}: cannot guard table ${s.display}`, () =>
        onUsersTable(client, s.display, s.present ? [drop, create] : [create]),
      );
    }
  });
}

/**
 * Remove the guards from a target's tables, for `uninstall` while the guard function stays (another
 * source still uses this target database). Needs ownership of each guarded table. Runs in the caller's
 * transaction.
 */
export async function dropGuards(
  client: pg.ClientBase,
  schema: string,
  target: Pick<TargetConfig, 'name' | 'tables'>,
): Promise<void> {
  const tables = target.tables.map((m) => m.target);
  await removeGuards(client, schema, tables, `targets.${target.name}`, 'uninstall');
}

async function removeGuards(
  client: pg.ClientBase,
  schema: string,
  tables: readonly QualifiedName[],
  where: string,
  why: string,
): Promise<void> {
  const present = (await guardStates(client, schema, tables, undefined)).filter((s) => s.present);
  const role = await currentRole(client);
  const refusal = (s: GuardState) => `${where}: cannot remove the guard from table ${s.display} (${why})`;
  const refused = present.filter((s) => !s.owner);
  if (refused.length > 0) {
    throw new ConfigError(refused.map((s) => `${refusal(s)}: ${notOwner(schema, s, role)}`));
  }
  const name = ident(guardTriggerName(schema));
  for (const s of present) {
    await privileged(refusal(s), () =>
      onUsersTable(client, s.display, [`drop trigger ${name} on ${qualifiedIdent(s.table)}`]),
    );
  }
}

function notOwner(schema: string, s: GuardState, role: string): string {
  return (
    `DROP TRIGGER needs ownership of the table, which role ${formatIdentifier(role)} lacks; as the table's ` +
    `owner run: drop trigger ${formatIdentifier(guardTriggerName(schema))} on ${s.display}`
  );
}

/** The guards of some tables as reconcileGuards reads them first. */
export interface GuardsRead {
  tables: readonly QualifiedName[];
  states: GuardState[];
}

/**
 * The guards of `tables` as reconcileGuards reads them first, in one statement that the caller may send
 * in one round trip with others (src/db/pipeline.ts).
 */
export async function readGuards(
  client: pg.ClientBase,
  config: Config,
  target: TargetConfig,
  tables: readonly QualifiedName[],
): Promise<GuardsRead> {
  const wanted = target.readOnly ? [config.applicationName, target.guardRole ?? ''] : undefined;
  return { tables, states: await guardStates(client, config.schema, tables, wanted) };
}

/** The guard of each table that exists; `args` undefined: none is current. */
async function guardStates(
  client: pg.ClientBase,
  schema: string,
  tables: readonly QualifiedName[],
  args: readonly string[] | undefined,
): Promise<GuardState[]> {
  // pg_trigger.tgargs holds the arguments, each followed by a NUL byte.
  const expected = args === undefined ? null : Buffer.concat(args.map((a) => Buffer.from(`${a}\0`, 'utf8')));
  const result = await client.query<{
    i: number;
    present: boolean;
    current: boolean;
    owner: boolean;
    may_trigger: boolean;
  }>(
    `select n.i::int as i, t.oid is not null as present,
            coalesce(t.tgfoid = to_regprocedure($4) and t.tgargs = $5::bytea, false) as current,
            ${ownsTable} as owner, has_table_privilege(c.oid, 'TRIGGER') as may_trigger
       from unnest($1::text[], $2::text[]) with ordinality as n(schema_name, table_name, i)
       join pg_namespace s on s.nspname = n.schema_name
       join pg_class c on c.relnamespace = s.oid and c.relname = n.table_name and c.relkind in ('r', 'p')
       left join pg_trigger t on t.tgrelid = c.oid and t.tgname = $3
      order by n.i`,
    [
      tables.map((t) => t.schema),
      tables.map((t) => t.name),
      guardTriggerName(schema),
      `${ident(schema)}.guard()`,
      expected,
    ],
  );
  return result.rows.map((row) => {
    const table = tables[row.i - 1]!;
    return {
      table,
      display: formatQualifiedName(table),
      present: row.present,
      current: row.current,
      owner: row.owner,
      mayTrigger: row.may_trigger,
    };
  });
}

/** The role must exist, and trigsync must connect as it: else the guard would refuse trigsync's own writes. */
async function guardRoleProblems(client: pg.ClientBase, target: TargetConfig): Promise<string[]> {
  const role = target.guardRole!;
  const result = await client.query<{ found: boolean; session: string; current: string }>(
    `select exists (select from pg_roles where rolname = $1) as found,
            session_user::text as session, current_user::text as current`,
    [role],
  );
  const row = result.rows[0]!;
  const where = `targets.${target.name}.guardRole`;
  if (!row.found) return [`${where}: role ${formatIdentifier(role)} does not exist on target ${target.name}`];
  if (row.session === role || row.current === role) return [];
  return [
    `${where}: trigsync connects to target ${target.name} as role ${formatIdentifier(row.session)}, ` +
      `but the guard lets only role ${formatIdentifier(role)} write: connect as that role in the target's url`,
  ];
}

async function currentRole(client: pg.ClientBase): Promise<string> {
  const result = await client.query<{ role: string }>('select current_user::text as role');
  return result.rows[0]!.role;
}

/** A privilege error that the checks above did not foresee still names the table. */
async function privileged<T>(what: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (thrown) {
    if (sqlState(thrown) !== '42501') throw thrown;
    throw new ConfigError(`${what}: ${(thrown as Error).message}`, { cause: thrown });
  }
}

/**
 * One transaction, under a lock that keeps two trigsync processes from creating one guard twice; begun
 * again while it gives way to the tables' users (src/db/giving-way.ts).
 */
async function underGuardLock(
  client: pg.ClientBase,
  schema: string,
  work: () => Promise<void>,
): Promise<void> {
  await inTransactionGivingWay(client, async () => {
    await client.query('select pg_advisory_xact_lock(hashtextextended($1, 0))', [`trigsync guard ${schema}`]);
    await work();
  });
}
