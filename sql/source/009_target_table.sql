-- Which captured tables each target takes, as of the last install (src/capture/table-set.ts). A worker
-- reads only its target's tables, so its position moves past the changes of a table the target does not
-- take: a target that takes a table again after that, or takes one first after it was registered, lacks
-- rows or changes of it that only a copy brings (`trigsync sync TARGET --table T`).
create table {{schema}}.target_table (
  target text not null references {{schema}}.target (name) on delete cascade,
  relid oid not null,
  -- Null while the target takes the table; once it does not, the target's position at that install.
  left_from pg_snapshot,
  left_applied_id bigint,
  -- Since when the target may lack rows or changes of the table; cleared once a copy of it is done.
  needs_sync_since timestamptz,
  primary key (target, relid)
);
