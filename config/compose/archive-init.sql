-- The archive target: public.orders arrives as archive.orders with three of its columns (see
-- trigsync.yaml), and trigsync's role with the grants of docs/operations.md ("Roles and privileges")
-- and no more: SELECT, INSERT and DELETE to apply, TRUNCATE for the initial copy and the source's
-- truncates (no TRIGGER: the target is not readOnly), and a schema an admin creates for it.
-- Runs as POSTGRES_USER in POSTGRES_DB; the password comes from TRIGSYNC_PASSWORD.
\getenv trigsync_password TRIGSYNC_PASSWORD
\if :{?trigsync_password}
\else
  do $$ begin raise exception 'set TRIGSYNC_PASSWORD: the password of the trigsync role'; end $$;
\endif
select current_database() as db \gset

create schema archive;
create table archive.orders (id bigint primary key, total numeric(12, 2), status text);

create role trigsync login password :'trigsync_password';
grant connect on database :"db" to trigsync;
grant usage on schema archive to trigsync;
grant select, insert, delete, truncate on archive.orders to trigsync;
create schema trigsync authorization trigsync;
