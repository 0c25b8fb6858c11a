-- A conflict parks a target on its key's first change in the batch; the key's later changes there
-- (an UPDATE logs its old row and its new row apart) conflict alike. Skipping the entry skips them too,
-- so that one skip keeps the target's row as it is.
alter table {{schema}}.error_queue add column also_skips bigint[] not null default '{}';
