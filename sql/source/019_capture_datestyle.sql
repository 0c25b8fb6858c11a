-- The capture functions that write some columns through their own text output (capture(): hstore,
-- PostGIS types, and arrays, domains and composites of them; capture_row(): tables that inherit) write
-- dates and times in ISO: a composite's date written by a session whose DateStyle was 'SQL, DMY' or
-- 'German' ('04/03/2026', '04.03.2026') did not read back on the target, which parked on it, and a
-- timestamptz in SQL style carries a zone abbreviation rather than an offset. to_json() writes ISO
-- whatever the DateStyle, so capture_rows(), which serves every other table, needs nothing.
alter function {{schema}}.capture() set datestyle = 'ISO, YMD';
alter function {{schema}}.capture_row() set datestyle = 'ISO, YMD';
