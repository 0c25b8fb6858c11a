// Hostile names and values (issue #9): every identifier is quoted and every value bound, so that a
// schema, table or column named like a statement, and values shaped like SQL, backslashes, control
// characters, a 10 MB value and a 200-column table all replicate exactly.
import { describe, expect, it } from 'vitest';

import { formatQualifiedName, ident } from '../../src/config/identifiers.js';
import { freshDatabase, sharedClusters } from '../support/fixtures.js';
import { expectSameRows, makeConfig, startDaemon, waitCaughtUp } from '../support/replication.js';

const schema = `Sch"ema; DROP SCHEMA public CASCADE; --`;
const table = `Ordér "Lines"; delete from x; --`;
const key = `Ké"y; select 1`;
const columns = {
  select: 'select',
  unicode: 'Ünïcödé ✓ 中文',
  semicolon: `semi;colon'`,
  upper: 'UPPER Case',
  backslash: 'back\\slash',
  from: 'from',
  dollar: '$1',
} as const;
const wideTable = 'Wide Table';
const wideColumns = Array.from({ length: 199 }, (_, i) => `c ${i + 1}${i % 10 === 0 ? ' "q"' : ''}`);

const qualified = `${ident(schema)}.${ident(table)}`;
const wideQualified = `${ident(schema)}.${ident(wideTable)}`;

const ddl = `
  create schema ${ident(schema)};
  create table ${qualified} (
    ${ident(key)} int primary key,
    ${ident(columns.select)} text,
    ${ident(columns.unicode)} text,
    ${ident(columns.semicolon)} text,
    ${ident(columns.upper)} int,
    ${ident(columns.backslash)} text,
    ${ident(columns.from)} jsonb,
    ${ident(columns.dollar)} text);
  create table ${wideQualified} (id int primary key, ${wideColumns.map((c) => `${ident(c)} text`).join(', ')});`;

/** Values shaped like what a careless builder of SQL text would break on. */
const hostileValues = [
  `'); drop table x; --`,
  `$1`,
  `\\'; select pg_sleep(10); --`,
  `C:\\new\\table\\`,
  `E'\\x41'`,
  `tab\there, newline\nthere, return\r, escape \u001b[31m red, bell \u0007, unit \u001f`,
  `"quoted" and ""doubled""`,
  `😀 ü e\u0301 中文 \u00a0 \u200b \u2028 \ufeff`,
  `%s %d {0} \${x} {{schema}}`,
  ``,
];

describe('hostile names and values', () => {
  it('replicates tables and columns named like SQL, values shaped like it, 10 MB and 200 columns', async () => {
    const { source, target1 } = sharedClusters();
    const [src, dst] = await Promise.all([freshDatabase(source), freshDatabase(target1)]);
    await source.query(ddl, [], src.name);
    await target1.query(ddl, [], dst.name);
    const config = makeConfig({
      source: { url: src.url },
      tables: [
        formatQualifiedName({ schema, name: table }),
        formatQualifiedName({ schema, name: wideTable }),
      ],
      targets: [{ name: 'dst', url: dst.url, initialSync: 'none' }],
    });
    const daemon = await startDaemon(config);

    const insert = `insert into ${qualified} values ($1, $2, $3, $4, $5, $6, $7::jsonb, $8)`;
    for (const [i, value] of hostileValues.entries()) {
      await source.query(
        insert,
        [i + 1, value, value, value, i, value, JSON.stringify({ [value]: value, 'a"b': [value] }), value],
        src.name,
      );
    }
    // 10 MB in one value, through capture, the log and a batch.
    await source.query(insert, [100, 'x'.repeat(10_000_000), null, null, null, null, null, null], src.name);
    await source.query(
      `update ${qualified} set ${ident(columns.select)} = ${ident(columns.unicode)} || $1,
                               ${ident(key)} = ${ident(key)} + 1000
        where ${ident(key)} % 2 = 0`,
      [hostileValues[0]],
      src.name,
    );
    await source.query(`delete from ${qualified} where ${ident(key)} = 3`, [], src.name);

    const wideInsert = `insert into ${wideQualified} select g, ${wideColumns
      .map((_, i) => `$1 || g || '${i}'`)
      .join(', ')} from generate_series(1, 50) g`;
    await source.query(wideInsert, [hostileValues[2]], src.name);
    await source.query(
      `update ${wideQualified} set ${ident(wideColumns[198]!)} = $1 where id <= 25`,
      [hostileValues[5]],
      src.name,
    );

    const status = await waitCaughtUp(config);
    expect(status.targets.find((t) => t.name === 'dst')?.state).toBe('live');
    await expectSameRows(
      { url: src.url, query: `select * from ${qualified}` },
      { url: dst.url, query: `select * from ${qualified}` },
      `t.${ident(key)}`,
    );
    await expectSameRows(
      { url: src.url, query: `select * from ${wideQualified}` },
      { url: dst.url, query: `select * from ${wideQualified}` },
      't.id',
    );
    // The injection-shaped values did nothing but arrive: both schemas are whole.
    const [namespaces] = await target1.query<{ n: number }>(
      `select count(*)::int as n from pg_namespace where nspname in ('public', $1)`,
      [schema],
      dst.name,
    );
    expect(namespaces?.n).toBe(2);
    await daemon.stop();
  });
});
