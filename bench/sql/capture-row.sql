-- A row-level variant of trigsync's capture_rows() (sql/source/014_lean_capture.sql), for the capture
-- benchmark only: the same log rows, application_name check, styles and doorbell, but fired once per
-- changed row (AFTER ... FOR EACH ROW) instead of once per statement with transition tables. Like
-- capture_rows(), it has no SET clause and names what it calls by schema.
-- Placeholders as in sql/source: {{schema}}, {{schema_in_literal}}.
-- Not a drop-in replacement: an update that swaps keys within one statement logs V1 U1 V2 U2 instead of
-- V1 V2 U1 U2, and "last state per key" would then delete a swapped row on the target. Tables with json
-- or jsonb columns are left out. TRUNCATE has no row-level trigger: it stays with capture().
create or replace function {{schema}}.capture_row() returns trigger
language plpgsql security definer as $$
declare
  styles text[];
begin
  if pg_catalog.current_setting('application_name') operator(pg_catalog.=) tg_argv[0] then
    return null;
  end if;
  if tg_nargs operator(pg_catalog.<>) 1 then
    raise exception 'capture_row() is a benchmark: tables with json or jsonb columns are not supported';
  end if;
  if pg_catalog.current_setting('intervalstyle') operator(pg_catalog.<>) 'postgres'
     or pg_catalog.current_setting('extra_float_digits')::pg_catalog.int4 operator(pg_catalog.<) 1 then
    styles := array[pg_catalog.current_setting('intervalstyle'),
                    pg_catalog.current_setting('extra_float_digits')];
    perform pg_catalog.set_config('intervalstyle', 'postgres', true),
            pg_catalog.set_config('extra_float_digits', '1', true);
  end if;
  if tg_op operator(pg_catalog.=) 'INSERT' then
    insert into {{schema}}.change_log (relid, op, row) values (tg_relid, 'I', pg_catalog.to_json(new));
  elsif tg_op operator(pg_catalog.=) 'UPDATE' then
    insert into {{schema}}.change_log (relid, op, row) values (tg_relid, 'V', pg_catalog.to_json(old));
    insert into {{schema}}.change_log (relid, op, row) values (tg_relid, 'U', pg_catalog.to_json(new));
  elsif tg_op operator(pg_catalog.=) 'DELETE' then
    insert into {{schema}}.change_log (relid, op, row) values (tg_relid, 'D', pg_catalog.to_json(old));
  end if;
  if styles is not null then
    perform pg_catalog.set_config('intervalstyle', styles[1], true),
            pg_catalog.set_config('extra_float_digits', styles[2], true);
  end if;
  if pg_catalog.pg_sequence_last_value('{{schema_in_literal}}.doorbell'::pg_catalog.regclass) is null then
    perform {{schema}}.ring();
  end if;
  return null;
end $$;

revoke all on function {{schema}}.capture_row() from public;
