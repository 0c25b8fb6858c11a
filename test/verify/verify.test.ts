// `trigsync verify`: range hashing that narrows to the differing keys, equal tables under mappings,
// comparing while the daemon replicates, and usage errors.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import pg from 'pg';
import { describe, expect, it } from 'vitest';

import { main } from '../../src/cli/main.js';
import { collectingOutput } from '../../src/cli/output.js';
import { verify, type TableReport, type VerifyReport } from '../../src/verify/verify.js';
import { freshDatabase, sharedClusters, waitFor, type FreshDatabase } from '../support/fixtures.js';
import { makeConfig, startDaemon, waitCaughtUp } from '../support/replication.js';

/** A config file holding `raw`, as users pass it. */
async function configFile(raw: Record<string, unknown>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'trigsync-verify-'));
  const file = join(dir, 'config.json');
  await writeFile(file, JSON.stringify({ metrics: { enabled: false }, ...raw }));
  return file;
}

async function runVerify(
  ...args: string[]
): Promise<{ code: number; report: VerifyReport | undefined; stdout: string; stderr: string }> {
  const out = collectingOutput();
  const code = await main(['verify', ...args], out);
  const stdout = out.stdout.join('\n');
  const json = args.includes('--json') && code < 2;
  return {
    code,
    report: json ? (JSON.parse(stdout) as VerifyReport) : undefined,
    stdout,
    stderr: out.stderr.join('\n'),
  };
}

async function pair(): Promise<{ src: FreshDatabase; dst: FreshDatabase }> {
  const { source, target1 } = sharedClusters();
  const [src, dst] = await Promise.all([freshDatabase(source), freshDatabase(target1)]);
  return { src, dst };
}

const run = (db: FreshDatabase, sql: string): Promise<unknown> => db.cluster.query(sql, undefined, db.name);

function byKey(table: TableReport): { key: Record<string, unknown>; kind: string }[] {
  const text = (d: { key: Record<string, unknown> }): string => JSON.stringify(d.key);
  return [...table.differences].sort((a, b) => (text(a) < text(b) ? -1 : text(a) > text(b) ? 1 : 0));
}

describe('trigsync verify', () => {
  it('among 1M rows, names exactly the changed, missing and extra row, exits 1, and fetches far less than the table', async () => {
    const { src, dst } = await pair();
    // Identical content on both servers, built in place; the key added after the load builds faster.
    const build = `
      create table big (id int not null, v int not null, payload text, at timestamptz);
      insert into big select g, g % 1000, md5(g::text), timestamptz '2024-01-01' + g * interval '1 second'
        from generate_series(1, 1000000) g;
      alter table big add primary key (id);`;
    await Promise.all([run(src, build), run(dst, build)]);
    await run(
      dst,
      `update big set payload = 'changed' where id = 500000;
       delete from big where id = 250000;
       insert into big values (1000001, 1, 'extra', now());`,
    );
    const file = await configFile({
      source: { url: src.url },
      tables: ['big'],
      targets: [{ name: 'replica', url: dst.url, initialSync: 'none' }],
    });

    const started = performance.now();
    const { code, report, stderr } = await runVerify('--config', file, '--json');
    const seconds = (performance.now() - started) / 1000;
    expect(stderr).toBe('');
    expect(code).toBe(1);
    expect(report!.equal).toBe(false);
    const table = report!.targets[0]!.tables[0]!;
    expect(byKey(table)).toEqual([
      { key: { id: 1000001 }, kind: 'extra' },
      { key: { id: 250000 }, kind: 'missing' },
      { key: { id: 500000 }, kind: 'different' },
    ]);
    expect(table).toMatchObject({
      table: 'public.big',
      equal: false,
      sourceRows: 1_000_000,
      targetRows: 1_000_000,
      differencesTotal: 3,
    });
    expect(report!.targets[0]).toMatchObject({ name: 'replica', replicating: false, caughtUp: true });
    // Rows reach the client only from the few small ranges around the differences.
    expect(table.rowsFetched.source).toBeLessThan(10_000);
    expect(table.rowsFetched.target).toBeLessThan(10_000);
    console.log(
      `verify of 1M rows with 3 differences: ${seconds.toFixed(2)} s; rows hashed source ${table.rowsHashed.source}, ` +
        `target ${table.rowsHashed.target}; rows fetched source ${table.rowsFetched.source}, target ${table.rowsFetched.target}`,
    );
  });

  it('finds equal tables equal: a mapped table with a column subset, a row filter and another type; composite, text, uuid keys', async () => {
    const { src, dst } = await pair();
    const { source, target } = await mappedTables(src, dst);
    const file = await configFile({ source: { url: src.url }, tables: source, targets: [target] });

    const { code, report, stderr } = await runVerify('--config', file, '--json');
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(report!.equal).toBe(true);
    const tables = report!.targets[0]!.tables;
    expect(tables.map((t) => [t.table, t.targetTable, t.equal, t.sourceRows, t.targetRows])).toEqual([
      ['public.orders', 'archive.orders', true, 15000, 15000],
      ['public.lines', 'public.lines', true, 12000, 12000],
      ['public.tags', 'public.tags', true, 3000, 3000],
      ['public.docs', 'public.docs', true, 2000, 2000],
    ]);
    for (const t of tables) expect(t).toMatchObject({ differences: [], differencesTotal: 0 });

    const text = await runVerify('--config', file, '--table', 'public.lines');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/public\.lines\s+yes\s+12000\s+12000\s+0/);
    expect(text.stdout).not.toMatch(/public\.orders/);
    expect(text.stdout).toMatch(/^verify: equal$/m);
  });

  it('narrows to the differing keys through several levels for bigint, composite, text (other collation) and uuid keys', async () => {
    const { src, dst } = await pair();
    const { source, target } = await mappedTables(src, dst);
    await run(
      dst,
      `update archive.orders set total = total + 1 where id = 7001;
       insert into archive.orders values (20001, 'open', 1, now());
       delete from lines where order_id = 100 and line = 1;
       update lines set qty = qty + 1 where order_id = 2000 and line = 3;
       insert into lines values (100, 99, 1);
       delete from tags where name = 'k-1042';
       update tags set weight = weight * 2 where name = 'K-2001';
       delete from docs where id = (select id from docs order by id limit 1 offset 1000);`,
    );
    // On the source: a row outside the filter is no difference.
    await run(src, `insert into orders values (20002, 'draft', 1, 'x', now())`);
    const config = makeConfig({ source: { url: src.url }, tables: source, targets: [target] });
    const report = await verify(config, { narrowing: { leafRows: 20, splitBuckets: 4, topBuckets: 8 } });

    expect(report.equal).toBe(false);
    const [orders, lines, tags, docs] = report.targets[0]!.tables;
    expect(byKey(orders!)).toEqual([
      { key: { id: 20001 }, kind: 'extra' },
      { key: { id: 7001 }, kind: 'different' },
    ]);
    expect(byKey(lines!)).toEqual([
      { key: { order_id: 100, line: 1 }, kind: 'missing' },
      { key: { order_id: 100, line: 99 }, kind: 'extra' },
      { key: { order_id: 2000, line: 3 }, kind: 'different' },
    ]);
    expect(byKey(tags!)).toEqual([
      { key: { name: 'K-2001' }, kind: 'different' },
      { key: { name: 'k-1042' }, kind: 'missing' },
    ]);
    expect(docs!.differences).toEqual([{ key: { id: expect.any(String) as string }, kind: 'missing' }]);
    for (const t of [orders!, lines!, tags!, docs!]) {
      expect(t.rowsFetched.source + t.rowsFetched.target).toBeLessThan(t.sourceRows / 2);
    }
  });

  it('reports no difference while the daemon replicates a steady writer, and reports its lag', async () => {
    const { src, dst } = await pair();
    const table = `create table items (id int primary key, v int not null, note text);
      insert into items select g, 0, md5(g::text) from generate_series(1, 20000) g;`;
    await Promise.all([run(src, table), run(dst, table)]);
    const raw = {
      source: { url: src.url },
      tables: ['items'],
      targets: [{ name: 'replica', url: dst.url, initialSync: 'none' }],
      apply: { pollIntervalMs: 200 },
    };
    const config = makeConfig(raw);
    const daemon = await startDaemon(config);
    await waitCaughtUp(config);

    const writer = new pg.Client({ connectionString: src.url });
    await writer.connect();
    let writing = true;
    let writes = 0;
    const load = (async () => {
      let next = 20001;
      while (writing) {
        const id = 1 + Math.floor(Math.random() * 20000);
        await writer.query('update items set v = v + 1, note = md5(random()::text) where id = $1', [id]);
        await writer.query('insert into items values ($1, 0, $2)', [next++, 'new']);
        await writer.query('delete from items where id = $1', [id + 1]);
        writes += 3;
      }
    })();
    try {
      // Let the load get going, so verify starts with changes in flight.
      await waitFor(() => writes >= 300, { what: 'the writer to get going' });
      const file = await configFile(raw);
      const { code, report, stderr } = await runVerify('replica', '--config', file, '--json', '--wait', '30');
      expect(stderr).toBe('');
      const target = report!.targets[0]!;
      if (target.state !== 'compared') expect.fail(`replica not compared: ${target.reason}`);
      const items = target.tables[0]!;
      console.log(
        `verify under load (${writes} writes so far): lag ${target.lagSeconds} s, ${target.rechecks} re-check round(s); ` +
          `rows fetched source ${items.rowsFetched.source}, target ${items.rowsFetched.target}`,
      );
      expect(target.tables[0]!.differences).toEqual([]);
      expect(code).toBe(0);
      expect(target).toMatchObject({ name: 'replica', equal: true, replicating: true, caughtUp: true });
      expect(target.lagSeconds).toBeGreaterThanOrEqual(0);
      expect(target.lagSeconds).toBeLessThan(30);
      expect(target.comparedAt.snapshot).toMatch(/^\d+:\d+:/);
    } finally {
      writing = false;
      await load;
      await writer.end();
    }
    await waitCaughtUp(config);
    await daemon.stop();

    // With the daemon gone, a new change never arrives: verify says so, and reports it.
    await run(src, `insert into items values (1000000, 0, 'late')`);
    const file = await configFile(raw);
    const late = await runVerify('--config', file, '--wait', '0.5');
    expect(late.code).toBe(1);
    expect(late.stdout).toMatch(/the target had NOT applied all of it after waiting 0\.5 s/);
    expect(late.stdout).toMatch(/missing\s+\{"id":1000000\}/);
    expect(late.stdout).toMatch(/^verify: 1 difference\(s\) in 1 table\(s\)$/m);
  });

  it('exits 2 naming an unknown target or table', async () => {
    const file = await configFile({
      source: { url: 'postgres://nobody@127.0.0.1:1/none' },
      tables: ['public.orders', 'public.lines'],
      targets: [
        {
          name: 'replica',
          url: 'postgres://nobody@127.0.0.1:1/none',
          initialSync: 'none',
          tables: ['orders'],
        },
      ],
    });
    const target = await runVerify('nosuch', '--config', file);
    expect(target.code).toBe(2);
    expect(target.stderr).toMatch(/no target named nosuch in the config \(targets: replica\)/);

    const table = await runVerify('--table', 'public.invoices', '--config', file);
    expect(table.code).toBe(2);
    expect(table.stderr).toMatch(/no table public\.invoices among the captured tables/);

    const notTaken = await runVerify('replica', '--table', 'lines', '--config', file);
    expect(notTaken.code).toBe(2);
    expect(notTaken.stderr).toMatch(/target replica does not take table public\.lines/);

    const wait = await runVerify('--wait', 'soon', '--config', file);
    expect(wait.code).toBe(2);
    expect(wait.stderr).toMatch(/--wait takes a number of seconds/);
  });
});

/**
 * The same data on both sides: orders mapped to archive.orders with a column subset, a row filter and
 * a wider numeric; lines with a composite key; tags with a text key that sorts by an ICU collation on
 * the source and by C on the target; docs with a uuid key.
 */
async function mappedTables(
  src: FreshDatabase,
  dst: FreshDatabase,
): Promise<{ source: string[]; target: Record<string, unknown> }> {
  const data = (orders: string): string => `
    insert into ${orders} select g, case when g % 4 = 0 then 'draft' else 'open' end, (g % 997) * 1.25,
           ${orders === 'orders' ? "'note ' || g, " : ''}timestamptz '2024-01-01' + g * interval '1 minute'
      from generate_series(1, 20000) g ${orders === 'orders' ? '' : 'where g % 4 <> 0'};
    insert into lines select o, l, o * l from generate_series(1, 3000) o, generate_series(1, 4) l;
    insert into tags select case when g % 2 = 0 then 'k-' else 'K-' end || g, g / 7.0, int4send(g), g * interval '1 hour'
      from generate_series(1, 3000) g;
    insert into docs select md5(g::text)::uuid, json_build_object('n', g)::jsonb from generate_series(1, 2000) g;`;
  await run(
    src,
    `create table orders (id bigint primary key, status text not null, total numeric(10,2), note text, created timestamptz);
     create table lines (order_id int, line int, qty int, primary key (order_id, line));
     create table tags (name text collate "en-x-icu" primary key, weight float8, data bytea, span interval);
     create table docs (id uuid primary key, body jsonb);
     ${data('orders')}`,
  );
  await run(
    dst,
    `create schema archive;
     create table archive.orders (id bigint primary key, status text, total numeric, created timestamptz);
     create table lines (order_id int, line int, qty int, primary key (order_id, line));
     create table tags (name text primary key, weight float8, data bytea, span interval);
     create table docs (id uuid primary key, body jsonb);
     ${data('archive.orders')}`,
  );
  return {
    source: ['orders', 'lines', 'tags', 'docs'],
    target: {
      name: 'replica',
      url: dst.url,
      initialSync: 'none',
      tables: [
        {
          source: 'orders',
          target: 'archive.orders',
          columns: ['id', 'status', 'total', 'created'],
          where: "status <> 'draft'",
        },
        'lines',
        'tags',
        'docs',
      ],
    },
  };
}
