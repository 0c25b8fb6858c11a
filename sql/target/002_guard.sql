-- trigsync on a target database: the read-only guard of targets with `readOnly: true`. One trigger per
-- target table, before each INSERT, UPDATE, DELETE and TRUNCATE statement, rejects writes from anyone
-- but trigsync (src/capture/guard.ts creates and drops the triggers).
-- tg_argv[0] is trigsync's application_name, tg_argv[1] a role name or ''. With '', a session whose
-- application_name is tg_argv[0] may write: a convention that stops mistakes, not attackers, since any
-- client can set it. With a role (`guardRole`), only a session whose session_user or current_user is
-- that role may write, whatever its application_name; session_user also lets through what trigsync's
-- own statements cause as another user (a foreign key's cascade runs as the referencing table's owner).
-- security invoker: it only looks at the writing session and needs no privilege of its own, so writers
-- need none on this schema.
create function {{schema}}.guard() returns trigger
language plpgsql security invoker
set search_path = pg_catalog, pg_temp as $$
declare
  writer text;
begin
  if tg_argv[1] = '' then
    if current_setting('application_name') = tg_argv[0] then return null; end if;
    writer := format('application_name "%s"', replace(tg_argv[0], '"', '""'));
  else
    if session_user = tg_argv[1] or current_user = tg_argv[1] then return null; end if;
    writer := format('role "%s"', replace(tg_argv[1], '"', '""'));
  end if;
  raise exception using
    errcode = 'read_only_sql_transaction',
    message = format('table %I.%I is a read-only trigsync replica: %s is accepted only from trigsync (%s)',
                     tg_table_schema, tg_table_name, tg_op, writer),
    hint = 'trigsync replicates this table from its source to a target set to readOnly: true. Write on '
           'the source instead, or set readOnly: false for the target and restart trigsync.';
end
$$;
