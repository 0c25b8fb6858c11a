-- A table a target stops taking (removed from its config) is still applied to it up to what the log
-- held when it stopped (src/capture/table-set.ts, src/apply/plan-keeper.ts): `mapping` is how the target
-- took it (target table, columns, row filter), kept from the last install that listed it; `drain_until`
-- the source's snapshot at the install that found it gone, cleared once the target's position passed it.
alter table {{schema}}.target_table
  add column if not exists mapping jsonb,
  add column if not exists drain_until pg_snapshot;
