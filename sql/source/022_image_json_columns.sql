-- A column added to a captured table is captured whole from its first write.
--
-- The triggers of a table with columns written through their text (hstore, PostGIS types) listed, in
-- their arguments (020), the columns the table had when they were made, and which of them are json. A
-- column added since (a common migration) was left out of the image until the capture watcher made the
-- triggers anew, about 2 s later, or the daemon's next start: the values written meanwhile never reached
-- a target (an insert arrived without them). image_columns(), which capture() and capture_row() run at
-- each write, now takes every column the table has: a column unknown to the triggers is written through
-- its text (the target reads any type's text; to_json() would write an hstore or PostGIS value as an
-- object), but a json one as it is.
--
-- SQL NULL and JSON null: a row image writes both as "col": null, so capture notes which json columns are
-- SQL NULL (change_log.nulls). The json columns are now found in the catalog at each write, a column
-- added since included. capture_rows(), which serves tables without such columns, notes nothing, and
-- a json column added to its table was not noted until its triggers were made anew: its SQL NULLs
-- arrived as JSON null. The apply now reads an image without a note (nulls NULL) as holding SQL NULLs
-- (src/apply/batch.ts).
create or replace function {{schema}}.image_columns(logged oid, known int2[], as_text int2[],
                                                   json_columns int2[], out select_list text,
                                                   out null_list text)
language plpgsql stable as $$
declare
  added boolean;
begin
  -- Run by capture() and capture_row(), under their search_path. `json_columns`, the triggers' list, is
  -- what the catalog says unless a json column was added since: the catalog's is taken.
  select case when cardinality(as_text) > 0
              then string_agg(case when a.attnum = any(as_text)
                                   then format('image.%I::text as %I', a.attname, a.attname)
                                   else format('image.%I', a.attname) end, ', ' order by a.attnum) end,
         'array_remove(array[' || string_agg(format('case when image.%I is null then %L end', a.attname, a.attname),
                                             ', ' order by a.attnum)
                                  filter (where a.atttypid in ('json'::regtype, 'jsonb'::regtype))
           || ']::text[], null)',
         bool_or(not a.attnum = any(known))
    into select_list, null_list, added
    from pg_attribute a
   where a.attrelid = logged and a.attnum > 0 and not a.attisdropped;
  -- A column added since the triggers were made, in a select list: through its text, unless it is json
  -- (or a domain over json). Its type read only then: reading every column's cost a write three times
  -- the lookup.
  if added and cardinality(as_text) > 0 then
    select string_agg(case when a.attnum = any(as_text)
                             or not (a.attnum = any(known) or b.base in ('json'::regtype, 'jsonb'::regtype))
                           then format('image.%I::text as %I', a.attname, a.attname)
                           else format('image.%I', a.attname) end, ', ' order by a.attnum)
      into select_list
      from pg_attribute a
     cross join lateral (select coalesce(nullif(t.typbasetype, 0), t.oid) as base
                           from pg_type t where t.oid = a.atttypid) as b
     where a.attrelid = logged and a.attnum > 0 and not a.attisdropped;
  end if;
end $$;
