/**
 * `trigsync check`: validate the config, then reach every database, report its server version, and
 * check that the captured tables and each target's mapped tables and columns are there.
 */
import type pg from 'pg';

import { buildTargetPlan } from '../../apply/plan.js';
import { applyAsReplica, type TriggerMode } from '../../apply/session-role.js';
import { describeSourceTables, type SourceTables } from '../../capture/source-tables.js';
import { capturedNotInConfig, copyAdvice, notInConfigAdvice, tablesToCopy } from '../../capture/table-set.js';
import { loadConfig } from '../../config/load.js';
import type { Config } from '../../config/types.js';
import { configSecrets, redactSecrets, redactUrl } from '../../config/redact.js';
import { withClient } from '../../db/connect.js';
import { ConfigError, coerceError } from '../../failure/errors.js';
import type { CommandContext } from '../command-context.js';
import { ExitCode } from '../exit-codes.js';
import { configOptions } from './common.js';

interface DatabaseReport {
  name: string;
  role: 'source' | 'target';
  url: string;
  reachable: boolean;
  serverVersion?: string;
  error?: string;
  /** Missing tables, columns or keys, each naming what and where. */
  problems: string[];
  /** What replicates only in part, such as nullable columns the target lacks; not a failure. */
  warnings: string[];
  /** A target: whether trigsync applies as `replica` or `origin` there (src/apply/session-role.ts). */
  triggers?: TriggerMode;
}

async function probe(
  name: string,
  role: DatabaseReport['role'],
  url: string,
  applicationName: string,
  secrets: string[],
  inspect: (client: pg.Client) => Promise<Pick<DatabaseReport, 'problems' | 'warnings' | 'triggers'>>,
): Promise<DatabaseReport> {
  const report: DatabaseReport = {
    name,
    role,
    url: redactUrl(url),
    reachable: false,
    problems: [],
    warnings: [],
  };
  try {
    return await withClient(url, { applicationName, connectTimeoutMs: 5_000 }, async (client) => {
      const version = await client.query<{ server_version: string }>('show server_version');
      const serverVersion = version.rows[0]?.server_version ?? 'unknown';
      return { ...report, reachable: true, serverVersion, ...(await inspect(client)) };
    });
  } catch (thrown) {
    return { ...report, error: redactSecrets(coerceError(thrown).message, secrets) };
  }
}

/** Captured tables the config does not list, and tables its targets may lack: not failures, but news. */
async function captureWarnings(client: pg.ClientBase, config: Config): Promise<string[]> {
  const notInConfig = await capturedNotInConfig(client, config);
  const targets = new Set(config.targets.map((t) => t.name));
  const toCopy = (await tablesToCopy(client, config.schema)).filter((g) => targets.has(g.target));
  return [...(notInConfig.length > 0 ? [notInConfigAdvice(notInConfig)] : []), ...toCopy.map(copyAdvice)];
}

const triggerModes: Record<TriggerMode, string> = {
  replica:
    'as replica (session_replication_role): its ordinary triggers and foreign-key actions do not fire, ' +
    'ENABLE REPLICA and ENABLE ALWAYS triggers do',
  origin:
    'as origin (the role may not set session_replication_role): its ordinary triggers fire once per key ' +
    "for each batch's final change, and its foreign keys are checked",
};

export async function checkCommand(context: CommandContext): Promise<ExitCode> {
  const config = loadConfig(configOptions(context));
  const { out, options } = context;
  const secrets = configSecrets(config);
  let sourceTables: SourceTables | undefined;
  const source = await probe(
    'source',
    'source',
    config.source.url,
    config.applicationName,
    secrets,
    async (c) => {
      const described = await describeSourceTables(c, config);
      sourceTables = described.tables;
      return { problems: described.problems, warnings: await captureWarnings(c, config) };
    },
  );
  const targets = await Promise.all(
    config.targets.map((t) =>
      probe(t.name, 'target', t.url, config.applicationName, secrets, async (client) => {
        const triggers = await applyAsReplica(client);
        if (sourceTables === undefined) return { problems: [], warnings: [], triggers };
        try {
          const plan = await buildTargetPlan(config, t, sourceTables, client);
          return { problems: [], warnings: plan.warnings, triggers };
        } catch (thrown) {
          if (thrown instanceof ConfigError)
            return { problems: [...thrown.problems], warnings: [], triggers };
          throw thrown;
        }
      }),
    ),
  );
  const reports = [source, ...targets];

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
      if (r.triggers !== undefined) out.print(`${' '.repeat(width)}  applies  ${triggerModes[r.triggers]}`);
      for (const problem of r.problems) out.print(`${' '.repeat(width)}  PROBLEM ${problem}`);
      for (const warning of r.warnings) out.print(`${' '.repeat(width)}  WARNING ${warning}`);
    }
  }
  // A config that does not fit its databases (a table without a key, a column the target lacks) is a
  // configuration error, as `install` and `start` take it; a database out of reach, a problem found.
  if (reports.some((r) => r.problems.length > 0)) return ExitCode.usage;
  return reports.every((r) => r.reachable) ? ExitCode.ok : ExitCode.problemFound;
}
