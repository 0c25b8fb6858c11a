-- Capture that costs a writer less (issue #20). A single-row write paid for some twenty plpgsql
-- statements of argument parsing and branching around its one INSERT into the log (each is set up afresh
-- in every transaction that runs it), and for three settings saved, set and restored at every call.
-- - capture_rows(), for the common shape (whole-row images, no json or jsonb column), takes a few
--   statements and no SET clause: it names everything it calls by schema, operators included, since as
--   a security definer function it runs under its caller's search_path. It pins the two output styles
--   to_json() depends on only when the writer's differ. capture() keeps the other shapes.
-- - The doorbell is one sequence. The daemon arms it with setval(.., 1, false), after which
--   pg_sequence_last_value() reads NULL; of the writers that find it so, the one whose nextval() draws 1
--   rings. An unarmed doorbell costs a writer one read of one sequence, where it was two.
create sequence {{schema}}.doorbell as bigint;
select nextval('{{schema_in_literal}}.doorbell');

-- The doorbell, once a writer found it armed. No ring where transactions can be prepared: PostgreSQL
-- refuses to PREPARE a transaction that has executed NOTIFY, and capture must never fail a writer's
-- transaction. There the listener finds new changes by the change log's id sequence instead
-- (src/daemon/listener.ts), and does not arm the doorbell. Of the writers that found it armed, the one that
-- draws 1 rings.
create function {{schema}}.ring() returns void
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
  if current_setting('max_prepared_transactions')::int = 0 then
    if nextval('{{schema_in_literal}}.doorbell') = 1 then
      perform pg_notify({{channel}}, '');
    end if;
  end if;
end $$;
revoke all on function {{schema}}.ring() from public;

-- 007's, with the new doorbell. Its arguments are 007's; triggers of 001 (the json columns right after
-- tg_argv[0]) and of 007 with whole-row images take the dynamic path until install makes them anew.
create or replace function {{schema}}.capture() returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp set intervalstyle = postgres set extra_float_digits = 1 as $$
declare
  logged oid;
  select_list text;
  json_from int;
  null_list text;
  statement_id bigint;
  old_images text;
  new_images text;
begin
  if current_setting('application_name') = tg_argv[0] then return null; end if;
  logged := tg_relid;
  json_from := 1;
  null_list := 'null::text[]';
  if tg_nargs >= 4 and tg_argv[1] = '' then
    logged := tg_argv[2]::oid;
    select_list := nullif(tg_argv[3], '');
    json_from := 4;
  end if;
  if tg_op = 'UPDATE' then
    statement_id := nextval('{{schema_in_literal}}.update_statement_seq');
  end if;
  -- The FROM item `image` over each transition table: the table itself, or its rows through the select
  -- list. (format() would read a NULL select list as an empty one.)
  if select_list is null then
    old_images := 'old_rows as image';
    new_images := 'new_rows as image';
  else
    old_images := format('(select %s from old_rows as image) as image', select_list);
    new_images := format('(select %s from new_rows as image) as image', select_list);
  end if;
  if tg_op = 'TRUNCATE' and logged = tg_relid then
    insert into {{schema}}.change_log (relid, op, row) values (logged, 'T', null);
  elsif tg_op = 'TRUNCATE' then
    -- A partition alone: its rows go, which the target finds by the partition's bounds (the target may be
    -- partitioned otherwise, or not at all). A TRUNCATE of the partitioned table fires this too, after its
    -- own: the apply side then takes the whole table's.
    insert into {{schema}}.change_log (relid, op, row)
      values (logged, 'P', json_build_object('where', pg_get_partition_constraintdef(tg_relid)));
  else
    if tg_nargs > json_from then
      -- The table has json or jsonb columns: note which are SQL NULL in each row.
      select format('array_remove(array[%s]::text[], null)',
                    string_agg(format('case when image.%I is null then %L end', c, c), ', '))
        into null_list from unnest(tg_argv[json_from:tg_nargs - 1]) as c;
    end if;
    if tg_op = 'UPDATE' then
      execute format('insert into %I.change_log (relid, op, statement, old_row, old_nulls, row, nulls)
                      select $1, ''U'', $2, o.image, o.nulls, n.image, n.nulls
                        from (select row_number() over () as n, to_json(image.*) as image, %2$s as nulls
                                from %3$s) as o
                        join (select row_number() over () as n, to_json(image.*) as image, %2$s as nulls
                                from %4$s) as n using (n)',
                     {{schema_literal}}, null_list, old_images, new_images)
        using logged, statement_id;
    else
      execute format('insert into %I.change_log (relid, op, row, nulls)
                      select $1, $2, to_json(image.*), %s from %s', {{schema_literal}}, null_list,
                     case tg_op when 'INSERT' then new_images else old_images end)
        using logged, case tg_op when 'INSERT' then 'I' else 'D' end;
    end if;
  end if;
  if pg_sequence_last_value('{{schema_in_literal}}.doorbell') is null then
    perform {{schema}}.ring();
  end if;
  return null;
end $$;

-- The trigger function of a table whose images are whole rows without json columns (src/capture/
-- triggers.ts), for all four events; its arguments are capture()'s. Styles as capture() pins them: floats
-- print alike at every extra_float_digits above 0. A writer's own styles are put back before it goes on,
-- as SET LOCAL values of the same settings.
create function {{schema}}.capture_rows() returns trigger
language plpgsql security definer as $$
declare
  styles text[];
  statement_id bigint;
begin
  if pg_catalog.current_setting('application_name') operator(pg_catalog.=) tg_argv[0] then
    return null;
  end if;
  if pg_catalog.current_setting('intervalstyle') operator(pg_catalog.<>) 'postgres'
     or pg_catalog.current_setting('extra_float_digits')::pg_catalog.int4 operator(pg_catalog.<) 1 then
    styles := array[pg_catalog.current_setting('intervalstyle'),
                    pg_catalog.current_setting('extra_float_digits')];
    perform pg_catalog.set_config('intervalstyle', 'postgres', true),
            pg_catalog.set_config('extra_float_digits', '1', true);
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
            pg_catalog.set_config('extra_float_digits', styles[2], true);
  end if;
  if pg_catalog.pg_sequence_last_value('{{schema_in_literal}}.doorbell'::pg_catalog.regclass) is null then
    perform {{schema}}.ring();
  end if;
  return null;
end $$;
revoke all on function {{schema}}.capture_rows() from public;

-- 001's doorbell goes: nothing rings it now, and a daemon of an earlier version refuses this schema.
drop sequence {{schema}}.doorbell_rings, {{schema}}.doorbell_armed;
