-- Operators' skips: a failed change dropped for one target, with who did it, when, and what it was.
-- The worker leaves out every change listed here for its target.
create table {{schema}}.skipped_change (
  target text not null,
  change_id bigint not null,
  table_name text not null,
  op "char" not null,
  row json,
  error text,
  skipped_by text not null default session_user,
  skipped_at timestamptz not null default now(),
  primary key (target, change_id)
);
