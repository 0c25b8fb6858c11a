-- The reporting target: trigsync's role (trigsync-role.sql) gets the grants of docs/operations.md and
-- no more: SELECT, INSERT and DELETE to apply, TRUNCATE for the initial copy and the source's
-- truncates, TRIGGER for the guards (the target is readOnly). Runs after tables.sql.
grant usage on schema public to trigsync;
grant select, insert, update, delete, truncate, trigger on public.orders, public."Order Lines" to trigsync;
