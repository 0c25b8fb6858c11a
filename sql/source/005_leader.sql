-- Leader election: the daemon that holds the session advisory lock of this schema applies; the others
-- stand by. The holder writes who it is here once its term has installed; the row is the leader only
-- while its backend still holds the leader's lock (status checks pg_locks), so a dead leader's row is
-- history.
create table {{schema}}.leader (
  only_row boolean primary key default true check (only_row),
  daemon text not null,
  backend_pid integer not null,
  since timestamptz not null default clock_timestamp()
);
