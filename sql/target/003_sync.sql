-- A table copied by a sync at snapshot `snapshot` holds every change that snapshot sees: the stream
-- leaves those changes of that table out until the target's position has passed the snapshot, and
-- applies the rest. Written in the copy's own transaction, so a copy and its floor commit together.
create table {{schema}}.table_floor (
  origin text not null,
  target text not null,
  relid bigint not null,
  snapshot text not null,
  copied_at timestamptz not null default now(),
  primary key (origin, target, relid)
);
