-- Each target's replicated sequences as its worker last left them (src/apply/sequences.ts): per sequence
-- the source and target names, the target's value and increment, and a problem that keeps it from being
-- carried. `status` compares the target's value with the source's own (src/changelog/sequence-state.ts). In the
-- target's row, so that it goes with the target.
alter table {{schema}}.target add column if not exists sequences jsonb not null default '[]';
