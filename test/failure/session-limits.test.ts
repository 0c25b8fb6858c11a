// Limits that a database or a role sets for its applications (statement_timeout,
// idle_in_transaction_session_timeout, idle_session_timeout, transaction_timeout, a default isolation of
// SERIALIZABLE), here
// on the role trigsync connects as. An initial copy longer than the statement limit was cancelled at every
// try and never finished; one that the target cancelled left the source's connection holding its COPY,
// and the copy hung, the daemon's stop with it. trigsync's sessions run without those limits, as
// pg_dump's do. And a copy that the target refuses midway, while the source still sends: the copy ends,
// naming why, and the daemon stops. And lock_timeout on a target database: a change that waits for a
// row an application holds locked is applied once the lock goes, as native logical replication's is.
// And xmloption = document and array_nulls off on a target database: XML content that is not a document
// (several elements, text beside them) and arrays with NULL elements are applied and copied as the
// source holds them.
import { describe, expect, it } from 'vitest';

import { daemonConnectOptions, withClient } from '../../src/db/connect.js';
import {
  connect,
  createRole,
  freshDatabase,
  ident,
  serverMajor,
  sharedClusters,
  uniqueName,
  waitFor,
} from '../support/fixtures.js';
import {
  collectingLogger,
  configFile,
  expectSameRows,
  freshPair,
  makeConfig,
  runCli,
  startDaemon,
  targetStatus,
  waitCaughtUp,
} from '../support/replication.js';

describe('session limits of the server', () => {
  it('do not stop a copy longer than the statement limit, nor end the sessions that wait idle', async () => {
    const { source, target1 } = sharedClusters();
    const [src, dst] = await Promise.all([freshDatabase(source), freshDatabase(target1)]);
    const role = uniqueName('limited');
    const password = 'limited-pw';
    const limits = [
      `set statement_timeout = '200ms'`,
      `set idle_in_transaction_session_timeout = '200ms'`,
      `set default_transaction_isolation = 'serializable'`,
      ...(serverMajor() >= 14 ? [`set idle_session_timeout = '500ms'`] : []),
      // PostgreSQL 17: ends the session of a transaction longer than this, the copy's among them.
      ...(serverMajor() >= 17 ? [`set transaction_timeout = '300ms'`] : []),
    ];
    for (const cluster of [source, target1]) {
      await createRole(cluster, role, password, { login: true, superuser: true });
      for (const limit of limits) await cluster.query(`alter role "${role}" ${limit}`);
    }
    await src.cluster.query(
      `create table items (id int primary key, v text);
       insert into items select g, 'v' || g from generate_series(1, 400) g`,
      [],
      src.name,
    );
    // Each row the target takes costs 2 ms: the copy's COPY runs 0.8 s or more on either side.
    await dst.cluster.query(
      `create table items (id int primary key, v text);
       create function slow() returns trigger language plpgsql as $$
         begin perform pg_sleep(0.002); return new; end $$;
       create trigger slow before insert on items for each row execute function slow();
       alter table items enable always trigger slow;`,
      [],
      dst.name,
    );
    const raw = {
      source: { url: source.url(src.name, { user: role, password }) },
      tables: ['items'],
      targets: [{ name: 'b', url: target1.url(dst.name, { user: role, password }), initialSync: 'copy' }],
      metrics: { enabled: false },
    };
    const config = makeConfig(raw);
    const { logger, lines } = collectingLogger();
    const daemon = await startDaemon(config, logger);
    try {
      await waitCaughtUp(config, 30_000);
      // Idle a while (every session of the daemon outlives the idle limit), then write again.
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      await src.cluster.query(
        `insert into items select g, 'w' || g from generate_series(401, 420) g`,
        [],
        src.name,
      );
      await waitCaughtUp(config, 30_000);
    } finally {
      await daemon.stop();
    }
    await expectSameRows(
      { url: src.url, query: 'select id, v from items' },
      { url: dst.url, query: 'select id, v from items' },
      'id',
    );
    expect(lines.filter((line) => /timeout|serializ/.test(line))).toEqual([]);
    // Every session of trigsync's, as it starts: READ COMMITTED unless a transaction asks for more (under
    // SERIALIZABLE its reads of the change log would join the writers' serialization checks).
    await withClient(config.source.url, daemonConnectOptions(config), async (client) => {
      const shown = await client.query<Record<string, string>>(
        `select current_setting('statement_timeout') as statement, current_setting('transaction_isolation') as isolation,
                current_setting('idle_in_transaction_session_timeout') as idle_in_transaction`,
      );
      expect(shown.rows).toEqual([{ statement: '0', isolation: 'read committed', idle_in_transaction: '0' }]);
    });
    // Dates in a style node-postgres does not parse: status read every timestamp as null, and failed.
    await source.query(`alter role "${role}" set datestyle = 'SQL, DMY'`);
    await source.query(`alter role "${role}" set intervalstyle = 'sql_standard'`);
    const status = await runCli(await configFile(raw), 'status');
    expect(status.code, status.out).toBe(0);
    expect(status.out).toMatch(/^b +last seen live +0 +\d/m);
    expect(status.out).toMatch(/daemon: not running \(last seen \d{4}-\d\d-\d\dT/);
  });

  it('a copy the target refuses midway, while the source still sends, parks the target and lets the daemon stop', async () => {
    const { source, target1 } = sharedClusters();
    const [src, dst] = await Promise.all([freshDatabase(source), freshDatabase(target1)]);
    await src.cluster.query(
      `create table items (id int primary key, v text);
       insert into items select g, repeat('v', 40) || g from generate_series(1, 300000) g`,
      [],
      src.name,
    );
    // Refused at its 101st row, megabytes before the source has sent them all.
    await dst.cluster.query(
      'create table items (id int primary key check (id <= 100), v text)',
      [],
      dst.name,
    );
    const raw = {
      source: { url: src.url },
      tables: ['items'],
      targets: [{ name: 'b', url: dst.url, initialSync: 'copy' }],
      retry: { initialDelayMs: 100, maxDelayMs: 1_000, dataErrorDelayMs: 60_000 },
      metrics: { enabled: false },
    };
    const config = makeConfig(raw);
    const daemon = await startDaemon(config);
    try {
      await waitFor(
        async () => {
          const target = await targetStatus(config, 'b');
          return target.state === 'parked' && /items_id_check/.test(target.lastError ?? '');
        },
        { what: 'target b parked on its check constraint', timeoutMs: 30_000 },
      );
      // The way out: the target takes the rows; retried, the copy goes through.
      await dst.cluster.query('alter table items drop constraint items_id_check', [], dst.name);
      expect((await runCli(await configFile(raw), 'retry', 'b')).code).toBe(0);
      await waitFor(
        async () => {
          const target = await targetStatus(config, 'b');
          return target.state !== 'parked' && target.copying === null;
        },
        { what: 'the retried copy to finish', timeoutMs: 60_000 },
      );
    } finally {
      await daemon.stop();
    }
    await expectSameRows(
      { url: src.url, query: 'select id, v from items' },
      { url: dst.url, query: 'select id, v from items' },
      'id',
    );
  });
  it("wait for a row an application holds locked on the target, whatever the database's lock_timeout", async () => {
    const { source, target1 } = sharedClusters();
    const [src, dst] = await Promise.all([freshDatabase(source), freshDatabase(target1)]);
    for (const db of [src, dst]) {
      await db.cluster.query(
        `create table items (id int primary key, v text);
         insert into items select g, 'v' || g from generate_series(1, 10) g`,
        [],
        db.name,
      );
    }
    // A guard for the target's applications; an expired wait went to the error queue as a refused change.
    await dst.cluster.query(`alter database ${ident(dst.name)} set lock_timeout = '100ms'`);
    const raw = {
      source: { url: src.url },
      tables: ['items'],
      targets: [{ name: 'b', url: dst.url, initialSync: 'none' }],
      apply: { pollIntervalMs: 100 },
      // A target parked on a refused change would not try again within the test.
      retry: { initialDelayMs: 50, maxDelayMs: 500, dataErrorDelayMs: 600_000 },
      metrics: { enabled: false },
    };
    const config = makeConfig(raw);
    const daemon = await startDaemon(config);
    const app = await connect(dst.url);
    try {
      await app.query('begin');
      await app.query('select * from items where id = 5 for update');
      await src.cluster.query(`update items set v = 'changed' where id = 5`, [], src.name);
      await src.cluster.query(`insert into items values (11, 'after')`, [], src.name);
      // trigsync's session waits on the row for longer than the database's lock_timeout.
      await waitFor(
        async () => {
          const [row] = await dst.cluster.query<{ n: number }>(
            `select count(*)::int as n from pg_stat_activity
              where datname = $1 and application_name = 'trigsync' and wait_event_type = 'Lock'
                and clock_timestamp() - query_start > interval '400 ms'`,
            [dst.name],
          );
          return row!.n > 0;
        },
        { what: "trigsync's apply to wait for the row longer than the lock_timeout", timeoutMs: 30_000 },
      );
      await app.query('commit');
      await waitCaughtUp(config, 30_000);
    } finally {
      await app.end();
      await daemon.stop();
    }
    const errors = JSON.parse((await runCli(await configFile(raw), 'errors', '--json')).out) as {
      errors: unknown[];
    };
    expect(errors.errors).toEqual([]);
    await expectSameRows(
      { url: src.url, query: 'select id, v from items' },
      { url: dst.url, query: 'select id, v from items' },
      'id',
    );
  });

  it("apply XML content and NULL array elements to a target database of xmloption document and array_nulls off: statements, COPY, a sync's copy, repair", async () => {
    const ddl = 'create table docs (id int primary key, x xml, tags text[])';
    const { src, dst } = await freshPair(ddl);
    const copied = await freshDatabase(sharedClusters().target1);
    await copied.cluster.query(ddl, [], copied.name);
    for (const db of [dst, copied]) {
      await db.cluster.query(
        `alter database ${ident(db.name)} set xmloption = document;
         alter database ${ident(db.name)} set array_nulls = off`,
      );
    }
    // Content, not documents: two elements, and text beside an element; arrays with a NULL element and
    // the string 'NULL' (which COPY's text tells apart only where array_nulls is on). Written before the
    // daemon starts, for the sync's copy of `copied`.
    const content = (from: number, to: number) =>
      `insert into docs select g, xmlparse(content '<a/>text <b n="' || g || '"/>'), array['t' || g, null, 'NULL']
         from generate_series(${from}, ${to}) g`;
    await src.cluster.query(content(1, 10), [], src.name);
    const raw = {
      source: { url: src.url },
      tables: ['docs'],
      targets: [
        { name: 'dst', url: dst.url, initialSync: 'none' },
        { name: 'copied', url: copied.url },
      ],
      retry: { initialDelayMs: 100, maxDelayMs: 1_000, dataErrorDelayMs: 500 },
      metrics: { enabled: false },
    };
    const config = makeConfig(raw);
    const daemon = await startDaemon(config);
    try {
      // One row at a time (statements), then thousands in one statement (COPY), and updates.
      await src.cluster.query(content(11, 12), [], src.name);
      await src.cluster.query(content(13, 3012), [], src.name);
      await src.cluster.query(
        `update docs set x = xmlparse(content 'just text') where id % 7 = 0`,
        [],
        src.name,
      );
      await waitCaughtUp(config, 30_000);
    } finally {
      await daemon.stop();
    }
    const query = 'select id, x::text as x, tags::text as tags from docs';
    await expectSameRows({ url: src.url, query }, { url: copied.url, query }, 'id');
    // And repair writes them back where they went missing.
    await copied.cluster.query('delete from docs where id between 100 and 120', [], copied.name);
    const repaired = await runCli(await configFile(raw), 'repair', 'copied');
    expect(repaired.code, repaired.out).toBe(0);
    await expectSameRows({ url: src.url, query }, { url: copied.url, query }, 'id');
    // dst took the stream only: the rows written after the daemon started.
    const streamed = `${query} where id > 10`;
    await expectSameRows({ url: src.url, query: streamed }, { url: dst.url, query: streamed }, 'id');
  });

  it('check names a temp_file_limit on the source, which a captured statement meets and one not captured does not', async () => {
    const { src, dst } = await freshPair('create table items (id int primary key, v text)');
    await src.cluster.query('create table other (id int primary key, v text)', [], src.name);
    await src.cluster.query(`alter database ${ident(src.name)} set temp_file_limit = '1MB'`);
    const raw = {
      source: { url: src.url },
      tables: ['items'],
      targets: [{ name: 'b', url: dst.url, initialSync: 'none' }],
      metrics: { enabled: false },
    };
    const file = await configFile(raw);
    expect((await runCli(file, 'install')).code).toBe(0);
    const checked = await runCli(file, 'check');
    expect(checked.out).toMatch(
      new RegExp(
        `WARNING temp_file_limit is set: 1MB \\(database ${src.name}\\)\\. A statement on a captured table`,
      ),
    );
    // What the warning is for: the statement's transition tables spill beyond work_mem, and count.
    const bulk = async (table: string): Promise<void> => {
      const client = await connect(src.url);
      try {
        await client.query(`set work_mem = '64kB'`);
        await client.query(
          `insert into ${table} select g, repeat('x', 100) from generate_series(1, 50000) g`,
        );
      } finally {
        await client.end();
      }
    };
    await expect(bulk('items')).rejects.toThrow(/temporary file size exceeds "temp_file_limit"/);
    await bulk('other');
  });
});
