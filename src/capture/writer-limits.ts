/**
 * Limits of the source's writers that capture makes them meet where they would not without it. A
 * statement's capture reads its rows from the statement's transition tables (sql/source/014), which
 * PostgreSQL spills to temporary files beyond work_mem: under a temp_file_limit, a statement that
 * changes more rows than the limit holds (both images of an UPDATE) fails with `temporary file size
 * exceeds "temp_file_limit"` (measured: 100,000 rows of 100 bytes under 2 MB), where the same statement
 * on a table not captured runs. Neither trigsync nor its functions may raise the limit (a superuser's
 * setting): `check` says where it is set, for the writers' roles.
 */
import type pg from 'pg';

/** Where temp_file_limit is set for the source's sessions: the server, its database, or roles. */
export async function tempFileLimits(client: pg.ClientBase): Promise<{ where: string; limit: string }[]> {
  const result = await client.query<{ where: string; limit: string }>(
    `select 'the server' as where, current_setting('temp_file_limit') as limit
       from pg_settings where name = 'temp_file_limit' and setting <> '-1'
        and source not in ('default', 'session', 'database', 'user', 'database user')
     union all
     select case when r.rolname is null then 'database ' || quote_ident(current_database())
                 when x.setdatabase = 0 then 'role ' || quote_ident(r.rolname)
                 else 'role ' || quote_ident(r.rolname) || ' in database ' || quote_ident(current_database()) end,
            substr(s.setting, length('temp_file_limit=') + 1)
       from pg_db_role_setting x
       left join pg_roles r on r.oid = x.setrole
      cross join unnest(x.setconfig) as s(setting)
      where s.setting like 'temp_file_limit=%'
        and x.setdatabase in (0, (select oid from pg_database where datname = current_database()))
        and substr(s.setting, length('temp_file_limit=') + 1) <> '-1'
      order by 1`,
  );
  return result.rows;
}

/** `check`'s warning for the limits found; none when there are none. */
export function tempFileLimitWarning(limits: readonly { where: string; limit: string }[]): string[] {
  if (limits.length === 0) return [];
  const set = limits.map((l) => `${l.limit} (${l.where})`).join(', ');
  return [
    `temp_file_limit is set: ${set}. A statement on a captured table whose changed rows (both images of ` +
      `an UPDATE) outgrow work_mem and then that limit fails, where it would run without capture; raise ` +
      `it for the writers that change many rows at once (docs/operations.md, "Limitations")`,
  ];
}
