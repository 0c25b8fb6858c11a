/**
 * `trigsync check`: validate the config, then reach every database, report its server version, and
 * check that the captured tables and each target's mapped tables and columns are there, and that each
 * role holds the privileges trigsync needs of it (src/db/privileges.ts), naming the GRANT of each it lacks.
 */
import type pg from 'pg';

import { buildTargetPlan, type TargetPlan } from '../../apply/plan.js';
import { resolveSequences, type SequencePair } from '../../apply/sequence-pairs.js';
import { applyAsReplica, type TriggerMode } from '../../apply/session-role.js';
import { standbyProblem } from '../../db/standby.js';
import { tempFileLimits, tempFileLimitWarning } from '../../capture/writer-limits.js';
import { describeSourceTables, type SourceTables } from '../../capture/source-tables.js';
import { capturedNotInConfig, copyAdvice, notInConfigAdvice, tablesToCopy } from '../../capture/table-set.js';
import { originOnlyAdvice, originOnlyTables } from '../../capture/triggers.js';
import { loadConfig } from '../../config/load.js';
import { formatQualifiedName } from '../../config/identifiers.js';
import type { Config, QualifiedName, TargetConfig } from '../../config/types.js';
import { configSecrets, redactSecrets, redactUrl } from '../../config/redact.js';
import { sourceDatabase, withClient } from '../../db/connect.js';
import {
  missingPrivileges,
  sourceNeeds,
  sourceSequenceNeeds,
  targetNeeds,
  type MissingPrivilege,
} from '../../db/privileges.js';
import { ConfigError, coerceError, sqlState } from '../../failure/errors.js';
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
  /** Privileges the role lacks (src/db/privileges.ts); each is also a problem, or a warning if optional. */
  privileges: MissingPrivilege[];
}

type Inspection = Pick<DatabaseReport, 'problems' | 'warnings' | 'triggers' | 'privileges'>;

async function probe(
  name: string,
  role: DatabaseReport['role'],
  url: string,
  applicationName: string,
  secrets: string[],
  inspect: (client: pg.Client) => Promise<Inspection>,
): Promise<DatabaseReport> {
  const report: DatabaseReport = {
    name,
    role,
    url: redactUrl(url),
    reachable: false,
    problems: [],
    warnings: [],
    privileges: [],
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

/**
 * Captured tables the config does not list, tables whose capture fires on origin only, tables its
 * targets may lack, and a temp_file_limit that captured statements meet: not failures, but news.
 */
async function captureWarnings(client: pg.ClientBase, config: Config): Promise<string[]> {
  const notInConfig = await capturedNotInConfig(client, config);
  const targets = new Set(config.targets.map((t) => t.name));
  const toCopy = (await tablesToCopy(client, config.schema)).filter((g) => targets.has(g.target));
  const originOnly = await originOnlyTables(client, config.schema, config.tables);
  return [
    ...(notInConfig.length > 0 ? [notInConfigAdvice(notInConfig)] : []),
    ...(originOnly.length > 0 ? [originOnlyAdvice(config.schema, originOnly)] : []),
    ...toCopy.map(copyAdvice),
    ...tempFileLimitWarning(await tempFileLimits(client)),
  ];
}

/** Missing privileges as problems (those trigsync cannot do without) and warnings, naming the database. */
function privilegeFindings(where: string, privileges: MissingPrivilege[]): Inspection {
  const say = (m: MissingPrivilege) => `${where}: ${m.message}`;
  return {
    privileges,
    problems: privileges.filter((m) => m.required).map(say),
    warnings: privileges.filter((m) => !m.required).map(say),
  };
}

/** The sequences carried to a target (src/apply/sequence-pairs.ts), found on the source and the target. */
type PairsOf = (target: pg.ClientBase, plan: TargetPlan, config: TargetConfig) => Promise<SequencePair[]>;

/** Run work one at a time, in the order asked: for a client that concurrent probes share. */
function serialized(): <T>(work: () => Promise<T>) => Promise<T> {
  let last: Promise<unknown> = Promise.resolve();
  return (work) => {
    const next = last.then(work);
    last = next.catch(() => undefined);
    return next;
  };
}

/**
 * A target: its plan against the source's tables (when the source was described), the mode it applies
 * in, and the privileges its role lacks. The source sequences it carries are added to `carried`.
 */
function probeTarget(
  config: Config,
  target: TargetConfig,
  secrets: string[],
  sourceTables: SourceTables | undefined,
  pairsOf: PairsOf | undefined,
  carried = new Map<string, QualifiedName>(),
): Promise<DatabaseReport> {
  return probe(target.name, 'target', target.url, config.applicationName, secrets, async (client) => {
    const triggers = await applyAsReplica(client);
    const standby = await standbyProblem(client, `target ${target.name}`, `targets.${target.name}.url`);
    const problems: string[] = standby === undefined ? [] : [standby];
    let plan: TargetPlan | undefined;
    if (sourceTables !== undefined) {
      try {
        plan = await buildTargetPlan(config, target, sourceTables, client);
      } catch (thrown) {
        if (!(thrown instanceof ConfigError)) throw thrown;
        problems.push(...thrown.problems);
      }
    }
    const pairs =
      plan === undefined || pairsOf === undefined
        ? []
        : (await pairsOf(client, plan, target)).filter(
            (p) => p.target !== undefined && p.problem === undefined,
          );
    for (const p of pairs) carried.set(formatQualifiedName(p.source), p.source);
    const needs = targetNeeds({
      schema: config.schema,
      // Without a plan (a table or column missing, or the source out of reach), the tables as mapped.
      tables:
        plan === undefined
          ? target.tables.map((m) => ({ name: m.target }))
          : [...plan.tables.values()].map((t) => ({ name: t.target, columns: t.columns })),
      readOnly: target.readOnly,
      copies: target.initialSync === 'copy',
      sequences: pairs.flatMap((p) => (p.target === undefined ? [] : [p.target])),
    });
    const lacking = privilegeFindings(`target ${target.name}`, await missingPrivileges(client, needs));
    return {
      triggers,
      privileges: lacking.privileges,
      problems: [...problems, ...lacking.problems],
      warnings: [...(plan?.warnings ?? []), ...lacking.warnings],
    };
  });
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
      const standby = await standbyProblem(c, 'source', 'source.url');
      const found = privilegeFindings(
        'source',
        await missingPrivileges(c, sourceNeeds({ schema: config.schema, tables: config.tables })),
      );
      const lacking = standby === undefined ? found : { ...found, problems: [standby, ...found.problems] };
      try {
        const described = await describeSourceTables(c, config);
        sourceTables = described.tables;
        return {
          ...lacking,
          problems: [...described.problems, ...lacking.problems],
          warnings: [...(await captureWarnings(c, config)), ...lacking.warnings],
        };
      } catch (thrown) {
        // A schema the role may not use fails the catalog lookups: what it lacks says why.
        if (lacking.problems.length > 0 && sqlState(thrown) === '42501') return lacking;
        throw thrown;
      }
    },
  );
  // The targets' replicated sequences are found on both sides (src/apply/sequence-pairs.ts).
  const targets = source.reachable
    ? await withClient(
        config.source.url,
        { applicationName: config.applicationName, connectTimeoutMs: 5_000, database: sourceDatabase },
        async (sourceClient) => {
          const carried = new Map<string, QualifiedName>();
          // The targets are probed at once; the source client takes one of them at a time.
          const oneAtATime = serialized();
          const pairsOf: PairsOf = (client, plan, target) =>
            oneAtATime(() => resolveSequences(sourceClient, client, config.schema, plan, target.sequences));
          const reports = await Promise.all(
            config.targets.map((t) => probeTarget(config, t, secrets, sourceTables, pairsOf, carried)),
          );
          // The source role reads each sequence it carries.
          const lacking = privilegeFindings(
            'source',
            await missingPrivileges(sourceClient, sourceSequenceNeeds([...carried.values()])),
          );
          source.privileges.push(...lacking.privileges);
          source.warnings.push(...lacking.warnings);
          return reports;
        },
      )
    : await Promise.all(config.targets.map((t) => probeTarget(config, t, secrets, undefined, undefined)));
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
