-- capture_rows() writes ranges and multiranges of dates and times in ISO, whatever the writer's DateStyle.
--
-- to_json() writes a date or a timestamp in ISO under any DateStyle, but a range of them (daterange,
-- tstzrange, tsrange, datemultirange, a range type of the user's, within a composite or an array too)
-- through the range's text output, which follows the writer's DateStyle: a session under 'SQL, DMY'
-- logged '[04/03/2026,06/05/2026)', which the target's apply, reading ISO, refused (the target parked),
-- and a month and a day both 12 or under could read as each other. 019 pinned DateStyle for capture()
-- and capture_row(), which write some columns through their text; capture_rows(), which serves every
-- other table, now pins it too, for the statement's capture only, as it pins IntervalStyle and
-- extra_float_digits (014): a writer already under an ISO style, nearly every one, pays one comparison.

create or replace function {{schema}}.capture_rows() returns trigger
language plpgsql security definer as $$
declare
  styles text[];
  statement_id bigint;
begin
  if pg_catalog.current_setting('application_name') operator(pg_catalog.=) tg_argv[0] then
    return null;
  end if;
  if tg_argv[2]::pg_catalog.oid operator(pg_catalog.<>) tg_relid
     and not {{schema}}.still_partition_of(tg_relid, tg_argv[2]::pg_catalog.oid) then
    return null;
  end if;
  if pg_catalog.current_setting('intervalstyle') operator(pg_catalog.<>) 'postgres'
     or pg_catalog.current_setting('extra_float_digits')::pg_catalog.int4 operator(pg_catalog.<) 1
     or pg_catalog.left(pg_catalog.current_setting('datestyle'), 4) operator(pg_catalog.<>) 'ISO,' then
    styles := array[pg_catalog.current_setting('intervalstyle'),
                    pg_catalog.current_setting('extra_float_digits'),
                    pg_catalog.current_setting('datestyle')];
    perform pg_catalog.set_config('intervalstyle', 'postgres', true),
            pg_catalog.set_config('extra_float_digits', '1', true),
            pg_catalog.set_config('datestyle', 'ISO, YMD', true);
  end if;
  if tg_op operator(pg_catalog.=) 'INSERT' then
    insert into {{schema}}.change_log (relid, op, row)
      select tg_argv[2]::pg_catalog.oid, 'I', pg_catalog.to_json(new_image.*) from new_rows as new_image;
  elsif tg_op operator(pg_catalog.=) 'DELETE' then
    insert into {{schema}}.change_log (relid, op, row)
      select tg_argv[2]::pg_catalog.oid, 'D', pg_catalog.to_json(old_image.*) from old_rows as old_image;
  elsif tg_op operator(pg_catalog.=) 'UPDATE' then
    statement_id := pg_catalog.nextval('{{schema_in_literal}}.update_statement_seq'::pg_catalog.regclass);
    insert into {{schema}}.change_log (relid, op, statement, old_row, row)
      select tg_argv[2]::pg_catalog.oid, 'U', statement_id, o.image, n.image
        from (select pg_catalog.row_number() over () as n, pg_catalog.to_json(old_image.*) as image
                from old_rows as old_image) as o
        join (select pg_catalog.row_number() over () as n, pg_catalog.to_json(new_image.*) as image
                from new_rows as new_image) as n on o.n operator(pg_catalog.=) n.n;
  elsif tg_argv[2]::pg_catalog.oid operator(pg_catalog.=) tg_relid then
    insert into {{schema}}.change_log (relid, op, row) values (tg_relid, 'T', null);
  else
    -- A partition alone, as in capture().
    insert into {{schema}}.change_log (relid, op, row)
      values (tg_argv[2]::pg_catalog.oid, 'P',
              pg_catalog.json_build_object('where', pg_catalog.pg_get_partition_constraintdef(tg_relid)));
  end if;
  if styles is not null then
    perform pg_catalog.set_config('intervalstyle', styles[1], true),
            pg_catalog.set_config('extra_float_digits', styles[2], true),
            pg_catalog.set_config('datestyle', styles[3], true);
  end if;
  if pg_catalog.pg_sequence_last_value('{{schema_in_literal}}.doorbell'::pg_catalog.regclass) is null then
    perform {{schema}}.ring();
  end if;
  return null;
end $$;
