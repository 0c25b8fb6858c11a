-- trigsync on a source database: the change log, the capture functions, each target's position.
-- {{schema}} is replaced by the quoted schema name, {{schema_in_literal}} by the same for use inside a
-- string literal, {{schema_literal}} by the name as a literal, {{channel}} by the NOTIFY channel as a literal.

-- Every captured row change. Ids come from a sequence without cache, so that an id read before a
-- snapshot bounds every change written after it (see src/changelog/window.ts).
create sequence {{schema}}.change_log_id_seq as bigint cache 1;

create table {{schema}}.change_log (
  id bigint not null default nextval('{{schema_in_literal}}.change_log_id_seq') primary key,
  -- The writing transaction: consumers read by visibility in snapshots, never by id alone.
  txid xid8 not null default pg_current_xact_id(),
  captured_at timestamptz not null default statement_timestamp(),
  relid oid not null,
  -- I insert, D delete, V old image of an update, U new image of an update, T truncate
  op "char" not null,
  -- json, not jsonb: it keeps json columns byte for byte and accepts every value json accepts.
  row json,
  -- The json and jsonb columns that are SQL NULL in this row: to_json() writes JSON null for both.
  nulls text[]
);
alter sequence {{schema}}.change_log_id_seq owned by {{schema}}.change_log.id;
-- (txid, id): a window looks up the changes of a few transactions by txid, each from a given id on.
create index change_log_txid on {{schema}}.change_log (txid, id);

-- This node's identity: targets key the position of this source's stream by it.
create table {{schema}}.node (
  id int primary key check (id = 1),
  origin text not null default gen_random_uuid()::text,
  created_at timestamptz not null default now()
);
insert into {{schema}}.node (id) values (1);

-- The tables whose changes are captured, with their keys as installed.
create table {{schema}}.captured_table (
  relid oid primary key,
  schema_name name not null,
  table_name name not null,
  key_columns name[] not null,
  installed_at timestamptz not null default now()
);

-- One row per target: its position in the log and its state. The target's own copy of the position
-- (on the target, written in the same transaction as each batch) is the truth; this one trails it and
-- is what pruning and status read.
create table {{schema}}.target (
  name text primary key,
  state text not null default 'new'
    check (state in ('new', 'syncing', 'catching_up', 'live', 'parked', 'removed')),
  -- The position (src/changelog/window.ts): every change visible in from_snapshot is applied, and so are the
  -- changes of the open window (visible in to_snapshot, not in from_snapshot) with id <= applied_id.
  from_snapshot pg_snapshot not null,
  from_id_bound bigint not null,
  from_next_xid xid8 not null,
  to_snapshot pg_snapshot,
  to_id_bound bigint,
  to_next_xid xid8,
  to_id_ceiling bigint,
  applied_id bigint not null default 0,
  applied_changes bigint not null default 0,
  last_applied_at timestamptz,
  last_error text,
  parked_since timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

-- Changes that failed on a target, in order; the target takes nothing later until they apply or are skipped.
create table {{schema}}.error_queue (
  target text not null references {{schema}}.target (name) on delete cascade,
  change_id bigint not null,
  table_name text not null,
  op "char" not null,
  key json,
  sqlstate text,
  message text not null,
  attempts int not null default 1,
  first_failed_at timestamptz not null default now(),
  last_failed_at timestamptz not null default now(),
  primary key (target, change_id)
);

-- The doorbell: the first captured statement after the daemon went idle notifies it, the rest do not.
-- A NOTIFY in every writing transaction would serialize the source's commits on the notify queue lock.
-- Sequences, not a row: they are not transactional, so no writer ever waits on another's lock. A writer
-- rings when `rings` still equals `armed` (the daemon arms by setting `armed` to `rings`); the one whose
-- nextval comes right after `armed` notifies.
create sequence {{schema}}.doorbell_rings as bigint;
create sequence {{schema}}.doorbell_armed as bigint;
select nextval('{{schema_in_literal}}.doorbell_rings'), setval('{{schema_in_literal}}.doorbell_armed', 1);

-- The capture function, for the four statement-level triggers of every captured table. It runs as its
-- owner (security definer), so that writers of a captured table need no privilege on the log.
-- tg_argv[0] is the application_name whose writes are not captured (trigsync's own: no echo); the
-- rest name the table's json and jsonb columns.
-- intervalstyle and extra_float_digits are pinned because to_json() writes intervals and floats in the
-- writer's session style, and a style such as sql_standard does not read back the same everywhere.
-- `alias.*` names the whole row even when the table has a column of the alias's name.
-- plpgsql plans each statement when it first runs, so a branch may name a transition table that only
-- its own event's trigger defines.
create function {{schema}}.capture() returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp set intervalstyle = postgres set extra_float_digits = 1 as $$
declare
  null_list text;
begin
  if current_setting('application_name') = tg_argv[0] then return null; end if;
  if tg_nargs = 1 then
    if tg_op = 'INSERT' then
      insert into {{schema}}.change_log (relid, op, row)
        select tg_relid, 'I', to_json(new_image.*) from new_rows as new_image;
    elsif tg_op = 'UPDATE' then
      -- Applied as delete of every old key, then insert of every new row: that handles a changed key,
      -- and keys swapped within one statement.
      insert into {{schema}}.change_log (relid, op, row)
        select tg_relid, 'V', to_json(old_image.*) from old_rows as old_image;
      insert into {{schema}}.change_log (relid, op, row)
        select tg_relid, 'U', to_json(new_image.*) from new_rows as new_image;
    elsif tg_op = 'DELETE' then
      insert into {{schema}}.change_log (relid, op, row)
        select tg_relid, 'D', to_json(old_image.*) from old_rows as old_image;
    end if;
  elsif tg_op <> 'TRUNCATE' then
    -- The table has json or jsonb columns (tg_argv[1] on): note which are SQL NULL in each row.
    select format('array_remove(array[%s]::text[], null)',
                  string_agg(format('case when image.%I is null then %L end', c, c), ', '))
      into null_list from unnest(tg_argv[1:tg_nargs - 1]) as c;
    if tg_op in ('UPDATE', 'DELETE') then
      execute format('insert into %I.change_log (relid, op, row, nulls)
                      select $1, $2, to_json(image.*), %s from old_rows as image', {{schema_literal}}, null_list)
        using tg_relid, case tg_op when 'UPDATE' then 'V' else 'D' end;
    end if;
    if tg_op in ('INSERT', 'UPDATE') then
      execute format('insert into %I.change_log (relid, op, row, nulls)
                      select $1, $2, to_json(image.*), %s from new_rows as image', {{schema_literal}}, null_list)
        using tg_relid, case tg_op when 'UPDATE' then 'U' else 'I' end;
    end if;
  end if;
  if tg_op = 'TRUNCATE' then
    insert into {{schema}}.change_log (relid, op, row) values (tg_relid, 'T', null);
  end if;
  -- pg_sequence_last_value() is a plain expression, far cheaper than a query (both sequences were
  -- called at install, so neither is NULL).
  if pg_sequence_last_value('{{schema_in_literal}}.doorbell_rings')
     = pg_sequence_last_value('{{schema_in_literal}}.doorbell_armed') then
    if nextval('{{schema_in_literal}}.doorbell_rings')
       = pg_sequence_last_value('{{schema_in_literal}}.doorbell_armed') + 1 then
      perform pg_notify({{channel}}, '');
    end if;
  end if;
  return null;
end $$;

revoke all on function {{schema}}.capture() from public;
