-- Groups of daemons on one source (docs/operations.md, "Groups"): each group elects its own leader and
-- applies to its own targets; the change log, the capture and pruning are shared.

-- The group a target belongs to: only that group's daemons apply to it or mark it removed. Targets
-- registered before groups existed are the default group's, as were the daemons that registered them.
alter table {{schema}}.target add column group_name text not null default 'default';

-- One leader row per group instead of one for the source.
alter table {{schema}}.leader drop column only_row;
alter table {{schema}}.leader add column group_name text not null default 'default' primary key;

-- The tables each group's config lists, as its last install found them: a table stays captured while
-- any group lists it (src/capture/table-set.ts), whichever group's daemon installs.
create table {{schema}}.group_table (
  group_name text not null,
  relid oid not null,
  installed_at timestamptz not null default now(),
  primary key (group_name, relid)
);
