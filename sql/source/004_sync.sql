-- Initial sync and `trigsync sync`: what a target is asked to copy, and how far the copy is. The
-- request outlives a daemon restart (an interrupted copy starts over); the worker clears it once the
-- copy committed on the target. An empty list means every table of the target.
alter table {{schema}}.target
  add column sync_tables text[],
  add column sync_requested_at timestamptz,
  add column sync_table text,
  add column sync_rows bigint,
  add column sync_rows_estimate bigint,
  add column sync_started_at timestamptz;
