-- A trial of a packed log, for the capture benchmark's 100k-row statements only (bench/README.md, "What
-- limits"): not read by the daemon, not built into trigsync. Where capture_rows() writes one log row of
-- JSON per changed row, this writes one log row per 1,000 rows, and the rows themselves, in the server's
-- binary form, as an array of a composite type with the table's columns: no output function runs and
-- nothing is parsed. The type is trigsync's own, made with the table's columns (a column of the table's
-- own row type would make PostgreSQL refuse the user's ALTER COLUMN TYPE and DROP TABLE), so a trigger
-- that used it must first check that the table still has those columns: the first argument after the
-- application name. The arrays are stored uncompressed (pglz cost more than it saved).
-- Placeholders as in sql/source: {{schema}}, {{schema_in_literal}}. The benchmark's tables share one shape.
create type {{schema}}.bench_image as (id bigint, a int, b text, c timestamptz);

create table {{schema}}.bench_packed_log (
  id bigint primary key,
  txid xid8 not null default pg_current_xact_id(),
  captured_at timestamptz not null default statement_timestamp(),
  relid oid not null,
  op "char" not null,
  -- How many rows the entry's array holds.
  rows int not null
);
create index on {{schema}}.bench_packed_log (txid, id);

create table {{schema}}.bench_packed_rows (
  id bigint primary key,
  rows {{schema}}.bench_image[] not null
);
alter table {{schema}}.bench_packed_rows alter column rows set storage external;

create or replace function {{schema}}.capture_packed() returns trigger
language plpgsql security definer as $$
declare
  side text;
begin
  if pg_catalog.current_setting('application_name') operator(pg_catalog.=) tg_argv[0] then
    return null;
  end if;
  if (select pg_catalog.string_agg(a.attname operator(pg_catalog.||) ':' operator(pg_catalog.||) a.atttypid,
                                   ',' order by a.attnum)
        from pg_catalog.pg_attribute a
       where a.attrelid operator(pg_catalog.=) tg_relid and a.attnum operator(pg_catalog.>) 0
         and not a.attisdropped) is distinct from tg_argv[1] then
    raise exception 'capture_packed(): % no longer has the columns its image type was made with', tg_relid::regclass;
  end if;
  -- Each transition table with its op: an UPDATE's old rows (V) before its new rows (U).
  foreach side in array case tg_op when 'INSERT' then array['new_rows I'] when 'DELETE' then array['old_rows D']
                                   else array['old_rows V', 'new_rows U'] end loop
    execute pg_catalog.format(
      $sql$
      with packs as (
        select pg_catalog.nextval('{{schema_in_literal}}.change_log_id_seq') as id,
               pg_catalog.array_agg(image) as rows, pg_catalog.count(*) as n
          from (select row(t.*)::{{schema}}.bench_image as image,
                       (pg_catalog.row_number() over () operator(pg_catalog.-) 1) operator(pg_catalog./) 1000 as pack
                  from %I t) images
         group by pack),
      logged as (
        insert into {{schema}}.bench_packed_log (id, relid, op, rows) select id, $1, %L, n from packs)
      insert into {{schema}}.bench_packed_rows (id, rows) select id, rows from packs
      $sql$,
      pg_catalog.split_part(side, ' ', 1), pg_catalog.split_part(side, ' ', 2)) using tg_relid;
  end loop;
  if pg_catalog.pg_sequence_last_value('{{schema_in_literal}}.doorbell'::pg_catalog.regclass) is null then
    perform {{schema}}.ring();
  end if;
  return null;
end $$;

revoke all on function {{schema}}.capture_packed() from public;
