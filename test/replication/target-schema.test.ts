// G8 on target schemas like users' own: an update that keeps its key arrives as an UPDATE (so the
// target's foreign-key actions, triggers and own columns see an update, not a delete and an insert);
// one batch is applied in an order the target's foreign keys accept; session_replication_role follows
// what the target role may set; truncates made together apply together; and the two images of an update
// are one change in the error queue.
import { describe, expect, it } from 'vitest';

import type { Config } from '../../src/config/types.js';
import {
  createRole,
  freshDatabase,
  ident,
  sharedClusters,
  uniqueName,
  waitFor,
  type FreshDatabase,
} from '../support/fixtures.js';
import {
  configFile,
  expectSameRows,
  makeConfig,
  runCli,
  startDaemon,
  runEach,
  targetStatus,
  waitAppliedOrParked,
  waitCaughtUp,
} from '../support/replication.js';

interface Pair {
  src: FreshDatabase;
  dst: FreshDatabase;
  config: Config;
  file: string;
}

/**
 * A source and a target database with `ddl` (the target with `targetDdl` instead when given), target
 * `dst` with initialSync none. `role: 'apply'` connects to the target as a role without superuser,
 * holding what apply needs: it may not set session_replication_role, so the target's ordinary triggers
 * and foreign-key actions fire on its writes.
 */
async function pair(
  tables: string[],
  ddl: string,
  options: {
    targetDdl?: string;
    role?: 'superuser' | 'apply';
    retry?: Record<string, number>;
    conflict?: 'apply' | 'skip' | 'park';
  } = {},
): Promise<Pair> {
  const { source, target1 } = sharedClusters();
  const [src, dst] = await Promise.all([freshDatabase(source), freshDatabase(target1)]);
  await source.query(ddl, [], src.name);
  await target1.query(options.targetDdl ?? ddl, [], dst.name);
  let url = dst.url;
  if (options.role === 'apply') {
    const role = uniqueName('apply');
    const password = `pw-${role}`;
    await createRole(target1, role, password);
    // The grants of docs/operations.md, with UPDATE: an update in place needs it.
    await target1.query(
      `grant usage on schema public to ${ident(role)};
       grant select, insert, update, delete, truncate on all tables in schema public to ${ident(role)};
       create schema trigsync authorization ${ident(role)};`,
      [],
      dst.name,
    );
    url = target1.url(dst.name, { user: role, password });
  }
  const raw = {
    source: { url: src.url },
    tables,
    targets: [{ name: 'dst', url, initialSync: 'none', conflict: options.conflict ?? 'apply' }],
    apply: { pollIntervalMs: 100 },
    retry: { initialDelayMs: 100, maxDelayMs: 1_000, ...options.retry },
    metrics: { enabled: false },
  };
  return { src, dst, config: makeConfig(raw), file: await configFile(raw) };
}

async function expectSameTables(p: Pair, ...tables: string[]): Promise<void> {
  for (const table of tables) {
    const query = `select * from ${table}`;
    await expectSameRows({ url: p.src.url, query }, { url: p.dst.url, query }, 'id');
  }
}

const parentChild = (fk: string): string => `
  create table parent (id int primary key, name text not null);
  create table child (id int primary key, parent_id int not null references parent ${fk});`;

const familyRows = `
  insert into parent select g, 'p' || g from generate_series(1, 10) g;
  insert into child select g, (g - 1) % 10 + 1 from generate_series(1, 30) g;`;

describe('a target with foreign keys', () => {
  it('a child survives every replicated update of its parent', async () => {
    // On delete cascade: were an update a delete and an insert, the target would delete the children.
    const p = await pair(['parent', 'child'], parentChild('on delete cascade'), { role: 'apply' });
    const daemon = await startDaemon(p.config);
    await runEach(p.src.url, familyRows);
    await waitAppliedOrParked(p.config);
    for (let round = 1; round <= 3; round++) {
      const singles = Array.from(
        { length: 10 },
        (_, i) => `update parent set name = 'p${i + 1} r${round}' where id = ${i + 1}`,
      );
      await runEach(p.src.url, ...singles, `update parent set name = name || '!'`);
    }
    await waitAppliedOrParked(p.config);
    await expectSameTables(p, 'parent', 'child');
    await daemon.stop();
  });

  it('identity columns GENERATED ALWAYS, as the source has them: updates in place, key moves, copies and merges', async () => {
    // An UPDATE may not write such a column ("can only be updated to DEFAULT"): every replicated update
    // of these tables parked the target.
    const ddl = `create table ga (id int generated always as identity primary key, v text, n int,
                        ticket int generated always as identity);
       create table ga_child (id bigint generated always as identity primary key,
                              ga_id int references ga on update cascade on delete cascade,
                              serial_no int generated always as identity, note text);`;
    const p = await pair(['ga', 'ga_child'], ddl);
    const daemon = await startDaemon(p.config);
    try {
      await runEach(
        p.src.url,
        `insert into ga (v, n) select 'v' || g, g from generate_series(1, 20) g`,
        `insert into ga_child (ga_id, note) select 1 + g % 20, 'c' || g from generate_series(1, 40) g`,
      );
      // Applied first: changes of a key within one batch become its last state, an insert.
      await waitAppliedOrParked(p.config);
      await runEach(
        p.src.url,
        `update ga set v = v || '!' where id <= 5`,
        `update ga_child set note = note || '?' where id % 3 = 0`,
        // A new key drawn for a row: the row moves (the children follow by the cascade on both sides).
        `update ga set id = default where id in (2, 7)`,
        `delete from ga where id = 9`,
        // Large enough to go by COPY.
        `insert into ga (v, n) select 'bulk', g from generate_series(1, 3000) g`,
      );
      await waitAppliedOrParked(p.config);
      await expectSameTables(p, 'ga', 'ga_child');
      // A copy over rows the target holds already (merged: updated where they differ), after the
      // target's rows drifted.
      await p.dst.cluster.query(`update ga set v = 'drifted' where id <= 10`, [], p.dst.name);
      const synced = await runCli(p.file, 'sync', 'dst', '--table', 'ga');
      expect(synced.code, synced.out).toBe(0);
      await expectSameTables(p, 'ga', 'ga_child');
    } finally {
      await daemon.stop();
    }
  });

  it('check warns of a target column GENERATED ALWAYS AS IDENTITY whose source column is plain', async () => {
    const p = await pair(['tickets'], 'create table tickets (id int primary key, seq int, note text)', {
      targetDdl: 'create table tickets (id int primary key, seq int generated always as identity, note text)',
    });
    const checked = await runCli(p.file, 'check');
    expect(checked.out).toContain(
      'targets.dst: public.tickets -> public.tickets: column(s) seq are GENERATED ALWAYS AS IDENTITY on the ' +
        'target and not on the source: an UPDATE cannot write them, so their changes on the source do not ' +
        'arrive; make them GENERATED BY DEFAULT on the target',
    );
  });

  it('check warns of target columns that would fail every insert or change values on the way, and of no other', async () => {
    const p = await pair(
      ['tickets'],
      `create table tickets (id int primary key, note varchar(20), price numeric(12,4), paid_at timestamptz(3),
         at timestamptz, rate float8, qty int, doubled int generated always as (qty * 2) stored)`,
      {
        targetDdl: `create table tickets (id bigint primary key, note text, price numeric(10,2), paid_at timestamptz,
          at timestamp, rate float8, qty numeric, tenant int not null, made_at timestamptz not null default now(),
          n int not null generated always as identity, twice int not null generated always as (id * 2) stored,
          flagged boolean, doubled int)`,
      },
    );
    const checked = await runCli(p.file, 'check');
    const where = 'targets.dst: public.tickets -> public.tickets';
    expect(checked.out).toContain(
      `${where}: target column(s) tenant are NOT NULL without a default, and the source gives them no value: ` +
        'every insert fails (the target parks) unless a trigger of the target fills them; give them a ' +
        'default, or replicate them',
    );
    expect(checked.out).toContain(
      `${where}: column price is numeric(12,4) on the source and numeric(10,2) on the target: values are ` +
        'rounded to 2 decimal place(s)',
    );
    expect(checked.out).toContain(
      `${where}: column at is timestamp with time zone on the source and timestamp without time zone on the ` +
        'target: values lose their time zone offset',
    );
    expect(checked.out).toContain(
      `${where}: column(s) doubled are generated on the source and plain on the target: their values are ` +
        'not replicated (the target keeps its default); make them generated on the target too, or list ' +
        "them in the target's columns (a stored one only)",
    );
    expect(checked.out.match(/WARNING/g)).toHaveLength(4);
  });

  it('a cascading key change applies on a target with the same foreign key', async () => {
    // The source's ON UPDATE CASCADE logs the children's new parent before the parent's new key.
    const p = await pair(['parent', 'child'], parentChild('on update cascade on delete restrict'), {
      role: 'apply',
    });
    const daemon = await startDaemon(p.config);
    await runEach(p.src.url, familyRows);
    await waitAppliedOrParked(p.config);
    await runEach(
      p.src.url,
      'update parent set id = id + 100 where id <= 3',
      `update parent set id = 50, name = 'moved' where id = 4`,
    );
    await waitAppliedOrParked(p.config);
    await expectSameTables(p, 'parent', 'child');
    await daemon.stop();
  });

  it("a delete that finds no row is a conflict unless the target's own ON DELETE CASCADE took it", async () => {
    const p = await pair(['parent', 'child'], parentChild('on delete cascade'), {
      role: 'apply',
      conflict: 'park',
    });
    const daemon = await startDaemon(p.config);
    try {
      await runEach(p.src.url, familyRows);
      await waitAppliedOrParked(p.config);
      // Written on the target alone: parent 1 with its children 1, 11 and 21 by the cascade; child 2 alone.
      await runEach(p.dst.url, 'delete from parent where id = 1', 'delete from child where id = 2');
      // Its parent gone, child 11's row went with it: the delete finds the target as it leaves it.
      await runEach(p.src.url, 'delete from child where id = 11');
      await waitAppliedOrParked(p.config);
      // Parent 2 is there: nothing but another writer explains child 2's absence.
      await runEach(p.src.url, 'delete from child where id = 2');
      const status = await waitFor(
        async () => {
          const s = await targetStatus(p.config, 'dst');
          return s.state === 'parked' ? s : undefined;
        },
        { what: 'the target to park on the conflict' },
      );
      expect(status.lastError).toMatch(/conflict: delete of public\.child \{"id":2\} found no row/);
    } finally {
      await daemon.stop();
    }
  });

  it('parents deleted under ON DELETE SET NULL on both sides: no conflict, the children as the source has them', async () => {
    const ddl = `create table parent (id int primary key, name text not null);
       create table child (id int primary key, parent_id int references parent on delete set null, v text);`;
    const p = await pair(['parent', 'child'], ddl, { role: 'apply', conflict: 'park' });
    const daemon = await startDaemon(p.config);
    try {
      await runEach(
        p.src.url,
        familyRows.replace('from generate_series(1, 30)', ", 'c' from generate_series(1, 30)"),
      );
      // The target's own action sets the children's key to NULL before their updates arrive.
      await runEach(
        p.src.url,
        'delete from parent where id in (3, 4)',
        `begin; delete from parent where id = 5; update child set v = 'after' where parent_id is null; commit`,
      );
      await waitAppliedOrParked(p.config);
      await expectSameTables(p, 'parent', 'child');
    } finally {
      await daemon.stop();
    }
  });

  it('rows that trade unique values through a spare one apply on a target that checks its unique key at once', async () => {
    // The source moves items within a list by way of a spare position, as apps reorder lists; the batch
    // holds only where each item ends up, and a target that checks (list_id, pos) row by row may see two
    // items at one position midway.
    const ddl = `create table item (id int primary key, list_id int not null, pos int not null, unique (list_id, pos));`;
    const p = await pair(['item'], ddl, { conflict: 'park' });
    const daemon = await startDaemon(p.config);
    try {
      await runEach(p.src.url, 'insert into item select g, g % 5, g / 5 from generate_series(0, 99) g');
      await waitAppliedOrParked(p.config);
      await runEach(
        p.src.url,
        `begin;
         update item set pos = -1 where list_id = 1 and pos = 1;
         update item set pos = 1 where list_id = 1 and pos = 2;
         update item set pos = 2 where list_id = 1 and pos = -1;
         commit`,
        `begin;
         update item set pos = -pos - 1 where list_id = 2;
         update item set pos = 19 - (-pos - 1) where list_id = 2;
         commit`,
      );
      await waitAppliedOrParked(p.config);
      await expectSameTables(p, 'item');
    } finally {
      await daemon.stop();
    }
  });

  it('children logged before their parent apply on a target that checks its foreign key at once', async () => {
    // A deferred key on the source lets a transaction write children first; the target's is immediate.
    const p = await pair(['parent', 'child'], parentChild('deferrable initially deferred'), {
      targetDdl: parentChild(''),
      role: 'apply',
    });
    const daemon = await startDaemon(p.config);
    await runEach(
      p.src.url,
      `begin; insert into child values (1, 1), (2, 1), (3, 2);
       insert into parent values (1, 'one'), (2, 'two'), (3, 'three'); commit`,
    );
    await waitAppliedOrParked(p.config);
    // The parent deleted before its children, and a child moved to a parent inserted after it.
    await runEach(
      p.src.url,
      `begin; delete from parent where id = 1; delete from child where parent_id = 1;
       update child set parent_id = 4 where id = 3; insert into parent values (4, 'four'); commit`,
    );
    await waitAppliedOrParked(p.config);
    await expectSameTables(p, 'parent', 'child');
    await daemon.stop();
  });

  // The source logs a truncate of each table; apart, the target refuses the parent's.
  it.each([
    ['TRUNCATE parent CASCADE applies on a target with the same foreign keys', 'truncate parent cascade'],
    ['TRUNCATE of two linked tables in one statement applies as one', 'truncate child, parent'],
  ])('%s', async (_, truncate) => {
    const p = await pair(['parent', 'child'], parentChild(''));
    const daemon = await startDaemon(p.config);
    await runEach(p.src.url, familyRows);
    await waitAppliedOrParked(p.config);
    await runEach(p.src.url, truncate, `insert into parent values (7, 'after')`);
    await runEach(p.src.url, 'insert into child values (70, 7)');
    await waitAppliedOrParked(p.config);
    await expectSameTables(p, 'parent', 'child');
    await daemon.stop();
  });
});

// Counts each row event a target trigger sees, by tag (tg_argv[0]), operation and key. Security definer:
// the apply role needs no privilege on the target's own audit table.
const audit = `
  create table events (tag text, op text, id int);
  create function count_event() returns trigger language plpgsql security definer as $$
  begin
    insert into events values (tg_argv[0], tg_op, case when tg_op = 'DELETE' then old.id else new.id end);
    if tg_op = 'DELETE' then return old; end if;
    return new;
  end $$;`;

const items = 'create table items (id int primary key, qty int not null, label text);';

function trigger(name: string, tag: string, enable?: 'always' | 'replica'): string {
  return `create trigger ${name} before insert or update or delete on items
            for each row execute function count_event('${tag}');
          ${enable === undefined ? '' : `alter table items enable ${enable} trigger ${name};`}`;
}

const [rowCount, updatesPerRow] = [10, 4];

/** N rows, caught up; then K single-row updates of a non-key column per row, and one of every row. */
async function insertThenUpdate(p: Pair): Promise<void> {
  await runEach(p.src.url, `insert into items select g, 0 from generate_series(1, ${rowCount}) g`);
  // Caught up first, so that every row's updates come in batches after its insert.
  await waitAppliedOrParked(p.config);
  const updates: string[] = [];
  for (let k = 1; k < updatesPerRow; k++)
    for (let id = 1; id <= rowCount; id++) updates.push(`update items set qty = ${k} where id = ${id}`);
  await runEach(p.src.url, ...updates, `update items set label = 'last'`);
  await waitAppliedOrParked(p.config);
}

/** Events of one tag: INSERT and DELETE counts, and per key its UPDATE count. */
async function eventsOf(p: Pair, tag: string) {
  const rows = await p.dst.cluster.query<{ op: string; id: number; n: number }>(
    `select op, id, count(*)::int as n from events where tag = $1 group by op, id`,
    [tag],
    p.dst.name,
  );
  const count = (op: string): number => rows.filter((r) => r.op === op).reduce((n, r) => n + r.n, 0);
  const updates = new Map(rows.filter((r) => r.op === 'UPDATE').map((r) => [r.id, r.n]));
  return { inserts: count('INSERT'), deletes: count('DELETE'), updates };
}

/**
 * Several updates of one key in one batch may arrive as one: each key sees between one UPDATE and as
 * many as the source made; never a DELETE; one INSERT per row.
 */
function expectOneUpdatePerUpdate(seen: Awaited<ReturnType<typeof eventsOf>>): void {
  expect(seen.deletes).toBe(0);
  expect(seen.inserts).toBe(rowCount);
  for (let id = 1; id <= rowCount; id++) {
    expect(seen.updates.get(id) ?? 0, `UPDATEs of key ${id}`).toBeGreaterThanOrEqual(1);
    expect(seen.updates.get(id) ?? 0, `UPDATEs of key ${id}`).toBeLessThanOrEqual(updatesPerRow);
  }
}

describe('target triggers and columns', () => {
  it('a target BEFORE UPDATE trigger sees one UPDATE per replicated non-key update', async () => {
    const p = await pair(['items'], items, {
      targetDdl: items + audit + trigger('counted', 'origin'),
      role: 'apply',
    });
    const daemon = await startDaemon(p.config);
    await insertThenUpdate(p);
    expectOneUpdatePerUpdate(await eventsOf(p, 'origin'));
    await expectSameTables(p, 'items');
    await daemon.stop();
  });

  it('as a superuser, only ENABLE ALWAYS and ENABLE REPLICA triggers fire on the target', async () => {
    // session_replication_role = replica: the target's ordinary triggers are for its own applications.
    const targetDdl =
      items +
      audit +
      trigger('ordinary', 'origin') +
      trigger('always', 'always', 'always') +
      trigger('replica', 'replica', 'replica');
    const p = await pair(['items'], items, { targetDdl });
    const daemon = await startDaemon(p.config);
    await insertThenUpdate(p);
    expectOneUpdatePerUpdate(await eventsOf(p, 'always'));
    expectOneUpdatePerUpdate(await eventsOf(p, 'replica'));
    expect(await eventsOf(p, 'origin')).toEqual({ inserts: 0, deletes: 0, updates: new Map() });
    await expectSameTables(p, 'items');
    await daemon.stop();
  });

  it('a target-only column keeps its value across replicated updates', async () => {
    const targetDdl = `create table items (id int primary key, qty int not null, label text,
                         note text, archived_at timestamptz default clock_timestamp());`;
    const p = await pair(['items'], items, { targetDdl });
    const daemon = await startDaemon(p.config);
    await runEach(p.src.url, `insert into items select g, g, 'new' from generate_series(1, 10) g`);
    await waitAppliedOrParked(p.config);
    // An application of the target's own (not trigsync's application_name) notes some rows.
    await runEach(p.dst.url, `update items set note = 'noted ' || id where id <= 5`);
    const own = 'select id, note, archived_at::text from items order by id';
    const before = await p.dst.cluster.query(own, [], p.dst.name);
    await runEach(
      p.src.url,
      'update items set qty = qty + 1 where id = 1',
      'update items set qty = qty + 1 where id = 6',
      `update items set qty = qty * 10, label = 'updated' where id between 1 and 8`,
    );
    await waitAppliedOrParked(p.config);
    expect(await p.dst.cluster.query(own, [], p.dst.name)).toEqual(before);
    const query = 'select id, qty, label from items';
    await expectSameRows({ url: p.src.url, query }, { url: p.dst.url, query }, 'id');
    await daemon.stop();
  });
});

type QueuedError = { changeId: number; table: string; key: string | null; sqlstate: string | null };

/** The error queue once dst has parked on a change. */
async function parkedOn(file: string): Promise<QueuedError[]> {
  return waitFor(
    async () => {
      const { errors } = JSON.parse((await runCli(file, 'errors', 'dst', '--json')).out) as {
        errors: QueuedError[];
      };
      return errors.length > 0 ? errors : undefined;
    },
    { what: 'dst to park on a change', timeoutMs: 20_000 },
  );
}

describe('the error queue', () => {
  it('skip of a failed update removes both halves', async () => {
    const targetDdl = `create table items (id int primary key constraint small_id check (id < 1000),
                         qty int not null constraint small_qty check (qty < 100), label text);`;
    // A long data-error delay: draining within the test proves that skip acts at once.
    const p = await pair(['items'], items, { targetDdl, retry: { dataErrorDelayMs: 600_000 } });
    const daemon = await startDaemon(p.config);
    await runEach(p.src.url, `insert into items select g, g, 'old' from generate_series(1, 20) g`);
    await waitAppliedOrParked(p.config);
    const atTarget = (id: number) =>
      p.dst.cluster.query('select id, qty, label from items where id = $1', [id], p.dst.name);

    // An update that keeps its key and that the target refuses, and changes after it.
    await runEach(
      p.src.url,
      `update items set qty = 500, label = 'refused' where id = 5`,
      'update items set qty = qty + 1 where id = 6',
      `insert into items values (21, 21, 'later')`,
    );
    let errors = await parkedOn(p.file);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ table: 'public.items', key: '{"id":5}', sqlstate: '23514' });
    // Parked behind it, the target still has the row as it was before.
    expect(await atTarget(5)).toEqual([{ id: 5, qty: 5, label: 'old' }]);
    const skipped = await runCli(p.file, 'skip', 'dst', String(errors[0]!.changeId), '--yes');
    expect(skipped.code, skipped.out).toBe(0);
    await waitCaughtUp(p.config, 20_000);
    expect(await atTarget(5)).toEqual([{ id: 5, qty: 5, label: 'old' }]);
    const others = 'select * from items where id <> 5';
    await expectSameRows({ url: p.src.url, query: others }, { url: p.dst.url, query: others }, 'id');

    // An update to a key the target refuses: skipped, neither the old key nor the new one changes.
    await runEach(
      p.src.url,
      `update items set id = 5000, label = 'moved' where id = 7`,
      `insert into items values (22, 22, 'later')`,
    );
    errors = await parkedOn(p.file);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ table: 'public.items', sqlstate: '23514' });
    expect(await atTarget(7)).toEqual([{ id: 7, qty: 7, label: 'old' }]);
    const again = await runCli(p.file, 'skip', 'dst', String(errors[0]!.changeId), '--yes');
    expect(again.code, again.out).toBe(0);
    await waitCaughtUp(p.config, 20_000);
    expect(await atTarget(7)).toEqual([{ id: 7, qty: 7, label: 'old' }]);
    expect(await atTarget(5000)).toEqual([]);
    const rest = 'select * from items where id not in (5, 7, 5000)';
    await expectSameRows({ url: p.src.url, query: rest }, { url: p.dst.url, query: rest }, 'id');
    expect(JSON.parse((await runCli(p.file, 'errors', 'dst', '--json')).out)).toEqual({
      errors: [],
      parked: [],
    });
    await daemon.stop();
  });
});

// Key types, each with four keys: three inserted, the second then moved to the fourth.
const keyTypes: Record<string, { type: string; keys: [string, string, string, string] }> = {
  k_array: { type: 'int[]', keys: [`'{1,2}'`, `'{3}'`, `'{}'`, `'{4,NULL}'`] },
  k_composite: {
    type: 'pair',
    keys: [`row(1, 'a')::pair`, `row(2, 'b, "c"')::pair`, `row(3, null)::pair`, `row(4, 'd')::pair`],
  },
  k_enum: { type: 'mood', keys: [`'sad'`, `'ok'`, `'it''s'`, `'happy'`] },
  k_domain: { type: 'positive', keys: ['1', '2', '3', '4'] },
  k_range: { type: 'int4range', keys: [`'[1,5)'`, `'empty'`, `'[3,)'`, `'(,0]'`] },
  // 1.0 and 1 are equal keys with other texts: the target's row must be found by value.
  k_numeric: { type: 'numeric', keys: ['1.0', '2.50', '3', '4.000'] },
};

const keyTypesDdl =
  `create type pair as (a int, b text); create type mood as enum ('sad', 'ok', 'happy', 'it''s');
   create domain positive as int check (value > 0);` +
  Object.entries(keyTypes)
    .map(([table, { type }]) => `create table ${table} (id ${type} primary key, v text);`)
    .join('\n');

describe('key types', () => {
  it('inserts, updates, moves and deletes rows keyed by an array, a composite, an enum, a domain, a range, a numeric', async () => {
    const tables = Object.keys(keyTypes);
    const p = await pair(tables, keyTypesDdl);
    const daemon = await startDaemon(p.config);
    for (const [table, { keys }] of Object.entries(keyTypes)) {
      await runEach(
        p.src.url,
        `insert into ${table} values (${keys[0]}, 'a'), (${keys[1]}, 'b'), (${keys[2]}, 'c')`,
      );
    }
    await waitAppliedOrParked(p.config);
    for (const [table, { keys }] of Object.entries(keyTypes)) {
      await runEach(
        p.src.url,
        `update ${table} set v = 'one' where id = ${keys[0]}`,
        `update ${table} set v = v || '+'`,
        `update ${table} set id = ${keys[3]} where id = ${keys[1]}`,
        `delete from ${table} where id = ${keys[2]}`,
      );
    }
    await waitAppliedOrParked(p.config);
    // Every key found on the target: the non-key update of 1.0 included.
    expect(
      await p.dst.cluster.query('select id::text, v from k_numeric order by id', [], p.dst.name),
    ).toEqual([
      { id: '1.0', v: 'one+' },
      { id: '4.000', v: 'b+' },
    ]);
    await expectSameTables(p, ...tables);
    await daemon.stop();
  });
});
