/**
 * A connection pooler in transaction (or statement) mode between trigsync and a server is refused.
 * trigsync keeps state in its sessions: the leader's advisory lock and the listener's LISTEN on the
 * source, a target session's session_replication_role = replica and its target lock, the session
 * settings of connect.ts. Such a pooler gives each transaction whichever server connection is free, so
 * that state stays on a server connection that other clients' sessions get next: an application's
 * session would then write without its foreign-key checks and triggers, and two daemons could both hold
 * the "lock".
 *
 * A server tells a new session its process id (BackendKeyData); a pooler tells its own. Where the two
 * agree, nothing stands between (connect.ts checks this in the statement that sets the session up, at no
 * cost). Where they differ, something does, which may be a pooler in session mode (fine: a session keeps
 * its server connection) or one in transaction mode. A second session tells them apart: in transaction
 * mode it is served by the server process the first one just gave back, or the first one moves to
 * another. PgBouncer hands out the connection given back last (server_round_robin = 0, its default),
 * which this finds at once; a pooler that rotates its connections may pass unseen.
 */
import type pg from 'pg';

import { TrigsyncError } from '../failure/errors.js';

/** A session through a pooler that would hand trigsync's session state to other clients. */
export class TransactionPooler extends TrigsyncError {
  constructor(where: string, pid: number) {
    super(
      `${where}: reached through a connection pooler in transaction mode (two of trigsync's sessions ran ` +
        `on one server process, ${pid}); trigsync keeps state in its sessions (the leader's lock, LISTEN, ` +
        `a target's session_replication_role) that such a pooler hands to other clients' sessions: ` +
        `connect to the server itself, or through a pooler in session mode`,
      'config',
    );
  }
}

/** The process id the server (or what stands in for it) told the client at connect. */
export function announcedPid(client: pg.Client): number | null {
  return (client as unknown as { processID?: number | null }).processID ?? null;
}

async function serverPid(client: pg.ClientBase): Promise<number> {
  const result = await client.query<{ pid: number }>('select pg_catalog.pg_backend_pid() as pid');
  return result.rows[0]!.pid;
}

/** How many times the second session looks: a pooler with idle connections to spare may hide once. */
const probes = 3;

/**
 * Throws TransactionPooler where `client`'s session does not keep its server process: `openProbe` opens
 * a bare second session to the same place (closed here). `where` names it for the message.
 */
export async function refuseTransactionPooler(
  client: pg.Client,
  openProbe: () => Promise<pg.Client>,
  where: string,
): Promise<void> {
  const probe = await openProbe();
  try {
    for (let i = 0; i < probes; i++) {
      const first = await serverPid(client);
      const other = await serverPid(probe);
      const again = await serverPid(client);
      if (other === first || again !== first) throw new TransactionPooler(where, first);
    }
  } finally {
    await probe.end().catch(() => undefined);
  }
}
