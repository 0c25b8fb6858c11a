-- The archive target: public.orders arrives as archive.orders with three of its columns (see
-- trigsync.yaml). trigsync's role (trigsync-role.sql) gets the grants of docs/operations.md and no
-- more: SELECT, INSERT and DELETE to apply, TRUNCATE for the initial copy and the source's truncates
-- (no TRIGGER: the target is not readOnly).
create schema archive;
create table archive.orders (id bigint primary key, total numeric(12, 2), status text);

grant usage on schema archive to trigsync;
grant select, insert, update, delete, truncate on archive.orders to trigsync;
