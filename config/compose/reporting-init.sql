-- The reporting target's trigsync role, with the grants of docs/operations.md ("Roles and privileges")
-- and no more: SELECT, INSERT and DELETE to apply, TRUNCATE for the initial copy and the source's
-- truncates, TRIGGER for the guards (the target is readOnly), and a schema an admin creates for it.
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
grant select, insert, delete, truncate, trigger on public.orders, public."Order Lines" to trigsync;
create schema trigsync authorization trigsync;
