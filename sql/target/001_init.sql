-- trigsync on a target database: the position of each source's stream, written in the same
-- transaction as the batch it follows, so that a batch is applied exactly once.
create table {{schema}}.applied_position (
  origin text not null,
  target text not null,
  from_snapshot text not null,
  from_id_bound bigint not null,
  from_next_xid text not null,
  to_snapshot text,
  to_id_bound bigint,
  to_next_xid text,
  to_id_ceiling bigint,
  applied_id bigint not null,
  updated_at timestamptz not null default now(),
  primary key (origin, target)
);
