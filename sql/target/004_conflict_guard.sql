-- A batch is sent in one round trip, its commit included, on the bet that it meets no conflict. Each of
-- its statements ends by passing the number of keys it found not as expected to this function, which
-- raises when there are any: the transaction aborts, its COMMIT rolls back, and the worker applies the
-- batch again statement by statement, reading which keys they were. A SQLSTATE of its own (class TS is
-- none of PostgreSQL's) tells this failure from every error of the data.
create function {{schema}}.apply_conflicts_found(mismatches bigint) returns void
language plpgsql as $$
begin
  if mismatches > 0 then
    raise exception 'trigsync: % key(s) not as expected', mismatches using errcode = 'TS001';
  end if;
end
$$;
