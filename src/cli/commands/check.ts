/** `trigsync check`: validate the config, then reach every database and report its server version. */
import { loadConfig } from '../../config/load.js';
import { configSecrets, redactSecrets, redactUrl } from '../../config/redact.js';
import { withClient } from '../../db/connect.js';
import { coerceError } from '../../failure/errors.js';
import { ExitCode } from '../exit-codes.js';
import type { CommandContext } from '../handlers.js';

interface DatabaseReport {
  name: string;
  role: 'source' | 'target';
  url: string;
  reachable: boolean;
  serverVersion?: string;
  error?: string;
}

async function probe(
  name: string,
  role: DatabaseReport['role'],
  url: string,
  applicationName: string,
  secrets: string[],
): Promise<DatabaseReport> {
  const report: DatabaseReport = { name, role, url: redactUrl(url), reachable: false };
  try {
    const version = await withClient(url, { applicationName, connectTimeoutMs: 5_000 }, async (client) => {
      const result = await client.query<{ server_version: string }>('show server_version');
      return result.rows[0]?.server_version ?? 'unknown';
    });
    return { ...report, reachable: true, serverVersion: version };
  } catch (thrown) {
    return { ...report, error: redactSecrets(coerceError(thrown).message, secrets) };
  }
}

export async function checkCommand({ configFile, env, options, out }: CommandContext): Promise<ExitCode> {
  const config = loadConfig({ ...(configFile === undefined ? {} : { file: configFile }), env });
  const secrets = configSecrets(config);
  const reports = await Promise.all([
    probe('source', 'source', config.source.url, config.applicationName, secrets),
    ...config.targets.map((t) => probe(t.name, 'target', t.url, config.applicationName, secrets)),
  ]);
  const allReachable = reports.every((r) => r.reachable);

  if (options.json === true) {
    out.print(JSON.stringify({ config: { file: config.file ?? null, valid: true }, databases: reports }));
  } else {
    out.print(
      `config ok: ${config.file ?? '(inline)'}: ${config.tables.length} table(s), ${config.targets.length} target(s)`,
    );
    const width = Math.max(...reports.map((r) => r.name.length));
    for (const r of reports) {
      const state = r.reachable ? `ok      PostgreSQL ${r.serverVersion}` : `FAILED  ${r.error}`;
      out.print(`${r.name.padEnd(width)}  ${state}  (${r.url})`);
    }
  }
  return allReachable ? ExitCode.ok : ExitCode.problemFound;
}
