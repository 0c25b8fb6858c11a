-- What `status` tells apart (src/changelog/status.ts): when a target was removed from the config, rather than
-- when it last parked; and when a group's daemon was last seen alive, once none runs.

-- Set when an install finds the target gone from its group's config, cleared when it comes back
-- (src/changelog/targets.ts). Targets removed before this migration: their last update is when that was.
alter table {{schema}}.target add column removed_at timestamptz;
update {{schema}}.target set removed_at = updated_at where state = 'removed';

-- The leader's last sign of life, written by its lock session while it leads (src/daemon/leadership.ts).
-- Until a leader writes it, status goes by the term's start and the group's targets' last updates.
alter table {{schema}}.leader add column seen_at timestamptz;
