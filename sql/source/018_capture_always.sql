-- Capture that nothing but trigsync's own writes bypass, and a record of the times it was bypassed.
-- An ordinary trigger does not fire in a session with session_replication_role = replica (a bulk load
-- that skips foreign-key checks, a native subscription's apply worker writing into a captured table),
-- so those writes were not captured at all, and nothing noticed; nor did anything notice a capture
-- trigger disabled (ALTER TABLE .. DISABLE TRIGGER ALL, as a data-only pg_restore does) and enabled
-- again. Where trigsync's role may alter a table (its owner), its capture triggers now fire ALWAYS
-- (src/capture/triggers.ts): writes in replica mode are captured as logical decoding sees them, and
-- ENABLE TRIGGER ALL, which sets every trigger back to firing on origin, leaves a mark that the capture
-- was off. trigsync's own writes stay uncaptured by their application_name, as before.

-- 'A' once every capture trigger of the table (and its partitions) fires ALWAYS; null or 'O' while
-- they fire on origin only (installed before, or trigsync's role does not own the table). A trigger
-- found firing on origin after 'A' was recorded was disabled and enabled again.
alter table {{schema}}.captured_table add column fires "char";

-- Why the target may lack rows or changes of the table since needs_sync_since: null where it did not
-- take the table all along (sql/source/009); else what stopped the table's capture meanwhile.
alter table {{schema}}.target_table add column needs_sync_why text;
