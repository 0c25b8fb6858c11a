-- A target paused by an operator (`trigsync pause`, src/operator/commands.ts): its worker applies
-- nothing, and opens no session to it, until `trigsync resume`. Kept here, not in the worker, so
-- that a pause outlives the daemon's restart and a standby that takes over honours it. The target's
-- position stays where it is, so the log is kept for it as for any target behind.
alter table {{schema}}.target add column paused_at timestamptz, add column paused_by text;
