-- `trigsync repair`: every key it wrote on a target, what it did there, at which source snapshot (the
-- row written is the source's row in that snapshot), who and when. Written in the same step as the
-- target's write (recorded, then the target commits, then the record).
create table {{schema}}.repaired_key (
  id bigint generated always as identity primary key,
  target text not null,
  -- The source table, as `verify` names it; the key as a JSON object of its columns.
  table_name text not null,
  key jsonb not null,
  action text not null check (action in ('insert', 'update', 'delete')),
  snapshot pg_snapshot not null,
  -- The database role, and the operating-system user who ran the command.
  repaired_by text not null default session_user,
  os_user text,
  repaired_at timestamptz not null default now()
);
create index repaired_key_target on {{schema}}.repaired_key (target, repaired_at);
