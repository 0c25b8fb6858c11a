-- The source: trigsync's role (trigsync-role.sql) owns the captured tables (with TRIGGER alone,
-- uninstall and re-creating the capture triggers would need the owner; see "What needs ownership" in
-- docs/operations.md). No superuser; the applications keep writing as app. Runs after tables.sql.
grant usage on schema public to trigsync;
alter table public.orders owner to trigsync;
alter table public."Order Lines" owner to trigsync;
