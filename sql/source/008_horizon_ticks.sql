-- What the change log can still serve (src/changelog/horizon.ts).
--
-- Every tick's transaction id (src/changelog/window.ts), kept while a position may start from it. A position
-- names its ticks by these ids; a source that no longer has one lost the history the position was taken
-- in (restored from a backup, failed over to a standby that lagged), even once it has handed the same
-- transaction ids out again. Written by the tick's own transaction, which makes it write WAL.
create table {{schema}}.tick (xid xid8 primary key);

-- The pruning horizon: changes of transactions older than `pruned_below` may be gone from the log, and
-- ticks older than `ticks_from` (the oldest registered position's, or this migration's) may be gone too.
-- The pruner and a worker claiming its position lock this row, so that neither acts on what the other
-- just read.
create table {{schema}}.log_horizon (
  only_row boolean primary key default true check (only_row),
  pruned_below xid8 not null,
  ticks_from xid8 not null
);
-- Pruning so far went up to the oldest position registered then, which is no newer than the oldest now.
-- (PostgreSQL 13 has no min(xid8): through int8, which holds every xid8.)
insert into {{schema}}.log_horizon (pruned_below, ticks_from)
  select coalesce(min(pg_snapshot_xmin(from_snapshot)::text::int8)::text::xid8,
                  pg_snapshot_xmin(pg_current_snapshot())),
         pg_current_xact_id()
    from {{schema}}.target;
