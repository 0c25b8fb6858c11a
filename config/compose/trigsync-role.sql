-- trigsync's login role on every database of the compose, with no privileges beyond CONNECT and its own
-- schema (which an admin creates, so that the role needs no CREATE on the database). Each database's
-- next init file adds what trigsync needs there (docs/operations.md, "Roles and privileges").
-- Runs first, as POSTGRES_USER in POSTGRES_DB; the password comes from TRIGSYNC_PASSWORD.
\getenv trigsync_password TRIGSYNC_PASSWORD
\if :{?trigsync_password}
\else
  do $$ begin raise exception 'set TRIGSYNC_PASSWORD: the password of the trigsync role'; end $$;
\endif
select current_database() as db \gset

create role trigsync login password :'trigsync_password';
grant connect on database :"db" to trigsync;
create schema trigsync authorization trigsync;
