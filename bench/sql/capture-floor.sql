-- The floor of capture by a log row per change, for the capture benchmark only: a statement-level trigger
-- that inserts its transition table's rows, as to_json(), into a log of the change log's own columns,
-- indexes and id sequence, and does nothing else (no application_name check, no output styles, no
-- doorbell, no security definer). Whatever a trigger of trigsync's design does, it does at least this,
-- so the writers' rate under it bounds what capture_rows() can reach on the machine that runs it.
-- Placeholders as in sql/source: {{schema}}, {{schema_in_literal}}.
create table {{schema}}.bench_floor_log (like {{schema}}.change_log including defaults including indexes);

create or replace function {{schema}}.capture_floor() returns trigger
language plpgsql as $$
begin
  if tg_op = 'INSERT' then
    insert into {{schema}}.bench_floor_log (relid, op, row)
      select tg_relid, 'I', to_json(new_image.*) from new_rows as new_image;
  elsif tg_op = 'DELETE' then
    insert into {{schema}}.bench_floor_log (relid, op, row)
      select tg_relid, 'D', to_json(old_image.*) from old_rows as old_image;
  else
    insert into {{schema}}.bench_floor_log (relid, op, old_row, row)
      select tg_relid, 'U', o.image, n.image
        from (select row_number() over () as n, to_json(old_image.*) as image from old_rows as old_image) as o
        join (select row_number() over () as n, to_json(new_image.*) as image from new_rows as new_image) as n
          on o.n = n.n;
  end if;
  return null;
end $$;

revoke all on function {{schema}}.capture_floor() from public;
