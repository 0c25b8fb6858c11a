-- The source's trigsync role, with the grants of docs/operations.md ("Roles and privileges") and no
-- more: no superuser. It owns the captured tables (with TRIGGER alone, uninstall and re-creating the
-- capture triggers would need the owner; see "What needs ownership") and its schema, which an admin
-- creates for it so that it needs no CREATE on the database. The applications keep writing as app.
-- Runs after tables.sql, as POSTGRES_USER in POSTGRES_DB; the password comes from TRIGSYNC_PASSWORD.
\getenv trigsync_password TRIGSYNC_PASSWORD
\if :{?trigsync_password}
\else
  do $$ begin raise exception 'set TRIGSYNC_PASSWORD: the password of the trigsync role'; end $$;
\endif
select current_database() as db \gset

create role trigsync login password :'trigsync_password';
grant connect on database :"db" to trigsync;
grant usage on schema public to trigsync;
alter table public.orders owner to trigsync;
alter table public."Order Lines" owner to trigsync;
create schema trigsync authorization trigsync;
