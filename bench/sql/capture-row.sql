-- A row-level variant of trigsync's capture() (sql/source/001_init.sql), for the capture benchmark only:
-- the same log rows, attributes, application_name check and doorbell, but fired once per changed row
-- (AFTER ... FOR EACH ROW) instead of once per statement with transition tables.
-- Placeholders as in sql/source: {{schema}}, {{schema_in_literal}}, {{channel}}.
-- Not a drop-in replacement: an update that swaps keys within one statement logs V1 U1 V2 U2 instead of
-- V1 V2 U1 U2, and "last state per key" would then delete a swapped row on the target. Tables with json
-- or jsonb columns (capture()'s dynamic branch) are left out. TRUNCATE has no row-level trigger: it
-- stays with capture().
create or replace function {{schema}}.capture_row() returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp set intervalstyle = postgres set extra_float_digits = 1 as $$
begin
  if current_setting('application_name') = tg_argv[0] then return null; end if;
  if tg_nargs <> 1 then
    raise exception 'capture_row() is a benchmark: tables with json or jsonb columns are not supported';
  end if;
  if tg_op = 'INSERT' then
    insert into {{schema}}.change_log (relid, op, row) values (tg_relid, 'I', to_json(new));
  elsif tg_op = 'UPDATE' then
    insert into {{schema}}.change_log (relid, op, row) values (tg_relid, 'V', to_json(old));
    insert into {{schema}}.change_log (relid, op, row) values (tg_relid, 'U', to_json(new));
  elsif tg_op = 'DELETE' then
    insert into {{schema}}.change_log (relid, op, row) values (tg_relid, 'D', to_json(old));
  end if;
  if pg_sequence_last_value('{{schema_in_literal}}.doorbell_rings')
     = pg_sequence_last_value('{{schema_in_literal}}.doorbell_armed') then
    if nextval('{{schema_in_literal}}.doorbell_rings')
       = pg_sequence_last_value('{{schema_in_literal}}.doorbell_armed') + 1 then
      perform pg_notify({{channel}}, '');
    end if;
  end if;
  return null;
end $$;

revoke all on function {{schema}}.capture_row() from public;
