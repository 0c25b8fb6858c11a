/**
 * Operator commands reach a running daemon through the source database: a NOTIFY on the schema's
 * control channel (no extra port). What must outlive a daemon restart (a skip) is written to tables
 * first; the notification only says "act now".
 */
import type pg from 'pg';

const commands = ['retry', 'skip', 'sync', 'pause', 'resume'] as const;

export type ControlCommand = { command: (typeof commands)[number]; target: string };

export function controlChannel(schema: string): string {
  return `${schema}_control`;
}

export async function sendControl(
  client: pg.ClientBase,
  schema: string,
  command: ControlCommand,
): Promise<void> {
  await client.query('select pg_notify($1, $2)', [controlChannel(schema), JSON.stringify(command)]);
}

/** A control payload, or undefined when it is not one of ours. */
export function parseControl(payload: string | undefined): ControlCommand | undefined {
  try {
    const parsed = JSON.parse(payload ?? '') as Partial<ControlCommand>;
    if (commands.some((c) => c === parsed.command) && typeof parsed.target === 'string') {
      return { command: parsed.command!, target: parsed.target };
    }
  } catch {
    // not ours
  }
  return undefined;
}
