-- Changes captured before a column was renamed apply after the rename with the column's values.
--
-- A row image names its columns as they were when it was captured. A change still in the log when its
-- table's column was renamed (a backlog while a target was down or the daemon stopped, as during a
-- deploy, or the moments a live target trails) was applied by the new name, which the image lacks: its
-- value of the column arrived as NULL, or as the value the source gives older rows. trigsync now keeps
-- the names each captured table's columns have had (seen_column: recorded at every install and by the
-- capture watcher as columns come), and reads an image that holds a column's former name and not its
-- current one as holding it under its current name (renamed_image(), src/changelog/window.ts). A former
-- name that another column of the table has now is not followed: the image cannot tell whose it is.
create table {{schema}}.seen_column (
  relid oid not null,
  attnum int2 not null,
  name text not null,
  primary key (relid, attnum, name)
);

-- `image` with each field named in `former` renamed to the name at the same place in `current`, where
-- the image lacks that name; unchanged (the same value, not rebuilt) where it holds no former name.
create function {{schema}}.renamed_image(image json, former text[], current text[]) returns json
language sql immutable set search_path = pg_catalog, pg_temp as $$
  select case when image is null or not exists (select from unnest(former) f where image -> f is not null)
              then image
              else (select json_object_agg(coalesce(m.now, e.key), e.value order by e.at)
                      from json_each(image) with ordinality as e (key, value, at)
                      left join unnest(former, current) as m (was, now)
                        on m.was = e.key and image -> m.now is null) end
$$;
revoke all on function {{schema}}.renamed_image(json, text[], text[]) from public;

-- A change's note of its json columns that are SQL NULL (change_log.nulls), under the current names.
create function {{schema}}.renamed_names(names text[], former text[], current text[]) returns text[]
language sql immutable set search_path = pg_catalog, pg_temp as $$
  select case when names is null then null
              else array(select coalesce(m.now, n.name)
                           from unnest(names) with ordinality as n (name, at)
                           left join unnest(former, current) as m (was, now) on m.was = n.name
                          order by n.at) end
$$;
revoke all on function {{schema}}.renamed_names(text[], text[], text[]) from public;
