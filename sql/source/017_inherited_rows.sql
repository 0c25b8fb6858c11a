-- The rows of tables that inherit (INHERITS, not partitions), each logged as the table it is in.
-- A statement-level trigger fires for the table a statement names alone, and its transition tables hold
-- the rows the statement changed in the tables that inherit from it too. An UPDATE or DELETE through a
-- parent was logged as the parent's changes (a child's row sharing a key with a row of the parent then
-- changed both on the target), and not at all where only the children are captured, as in the old way of
-- partitioning by inheritance. Such tables capture UPDATE and DELETE with row-level triggers, which fire
-- on the table each row is in (src/capture/triggers.ts); INSERT and TRUNCATE stay at statement level,
-- where they already name the table the rows are in.

-- The row-level AFTER UPDATE and AFTER DELETE trigger of a table that inherits; its arguments are
-- capture()'s (sql/source/007). Each updated row is an UPDATE statement of its own (src/apply/batch.ts
-- applies a statement's rows together), as native logical replication applies every row: in the order
-- the source changed them, one at a time, a key the rows' statement took from one is free when another
-- takes it.
create function {{schema}}.capture_row() returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp set intervalstyle = postgres set extra_float_digits = 1 as $$
declare
  select_list text := nullif(tg_argv[3], '');
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
  if select_list is null and tg_nargs <= 4 then
    -- Whole rows without json columns, as most are: no statement to plan for each row.
    old_image := to_json(old);
    if tg_op = 'UPDATE' then new_image := to_json(new); end if;
  else
    if tg_nargs > 4 then
      -- json and jsonb columns: note which are SQL NULL, as capture() does.
      select format('array_remove(array[%s]::text[], null)',
                    string_agg(format('case when image.%I is null then %L end', c, c), ', '))
        into null_list from unnest(tg_argv[4:tg_nargs - 1]) as c;
    end if;
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
revoke all on function {{schema}}.capture_row() from public;
