// A multi-master mesh for tests: one node per shared cluster, each a database owned by a login role of
// its own (never a superuser) that creates the tables itself; one daemon config per node whose targets
// are the other nodes; writers that touch only their node's keys and count what they committed; and a
// test-only copy of every node's change log, which the daemons prune.
import { randomBytes } from 'node:crypto';

import pg from 'pg';

import type { Config } from '../../src/config/types.js';
import { withClient } from './cluster.js';
import {
  createRole,
  freshDatabase,
  sharedClusters,
  uniqueName,
  type FreshDatabase,
  type PgCluster,
} from './fixtures.js';
import { makeConfig } from './replication.js';

/**
 * The replicated tables: an int key, a composite key and a text key. `owner` is the index of the node
 * that owns a logged row image (`row`, json): node i writes only keys with mod(key, N) = i, and tag
 * names that start with `i:`.
 */
export const meshTables = [
  { name: 'items', key: 'id', owner: `mod((row->>'id')::bigint, $1)` },
  { name: 'lines', key: '(order_id, line)', owner: `mod((row->>'order_id')::bigint, $1)` },
  { name: 'tags', key: 'name', owner: `split_part(row->>'name', ':', 1)::int` },
] as const;
export type MeshTable = (typeof meshTables)[number]['name'];

const tablesDdl = `
  create table items (id bigint primary key, v int not null, payload text, touched_by text);
  create table lines (order_id bigint, line int, sku text not null, qty int not null, primary key (order_id, line));
  create table tags (name text collate "C" primary key, id uuid not null default gen_random_uuid(), weight numeric);`;

export interface MeshNode {
  index: number;
  /** Target name of this node in the other nodes' configs. */
  name: string;
  /** The database, with its superuser URL (for the test-only audit). */
  db: FreshDatabase;
  role: string;
  /** The node role's URL: the only one the daemons use. */
  url: string;
}

/**
 * n nodes (n <= 3), each on its own shared cluster (or on the clusters given, one node each), with the
 * tables created by the node's role, which is no superuser.
 */
export async function meshNodes(n: number, on?: readonly PgCluster[]): Promise<MeshNode[]> {
  const { source, target1, target2 } = sharedClusters();
  const clusters = (on ?? [source, target1, target2]).slice(0, n);
  return Promise.all(
    clusters.map(async (cluster, index) => {
      const name = `node_${'abc'[index]!}`;
      const role = uniqueName(`mesh_${name}`);
      const password = randomBytes(12).toString('hex');
      await createRole(cluster, role, password, { login: true, superuser: false });
      const db = await freshDatabase(cluster, { owner: role });
      const url = cluster.url(db.name, { user: role, password });
      await withClient(url, (client) => client.query(tablesDdl));
      return { index, name, db, role, url };
    }),
  );
}

/** Node i's daemon: its own database as the source, every other node as a target. */
export function meshConfig(nodes: readonly MeshNode[], index: number): Config {
  return makeConfig({
    source: { url: nodes[index]!.url },
    tables: meshTables.map((t) => t.name),
    targets: nodes
      .filter((node) => node.index !== index)
      .map((node) => ({ name: node.name, url: node.url, initialSync: 'none' })),
  });
}

/** Every database URL a config makes the daemon connect with. */
export function configUrls(config: Config): string[] {
  return [config.source.url, ...config.targets.map((t) => t.url)];
}

/**
 * Test only: copy every row logged on the node into mesh_audit.logged, since the daemons prune the log.
 * Installed as the superuser; the capture function inserts into the log as the node's role.
 */
export async function installAudit(node: MeshNode, schema = 'trigsync'): Promise<void> {
  const sql = `
    create schema mesh_audit;
    create table mesh_audit.logged (relid oid not null, op "char" not null, row json, txid xid8 not null);
    create function mesh_audit.copy() returns trigger language plpgsql security definer
      set search_path = pg_catalog as $$
    begin
      insert into mesh_audit.logged select relid, op, row, txid from added;
      return null;
    end $$;
    create trigger mesh_audit_copy after insert on ${pg.escapeIdentifier(schema)}.change_log
      referencing new table as added for each statement execute function mesh_audit.copy();`;
  await node.db.cluster.query(sql, [], node.db.name);
}

/** Logged changes per operation: an UPDATE is one change per row (old and new image together). */
export type OpCounts = Record<'I' | 'U' | 'D', number>;

export interface AuditReport {
  logged: Record<MeshTable, OpCounts>;
  total: number;
  /** Logged rows whose key belongs to another node's range: echoes. */
  foreign: { table: string; op: string; row: string }[];
}

const noOps = (): OpCounts => ({ I: 0, U: 0, D: 0 });
const perTable = (): Record<MeshTable, OpCounts> => ({ items: noOps(), lines: noOps(), tags: noOps() });

/** What the node's log has ever held, per table and operation, and the rows of other nodes' ranges. */
export async function readAudit(node: MeshNode, nodeCount: number): Promise<AuditReport> {
  const ownerOf = `case c.relname ${meshTables.map((t) => `when '${t.name}' then ${t.owner}`).join(' ')} end`;
  const from = `from mesh_audit.logged l join pg_class c on c.oid = l.relid`;
  const { cluster, name } = node.db;
  const counts = await cluster.query<{ t: MeshTable; op: keyof OpCounts; n: number }>(
    `select c.relname::text as t, l.op::text as op, count(*)::int as n ${from} group by 1, 2`,
    [],
    name,
  );
  const foreign = await cluster.query<AuditReport['foreign'][number]>(
    `select c.relname::text as table, l.op::text as op, l.row::text as row
       ${from} where ${ownerOf} is distinct from $2 limit 10`,
    [nodeCount, node.index],
    name,
  );
  const logged = perTable();
  let total = 0;
  for (const { t, op, n } of counts) {
    logged[t][op] = n;
    total += n;
  }
  return { logged, total, foreign };
}

/** count(*) of a table of the node: `mesh_audit.logged` (everything logged so far), `trigsync.change_log`. */
export async function countRows(node: MeshNode, table: string): Promise<number> {
  const [row] = await node.db.cluster.query<{ n: string }>(
    `select count(*) as n from ${table}`,
    [],
    node.db.name,
  );
  return Number(row?.n ?? 0);
}

export interface NodeTally {
  commits: number;
  rollbacks: number;
  /** Transactions rolled back after an error (deadlock or duplicate key between the node's writers). */
  failed: number;
  /** Rows changed by committed transactions, as the log should hold them (an update logs V and U). */
  changes: Record<MeshTable, OpCounts>;
}

const random = (n: number): number => 1 + Math.floor(Math.random() * n);

/** One transaction's worth of row counts, added to the tally only if it commits. */
type Track = (table: MeshTable, op: 'I' | 'U' | 'D', result: pg.QueryResult) => void;

/** What a statement may touch: node i of n writes keys with mod(key, n) = i and tag names `i:k`. */
interface Range {
  i: number;
  n: number;
  key(): number;
  tag(): string;
  writer: string;
}

/** The statements writers choose from, each counted as the rows it changed (an update logs V and U). */
const statements: { table: MeshTable; op: 'I' | 'U' | 'D'; sql: string; params(r: Range): unknown[] }[] = [
  {
    table: 'items',
    op: 'I',
    sql: `insert into items values ($1, 0, md5(random()::text), $2) on conflict do nothing`,
    params: (r) => [r.key(), r.writer],
  },
  {
    table: 'items',
    op: 'U',
    sql: `update items set v = v + 1, payload = md5(random()::text), touched_by = $2 where id = $1`,
    params: (r) => [r.key(), r.writer],
  },
  { table: 'items', op: 'D', sql: `delete from items where id = $1`, params: (r) => [r.key()] },
  {
    // The key changes, within the node's range.
    table: 'items',
    op: 'U',
    sql: `update items set id = $2 where id = $1 and not exists (select from items where id = $2)`,
    params: (r) => [r.key(), r.key()],
  },
  {
    table: 'items',
    op: 'U',
    sql: `update items set v = v + 10, touched_by = $3 where id between $1 and $2 and mod(id, $4) = $5`,
    params: (r) => [r.key(), r.key() + 10 * r.n, r.writer, r.n, r.i],
  },
  {
    table: 'items',
    op: 'I',
    sql: `insert into items select g, 1, 'bulk', $3 from generate_series($1::bigint, $2::bigint) g
            where mod(g, $4) = $5 on conflict do nothing`,
    params: (r) => [r.key(), r.key() + 8 * r.n, r.writer, r.n, r.i],
  },
  {
    table: 'items',
    op: 'D',
    sql: `delete from items where id between $1 and $2 and mod(id, $3) = $4`,
    params: (r) => [r.key(), r.key() + 3 * r.n, r.n, r.i],
  },
  {
    table: 'lines',
    op: 'I',
    sql: `insert into lines select $1, l, 'sku-' || l, l from generate_series(1, $2::int) l on conflict do nothing`,
    params: (r) => [r.key(), random(5)],
  },
  {
    table: 'lines',
    op: 'U',
    sql: `update lines set qty = qty + 1, sku = sku || '+' where order_id = $1`,
    params: (r) => [r.key()],
  },
  {
    // A key column changes for several rows at once: the order's lines move to another order.
    table: 'lines',
    op: 'U',
    sql: `update lines set order_id = $2 where order_id = $1 and not exists (select from lines where order_id = $2)`,
    params: (r) => [r.key(), r.key()],
  },
  {
    table: 'lines',
    op: 'D',
    sql: `delete from lines where order_id = $1 and line > $2`,
    params: (r) => [r.key(), random(4) - 1],
  },
  {
    table: 'tags',
    op: 'I',
    sql: `insert into tags (name, weight) values ($1, round((random() * 100)::numeric, 2)), ($2, 1)
            on conflict do nothing`,
    params: (r) => [r.tag(), r.tag()],
  },
  {
    table: 'tags',
    op: 'U',
    sql: `update tags set weight = weight + 1, id = gen_random_uuid() where name = $1`,
    params: (r) => [r.tag()],
  },
  {
    table: 'tags',
    op: 'U',
    sql: `update tags set name = $2 where name = $1 and not exists (select from tags where name = $2)`,
    params: (r) => [r.tag(), r.tag()],
  },
  { table: 'tags', op: 'D', sql: `delete from tags where name = $1`, params: (r) => [r.tag()] },
];

async function operation(db: pg.Client, range: Range, track: Track): Promise<void> {
  const statement = statements[random(statements.length) - 1]!;
  track(statement.table, statement.op, await db.query(statement.sql, statement.params(range)));
}

export interface MeshWorkload {
  tallies: NodeTally[];
  /** When the last writer stopped. */
  endedAt: number;
}

/** `writersPerNode` writers on every node, each on its node's keys only, for durationMs. */
export async function runMeshWriters(
  nodes: readonly MeshNode[],
  { writersPerNode, durationMs }: { writersPerNode: number; durationMs: number },
): Promise<MeshWorkload> {
  const deadline = Date.now() + durationMs;
  const tallies = nodes.map((): NodeTally => ({ commits: 0, rollbacks: 0, failed: 0, changes: perTable() }));

  const writer = async (node: MeshNode, name: string): Promise<void> => {
    const tally = tallies[node.index]!;
    const [i, n, keys] = [node.index, nodes.length, 150];
    const range: Range = {
      i,
      n,
      key: () => i + n * random(keys),
      tag: () => `${i}:${random(keys)}`,
      writer: name,
    };
    const db = new pg.Client({ connectionString: node.url, application_name: `mesh-${name}` });
    db.on('error', () => undefined);
    await db.connect();
    try {
      while (Date.now() < deadline) {
        const pending: [MeshTable, 'I' | 'U' | 'D', number][] = [];
        const track: Track = (table, op, result) => void pending.push([table, op, result.rowCount ?? 0]);
        try {
          await db.query('begin');
          for (let ops = random(4); ops > 0; ops--) await operation(db, range, track);
          if (Math.random() < 0.1) {
            await db.query('rollback');
            tally.rollbacks++;
            continue;
          }
          await db.query('commit');
        } catch {
          await db.query('rollback').catch(() => undefined);
          tally.failed++;
          continue;
        }
        tally.commits++;
        for (const [table, op, rows] of pending) {
          tally.changes[table][op] += rows;
        }
      }
    } finally {
      await db.end();
    }
  };

  await Promise.all(
    nodes.flatMap((node) =>
      Array.from({ length: writersPerNode }, (_, w) => writer(node, `${node.name}_w${w}`)),
    ),
  );
  return { tallies, endedAt: Date.now() };
}

/** rolsuper of the role each URL logs in as. */
export async function superuserUrls(urls: readonly string[]): Promise<string[]> {
  const found: string[] = [];
  for (const url of urls) {
    const rolsuper = await withClient(url, async (client) => {
      const result = await client.query<{ rolsuper: boolean }>(
        'select rolsuper from pg_roles where rolname = current_user',
      );
      return result.rows[0]?.rolsuper;
    });
    if (rolsuper !== false) found.push(new URL(url).username);
  }
  return found;
}
