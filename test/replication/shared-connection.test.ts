// Source connections that workers share (src/db/shared-connection.ts), against a real server: leases
// take turns, a transaction or a pipeline holds the connection for its lease alone, and a connection
// that broke is handed out no more.
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';

import { inTransaction } from '../../src/db/connect.js';
import { sendPipelined, valuesOrFirstFailure } from '../../src/db/pipeline.js';
import { SharedConnections } from '../../src/db/shared-connection.js';
import { freshDatabase, sharedClusters, waitFor, type FreshDatabase } from '../support/fixtures.js';

const pools: SharedConnections[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

async function poolOf(usersEach: number): Promise<{ db: FreshDatabase; pool: SharedConnections }> {
  const db = await freshDatabase(sharedClusters().source);
  const pool = new SharedConnections(async () => {
    const client = new pg.Client({ connectionString: db.url, application_name: 'shared-test' });
    client.on('error', () => undefined);
    await client.connect();
    return client;
  }, usersEach);
  pools.push(pool);
  return { db, pool };
}

const pidOf = async (client: pg.ClientBase): Promise<number> =>
  (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;

/** The transaction id of the statement's transaction, if it has one (it is inside another's). */
const xidOf = async (client: pg.ClientBase): Promise<string | null> =>
  (await client.query<{ xid: string | null }>('select pg_current_xact_id_if_assigned()::text as xid'))
    .rows[0]!.xid;

describe('shared connections', () => {
  it('lease up to usersEach leases per connection, and a new connection beyond', async () => {
    const { pool } = await poolOf(3);
    const leases = await Promise.all([1, 2, 3, 4].map(() => pool.lease()));
    const pids = await Promise.all(leases.map(pidOf));
    expect(new Set(pids.slice(0, 3)).size).toBe(1);
    expect(pids[3]).not.toBe(pids[0]);
    // A lease that ended frees its place: the next one shares the first connection again.
    await leases[0]!.end();
    expect(await pidOf(await pool.lease())).toBe(pids[0]);
  });

  it("keep other leases' statements out of a transaction until it ends", async () => {
    const { pool } = await poolOf(2);
    const [a, b] = await Promise.all([pool.lease(), pool.lease()]);
    let bDone = false;
    let bXid: Promise<string | null> | undefined;
    const aXid = await inTransaction(a, async () => {
      const xid = (await a.query<{ xid: string }>('select pg_current_xact_id()::text as xid')).rows[0]!.xid;
      // Asked while a's transaction is open, it runs after it, outside it.
      bXid = xidOf(b).finally(() => (bDone = true));
      await a.query('select pg_sleep(0.05)');
      expect(bDone).toBe(false);
      return xid;
    });
    expect(aXid).toMatch(/^\d+$/);
    expect(await bXid).toBeNull();
  });

  it("wait for another lease's statement before a pipeline, and send the pipeline's together", async () => {
    const { db, pool } = await poolOf(2);
    await db.cluster.query('create sequence turn', [], db.name);
    const [a, b] = await Promise.all([pool.lease(), pool.lease()]);
    // Each statement draws the next number: the server's order of running them.
    const turn = async (client: pg.ClientBase, sql = 'select nextval($1)::int as n'): Promise<number> =>
      (await client.query<{ n: number }>(sql, ['turn'])).rows[0]!.n;
    // b's statement is in flight (it sleeps) when a's pipeline is asked for.
    const bTurn = turn(b, `select nextval($1)::int as n from pg_sleep(0.05)`);
    const settled = await sendPipelined<unknown>(a, () => [
      a.query('begin'),
      turn(a),
      a.query('select pg_current_xact_id_if_assigned()::text as xid'),
      turn(a),
      a.query('commit'),
    ]);
    const [, first, inside, second] = valuesOrFirstFailure(settled) as [
      unknown,
      number,
      pg.QueryResult,
      number,
    ];
    expect(await bTurn).toBe(1);
    expect([first, second]).toEqual([2, 3]);
    // The pipeline's statements ran in its own transaction (no xid drawn yet: nextval draws none).
    expect(inside.rows[0]).toEqual({ xid: null });
  });

  it('hand out a connection that broke no more, and drop it once no lease holds it', async () => {
    const { db, pool } = await poolOf(2);
    const terminate = (pid: number) => db.cluster.query('select pg_terminate_backend($1)', [pid], db.name);
    const [a, b] = await Promise.all([pool.lease(), pool.lease()]);
    const broken = await pidOf(a);
    await terminate(broken);
    await expect(a.query('select 1')).rejects.toThrow();
    await expect(b.query('select 1')).rejects.toThrow();
    const c = await pool.lease();
    const other = await pidOf(c);
    expect(other).not.toBe(broken);
    expect(pool.size).toBe(2);
    await Promise.all([a.end(), b.end()]);
    // The broken one went with its last lease.
    expect(pool.size).toBe(1);
    // One that breaks while no lease holds it goes once its client hears of it.
    await c.end();
    expect(pool.size).toBe(1);
    await terminate(other);
    await waitFor(() => pool.size === 0, { what: 'the broken idle connection to go' });
    // An ended lease fails as a lost connection does.
    await expect(c.query('select 1')).rejects.toMatchObject({ code: 'ECONNRESET' });
  });

  it('own a connection apart from the leases, closed with them', async () => {
    const { db, pool } = await poolOf(5);
    const lease = await pool.lease();
    const owned = await pool.own();
    expect(await pidOf(owned)).not.toBe(await pidOf(lease));
    expect(pool.size).toBe(1);
    const backends = async (): Promise<number> =>
      (
        await db.cluster.query<{ n: number }>(
          `select count(*)::int as n from pg_stat_activity where application_name = 'shared-test' and datname = $1`,
          [db.name],
        )
      )[0]!.n;
    expect(await backends()).toBe(2);
    await pool.close();
    await waitFor(async () => (await backends()) === 0, {
      what: 'the owned connection to close with the pool',
    });
    await expect(pool.own()).rejects.toThrow(/closed/);
  });
});
