// Exact type fidelity: every column round-trips exactly (its text form compared), including values that
// json accepts and jsonb refuses, which capture must never turn into an error in the user's transaction.
import { describe, expect, it } from 'vitest';

import {
  conflictsCounted,
  expectSameItems,
  freshPair,
  makeConfig,
  startDaemon,
  waitCaughtUp,
} from '../support/replication.js';

const schema = `
  create type mood as enum ('sad', 'ok', 'happy', 'it''s "complicated"');
  create domain positive as int check (value > 0);
  create type pair as (a int, b text);
  create table typed (
    id int primary key,
    n numeric, n30 numeric(40, 20), f8 float8, f4 float4, i2 smallint, i8 bigint,
    ts timestamp, tstz timestamptz, d date, tm time, tmtz timetz, iv interval,
    by bytea, j json, jb jsonb, ia int[], ta text[], u uuid, ip inet, net cidr, mac macaddr,
    e mood, dom positive, ok boolean, txt text, vc varchar(10), ch char(3), r int4range, pt point,
    bits varbit, tsv tsvector, cmp pair, ea mood[],
    gen bigint generated always as (id::bigint * 2) stored
  );`;

const rows = `
  insert into typed (id, n, n30, f8, f4, i2, i8, ts, tstz, d, tm, tmtz, iv, by, j, jb, ia, ta, u, ip, net, mac,
                     e, dom, ok, txt, vc, ch, r, pt, bits, tsv, cmp, ea) values
  (1, '123456789012345678901234567890.123456789012345678901234567890', '0.00000000000000000001',
      'NaN', 'NaN', -32768, -9223372036854775808,
      'infinity', '-infinity', '4713-01-01 BC', '00:00:00', '24:00:00+14', '178000000 years',
      '\\x00ff00', '{"a": 1,   "b":[1, 2]  , "a": 2}', '{"nested": {"deep": [1, "two", null, true]}}',
      '{{1,2},{3,NULL}}', '{"with \\"quotes\\"","comma,inside","NULL",NULL,""}',
      'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '::1/128', '10.0.0.0/8', '08:00:2b:01:02:03',
      'it''s "complicated"', 1, true, E'tab\\tnew\\nline back\\\\slash ''quote'' "dq"', 'ten chars!', 'ab',
      '[1,10)', '(1.5,-2.25)', B'101', 'a fat cat:1A', row(1, 'x, "y"'), '{sad,happy}'),
  (2, 'NaN', '-99999999999999999999.99999999999999999999', 'Infinity', '-Infinity', 32767, 9223372036854775807,
      '294276-12-31 23:59:59.999999', '1999-12-31 23:59:59.999999+05:30', '5874897-12-31', '23:59:59.999999',
      '12:00:00-15:59', '-1 days +02:03:04.5', '\\x', '"\\u0000 is fine in json, not in jsonb"', '[]',
      '{}', '{}', '00000000-0000-0000-0000-000000000000', '192.168.0.1', '2001:db8::/32', 'ff:ff:ff:ff:ff:ff',
      'sad', 2147483647, false, '😀 ü e\u0301 中文 \u00a0 zero-width:\u200b end', '', '  x',
      'empty', '(0,0)', B'', '', row(null, null), '{}'),
  (3, '-0.000', '0', '-0', '-0', 0, 0, '2000-02-29 12:34:56.789', '2000-02-29 12:34:56.789 America/New_York',
      'epoch', 'allballs', '00:00:00+00', '1 year 2 mons 3 days 04:05:06.789', '\\xdeadbeef',
      '{"x": "\\u0000", "y": 1.0000000000000000001e-400}', '{"k": "v\\u00e9"}', '{{{1}}}', '{"a b","c"}',
      null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, '{NULL}'),
  (4, '1e-1000', null, '1.7976931348623157e308', '3.4028235e38', null, null, null, null, null, null, null,
      null, null, 'null', 'null', null, null, null, null, null, null, null, null, null, null, null, null, null,
      null, null, null, null, null),
  (5, null, null, '4.9406564584124654e-324', '1.4e-45', null, null, null, null, null, null, null, null, null,
      null, null, null, null, null, null, null, null, null, null, null, repeat('five megabytes ', 350000),
      null, null, null, null, null, null, null, null);`;

describe('type fidelity', () => {
  it('round-trips every column exactly, values json accepts and jsonb refuses included', async () => {
    const { src, dst } = await freshPair(schema);
    const config = makeConfig({
      source: { url: src.url },
      tables: ['typed'],
      targets: [{ name: 'dst', url: dst.url, initialSync: 'none' }],
    });
    const daemon = await startDaemon(config);

    // Writers in styles that to_json() would otherwise follow: capture pins its own.
    await src.cluster.query(
      `set intervalstyle = 'sql_standard'; set extra_float_digits = 0; ${rows}`,
      [],
      src.name,
    );
    await src.cluster.query(`update typed set iv = iv * 2, f8 = f8 / 3, j = j where id = 3`, [], src.name);
    await waitCaughtUp(config);
    // Every row's old image now meets the target's row: the conflict check must find them equal, in
    // every type, or it would count false conflicts.
    await src.cluster.query(`update typed set id = id`, [], src.name);
    await waitCaughtUp(config);
    await src.cluster.query(`delete from typed where id in (2, 4)`, [], src.name);
    await waitCaughtUp(config);
    expect(await conflictsCounted(daemon)).toBe(0);

    await expectSameItems(src.url, dst.url, 'typed');
    await daemon.stop();
  });
});
