-- An UPDATE is logged as one change per row, holding the old image and the new one (issue #17): the two
-- halves of an update are one change in the error queue and for `skip`, and the apply side sees which
-- keys survive the update (applied as an UPDATE in place) and which change (delete + insert).
-- `statement` groups the rows of one UPDATE statement: the apply side takes every old key of a statement
-- out before it brings any new key in, as the statement itself did (`set id = id + 1` moves each key onto
-- the old key of another row). Rows logged before this migration keep op 'V' (old image) and 'U' (new
-- image, old_row null) and are applied as before.
alter table {{schema}}.change_log
  add column old_row json,
  add column old_nulls text[],
  add column statement bigint;

-- One value per UPDATE statement; a cache is fine, the values only need to differ.
create sequence {{schema}}.update_statement_seq as bigint cache 32;

-- P: a TRUNCATE of one partition of a captured partitioned table, `row` holding its bounds as SQL.
-- The capture function of 001, with UPDATE logged as pairs. Old and new transition tables hold a
-- statement's rows in the same order (PostgreSQL appends each row's old and new tuple together), so
-- their row numbers pair them; a hash join on the number keeps a bulk update linear.
--
-- Arguments: tg_argv[0] is the application_name whose writes are not captured. Triggers made from this
-- version on pass '' as tg_argv[1], then the captured table's oid (a partition's triggers log its
-- partitioned table's), then the image's select list over `image` ('' for the whole row: a column whose
-- type to_json() would write through a cast to json, such as hstore, is written through its own text
-- output instead), then the json and jsonb columns. Triggers of 001 pass the json columns right after
-- tg_argv[0]; they are read as before until install makes them anew.
create or replace function {{schema}}.capture() returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp set intervalstyle = postgres set extra_float_digits = 1 as $$
declare
  logged oid := tg_relid;
  select_list text;
  json_from int := 1;
  null_list text := 'null::text[]';
  statement_id bigint;
  old_images text;
  new_images text;
begin
  if current_setting('application_name') = tg_argv[0] then return null; end if;
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
  elsif select_list is null and tg_nargs <= json_from then
    if tg_op = 'INSERT' then
      insert into {{schema}}.change_log (relid, op, row)
        select logged, 'I', to_json(new_image.*) from new_rows as new_image;
    elsif tg_op = 'UPDATE' then
      insert into {{schema}}.change_log (relid, op, statement, old_row, row)
        select logged, 'U', statement_id, o.image, n.image
          from (select row_number() over () as n, to_json(old_image.*) as image
                  from old_rows as old_image) as o
          join (select row_number() over () as n, to_json(new_image.*) as image
                  from new_rows as new_image) as n using (n);
    elsif tg_op = 'DELETE' then
      insert into {{schema}}.change_log (relid, op, row)
        select logged, 'D', to_json(old_image.*) from old_rows as old_image;
    end if;
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
  -- pg_sequence_last_value() is a plain expression, far cheaper than a query (both sequences were
  -- called at install, so neither is NULL). No ring where transactions can be prepared: PostgreSQL
  -- refuses to PREPARE a transaction that has executed NOTIFY, and capture must never fail a writer's
  -- transaction. There the listener finds new changes by the change log's id sequence instead
  -- (src/daemon/listener.ts).
  if current_setting('max_prepared_transactions')::int = 0
     and pg_sequence_last_value('{{schema_in_literal}}.doorbell_rings')
         = pg_sequence_last_value('{{schema_in_literal}}.doorbell_armed') then
    if nextval('{{schema_in_literal}}.doorbell_rings')
       = pg_sequence_last_value('{{schema_in_literal}}.doorbell_armed') + 1 then
      perform pg_notify({{channel}}, '');
    end if;
  end if;
  return null;
end $$;
