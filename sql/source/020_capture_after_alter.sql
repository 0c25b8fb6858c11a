-- Capture that follows what ALTER TABLE does to a captured table, at the moment it does it.
--
-- A column renamed or dropped never fails a writer. The triggers of a table
-- with columns written through their text (hstore, PostGIS types) or with json columns named those
-- columns in their arguments, and capture() and capture_row() built a statement from the names: once a
-- column was renamed or dropped, every write to the table failed ("column image.x does not exist") until
-- the daemon's capture watcher made the triggers anew, and for as long as no daemon ran. A migration that
-- renames a column and then fills it in one transaction could not commit at all.
-- Such triggers now carry attnums, which a rename keeps (src/capture/triggers.ts, captureArgs):
--   tg_argv[0] the application name, [1] '', [2] the logged table, [3] the attnums of all its columns,
--   [4] of those written as text, [5] of the json and jsonb ones, each an int2[] literal.
-- Each write names them as they are called now in the logged table (a partition's columns are its
-- partitioned table's under the same names, whatever their attnums in the partition); a column dropped
-- since is left out, as to_json() of a whole row leaves it out; a column added since is left out of a
-- select list until the triggers are made anew, as before. The layouts of 001 and 007 go on working
-- until install makes their triggers anew. capture_rows() (014) names no column.
--
-- A partition detached is captured no more. Its triggers, made while it was a partition, logged its
-- writes as the partitioned table's: rows inserted into the detached table, or deleted from it, were
-- inserted into or deleted from the partitioned table on every target. A trigger on a partition now
-- checks, at each write that names the partition, that it still is one of the table it logs under; its
-- writes are its own table's otherwise, which is not captured. The triggers stay on the detached table,
-- doing nothing, until it is attached again or dropped.

-- Whether `partition` is still in the partition tree of `logged` (at any depth: a captured table may be a
-- partition itself). pg_partition_root() answers most writes without reading pg_inherits.
create function {{schema}}.still_partition_of(partition oid, logged oid) returns boolean
language plpgsql stable as $$
begin
  -- Every name by its schema, as in capture_rows(), which runs under its caller's search_path.
  if pg_catalog.pg_partition_root(partition) operator(pg_catalog.=) logged then return true; end if;
  return exists (select from pg_catalog.pg_partition_ancestors(partition) as a
                  where a.relid operator(pg_catalog.=) logged);
end $$;
revoke all on function {{schema}}.still_partition_of(oid, oid) from public;

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

-- The select list and the json columns' NULL checks of an image of `logged`'s rows, from 020's arguments:
-- the attnums of the columns known, of those written as text, of the json ones. The select list is NULL
-- where no column is written as text (whole rows), empty where every column known went; the list of the
-- json columns that are SQL NULL in an image is NULL where no json column is left.
create function {{schema}}.image_columns(logged oid, known int2[], as_text int2[], json_columns int2[],
                                        out select_list text, out null_list text)
language plpgsql stable as $$
begin
  -- Run by capture() and capture_row(), under their search_path.
  select case when cardinality(as_text) > 0
              then coalesce(string_agg(case when a.attnum = any(as_text)
                                            then format('image.%I::text as %I', a.attname, a.attname)
                                            else format('image.%I', a.attname) end, ', ' order by a.attnum)
                              filter (where a.attnum = any(known)), '') end,
         'array_remove(array[' || string_agg(format('case when image.%I is null then %L end', a.attname, a.attname),
                                             ', ' order by a.attnum) filter (where a.attnum = any(json_columns))
           || ']::text[], null)'
    into select_list, null_list
    from pg_attribute a
   where a.attrelid = logged and a.attnum > 0 and not a.attisdropped;
end $$;
revoke all on function {{schema}}.image_columns(oid, int2[], int2[], int2[]) from public;

create or replace function {{schema}}.capture() returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp set intervalstyle = postgres set extra_float_digits = 1
set datestyle = 'ISO, YMD' as $$
declare
  logged oid;
  -- 020's layout: the select list and the json columns' NULL checks (image_columns()).
  columns record;
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
  if tg_nargs = 6 and tg_argv[1] = '' and left(tg_argv[3], 1) = '{' then
    -- 020's layout (a 007 select list starts with 'image.', a 001 json column's name is never empty).
    logged := tg_argv[2]::oid;
    json_from := tg_nargs;
    columns := {{schema}}.image_columns(logged, tg_argv[3]::int2[], tg_argv[4]::int2[], tg_argv[5]::int2[]);
    select_list := columns.select_list;
    null_list := coalesce(columns.null_list, null_list);
  elsif tg_nargs >= 4 and tg_argv[1] = '' then
    logged := tg_argv[2]::oid;
    select_list := nullif(tg_argv[3], '');
    json_from := 4;
  end if;
  if logged <> tg_relid and not {{schema}}.still_partition_of(tg_relid, logged) then
    return null;
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
      -- 001's and 007's layouts: the json columns by name.
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

-- 017's, with 020's layout beside 007's. A table that inherits is logged as itself: tg_argv[2] is the
-- table the row is in.
create or replace function {{schema}}.capture_row() returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp set intervalstyle = postgres set extra_float_digits = 1
set datestyle = 'ISO, YMD' as $$
declare
  columns record;
  select_list text;
  null_list text := 'null::text[]';
  -- The FROM item `image` over the row ($1): the row itself, or its values through the select list.
  image text;
  old_image json;
  old_nulls text[];
  new_image json;
  new_nulls text[];
  statement_id bigint;
begin
  if current_setting('application_name') = tg_argv[0] then return null; end if;
  if tg_nargs = 6 and left(tg_argv[3], 1) = '{' then
    columns := {{schema}}.image_columns(tg_argv[2]::oid, tg_argv[3]::int2[], tg_argv[4]::int2[], tg_argv[5]::int2[]);
    select_list := columns.select_list;
    null_list := coalesce(columns.null_list, null_list);
  else
    select_list := nullif(tg_argv[3], '');
    if tg_nargs > 4 then
      -- 007's layout: json and jsonb columns by name.
      select format('array_remove(array[%s]::text[], null)',
                    string_agg(format('case when image.%I is null then %L end', c, c), ', '))
        into null_list from unnest(tg_argv[4:tg_nargs - 1]) as c;
    end if;
  end if;
  if select_list is null and null_list = 'null::text[]' then
    -- Whole rows without json columns, as most are: no statement to plan for each row.
    old_image := to_json(old);
    if tg_op = 'UPDATE' then new_image := to_json(new); end if;
  else
    image := format('(select %s from (select ($1).*) as image) as image', coalesce(select_list, 'image.*'));
    execute format('select to_json(image.*), %s from %s', null_list, image) into old_image, old_nulls using old;
    if tg_op = 'UPDATE' then
      execute format('select to_json(image.*), %s from %s', null_list, image) into new_image, new_nulls using new;
    end if;
  end if;
  if tg_op = 'DELETE' then
    insert into {{schema}}.change_log (relid, op, row, nulls)
      values (tg_argv[2]::oid, 'D', old_image, old_nulls);
  else
    statement_id := nextval('{{schema_in_literal}}.update_statement_seq');
    insert into {{schema}}.change_log (relid, op, statement, old_row, old_nulls, row, nulls)
      values (tg_argv[2]::oid, 'U', statement_id, old_image, old_nulls, new_image, new_nulls);
  end if;
  if pg_sequence_last_value('{{schema_in_literal}}.doorbell') is null then
    perform {{schema}}.ring();
  end if;
  return null;
end $$;
