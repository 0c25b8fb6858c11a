/**
 * The convict schema of the file's fixed keys: defaults, environment variables and value checks.
 * Convict does not look inside lists, so the entries of `tables`, `targets` and `sequences` are checked in
 * tables.ts; here they only have to be lists.
 */

import convict from 'convict';
import {
  applicationNameProblem,
  boolProblem,
  enumProblem,
  hostProblem,
  identifierProblem,
  intProblem,
  storedNameProblem,
  isPlainObject,
  listProblem,
  pgUrlProblem,
  unknownKeyMessage,
} from './checks.js';
import type { KeyPath, Problems } from './problems.js';
import { defaultGroup, logLevels, type LogLevel } from './types.js';

/** What convict holds once validated; tables and targets are still raw lists. */
export interface ConvictValues {
  source: { url: string };
  schema: string;
  group: string;
  applicationName: string;
  tables: unknown[];
  targets: unknown[];
  sequences: unknown[];
  apply: { batchSize: number; batchBytes: number; pollIntervalMs: number; silenceTimeoutMs: number };
  retry: { initialDelayMs: number; maxDelayMs: number; dataErrorDelayMs: number };
  shutdownTimeoutMs: number;
  leaderTimeoutMs: number;
  metrics: { enabled: boolean; host: string; port: number };
  log: { level: LogLevel };
}

type FormatName =
  | 'trigsync-pg-url'
  | 'trigsync-identifier'
  | 'trigsync-name'
  | 'trigsync-application-name'
  | 'trigsync-host'
  | 'trigsync-list'
  | 'trigsync-bool'
  | 'trigsync-int'
  | 'trigsync-enum';

interface FormatDef {
  check: (value: unknown, leaf: Leaf) => string | undefined;
  /** How a string (from the environment) becomes a value. */
  coerce?: (value: string) => unknown;
}

/** A schema leaf: convict's property, with the bounds our formats read. */
interface Leaf {
  doc: string;
  format: FormatName;
  default: unknown;
  env?: string;
  sensitive?: boolean;
  min?: number;
  max?: number;
  values?: readonly string[];
}
type SchemaNode = Leaf | { [key: string]: SchemaNode };

/** Each format: the check giving the problem, and how a string (from the environment) becomes a value. */
const formats: Record<FormatName, FormatDef> = {
  // Only source.url has this format; target URLs are checked in tables.ts.
  'trigsync-pg-url': {
    check: (v: unknown) =>
      v === null
        ? 'missing: give the URL of the source database here or in TRIGSYNC_SOURCE_URL'
        : pgUrlProblem(v),
  },
  'trigsync-identifier': { check: (v: unknown) => identifierProblem(v) },
  'trigsync-name': { check: (v: unknown) => storedNameProblem(v) },
  'trigsync-application-name': { check: (v: unknown) => applicationNameProblem(v) },
  'trigsync-host': { check: (v: unknown) => hostProblem(v) },
  'trigsync-list': { check: (v: unknown) => listProblem(v) },
  'trigsync-bool': {
    check: (v: unknown) => boolProblem(v),
    coerce: (v: string) => (v === 'true' ? true : v === 'false' ? false : v),
  },
  'trigsync-int': {
    check: (v: unknown, leaf: Leaf) => intProblem(v, leaf.min ?? 0, leaf.max ?? Number.MAX_SAFE_INTEGER),
    // Strict, unlike parseInt: "80x" stays a string and fails the check.
    coerce: (v: string) => (/^\s*-?\d+\s*$/.test(v) ? Number(v) : v),
  },
  'trigsync-enum': { check: (v: unknown, leaf: Leaf) => enumProblem(v, leaf.values ?? []) },
};

for (const [name, format] of Object.entries(formats)) {
  convict.addFormat({
    name,
    validate(value: unknown, leaf: Leaf) {
      const problem = format.check(value, leaf);
      if (problem !== undefined) throw new Error(problem);
    },
    ...(format.coerce === undefined ? {} : { coerce: format.coerce }),
  });
}

const integer = (defaultValue: number, min: number, max: number, doc: string): Leaf => ({
  doc,
  format: 'trigsync-int',
  default: defaultValue,
  min,
  max,
  // Keeps convict from appending the raw value to its messages; ours already show what is safe to show.
  sensitive: true,
});

/** The schema. `sensitive` everywhere: convict must never echo a value (a URL) into a message. */
export const configSchema = {
  source: {
    url: {
      doc: 'Connection URL of the source database',
      format: 'trigsync-pg-url',
      default: null,
      env: 'TRIGSYNC_SOURCE_URL',
      sensitive: true,
    },
  },
  schema: {
    doc: "Schema of trigsync's own objects on each database",
    format: 'trigsync-identifier',
    default: 'trigsync',
    env: 'TRIGSYNC_SCHEMA',
    sensitive: true,
  },
  group: {
    doc: 'Group of daemons this one belongs to: each group has its own leader and targets',
    format: 'trigsync-name',
    default: defaultGroup,
    env: 'TRIGSYNC_GROUP',
    sensitive: true,
  },
  applicationName: {
    doc: 'application_name of trigsync sessions; writes under it are not captured',
    format: 'trigsync-application-name',
    default: 'trigsync',
    env: 'TRIGSYNC_APPLICATION_NAME',
    sensitive: true,
  },
  tables: { doc: 'Captured tables', format: 'trigsync-list', default: [], sensitive: true },
  targets: { doc: 'Targets', format: 'trigsync-list', default: [], sensitive: true },
  sequences: { doc: 'Sequences carried to targets', format: 'trigsync-list', default: [], sensitive: true },
  apply: {
    batchSize: integer(5000, 1, 100_000, 'Most changes applied in one transaction'),
    // A worker holds the chunk it applies about twice (as read, and as the statements' JSON array
    // parameters), the driver's buffers, and the next chunk, read meanwhile: 16 MiB keeps a worker near a
    // hundred MB (a backlog of 3 kB rows: 60 MB of live heap), and is still 5000 changes of 3 kB, so
    // ordinary chunks end at apply.batchSize as before. The most is half the longest string Node builds:
    // a step's rows travel as one string parameter.
    batchBytes: integer(
      16 * 1024 * 1024,
      1,
      256 * 1024 * 1024,
      'Most bytes of row images applied in one transaction; a larger change is applied alone',
    ),
    pollIntervalMs: integer(1000, 10, 3_600_000, 'Read the log this often even without a notification'),
    silenceTimeoutMs: integer(
      60_000,
      100,
      86_400_000,
      'Give up a connection whose query hears nothing from its server for this long',
    ),
  },
  retry: {
    initialDelayMs: integer(500, 1, 3_600_000, 'First delay before retrying a connection'),
    maxDelayMs: integer(30_000, 1, 86_400_000, 'Longest delay between connection retries'),
    dataErrorDelayMs: integer(30_000, 1, 86_400_000, 'Delay before retrying a parked target'),
  },
  shutdownTimeoutMs: integer(30_000, 1, 3_600_000, 'How long a stop waits for batches in flight'),
  // A leader proves itself alive every second (src/daemon/leadership.ts); six missed proofs take
  // longer than any pause the daemon makes on its own, and keep a takeover under ten seconds.
  leaderTimeoutMs: integer(
    6_000,
    2_000,
    3_600_000,
    'A standby deposes a leader whose lock session has been silent this long',
  ),
  metrics: {
    enabled: {
      doc: 'Serve /metrics, /healthz, /readyz',
      format: 'trigsync-bool',
      default: true,
      sensitive: true,
    },
    host: {
      doc: 'Listen address',
      format: 'trigsync-host',
      default: '0.0.0.0',
      env: 'TRIGSYNC_METRICS_HOST',
      sensitive: true,
    },
    port: {
      doc: 'Listen port; 0 picks a free one',
      format: 'trigsync-int',
      default: 9753,
      min: 0,
      max: 65535,
      env: 'TRIGSYNC_METRICS_PORT',
      sensitive: true,
    },
  },
  log: {
    level: {
      doc: 'Log level',
      format: 'trigsync-enum',
      values: logLevels,
      default: 'info',
      env: 'TRIGSYNC_LOG_LEVEL',
      sensitive: true,
    },
  },
} satisfies Record<string, SchemaNode>;

function isLeaf(node: SchemaNode): node is Leaf {
  return 'default' in node;
}

/** Own keys only: a file's `constructor:` must not find Object.prototype.constructor. */
function childOf(node: SchemaNode, key: string): SchemaNode | undefined {
  return !isLeaf(node) && Object.hasOwn(node, key) ? node[key] : undefined;
}

/** Every leaf with its key path, e.g. for the docs test. */
export function schemaLeaves(node: SchemaNode = configSchema, path: string[] = []): [string[], Leaf][] {
  if (isLeaf(node)) return [[path, node]];
  return Object.entries(node).flatMap(([key, child]) => schemaLeaves(child, [...path, key]));
}

/** Environment variable name → key path, for the variables the schema reads. */
export const schemaEnvVars: ReadonlyMap<string, string[]> = new Map(
  schemaLeaves().flatMap(([path, leaf]) => (typeof leaf.env === 'string' ? [[leaf.env, path]] : [])),
);

/**
 * Run convict over `raw` (the file's top-level mapping) with `env` (only non-empty values). Problems
 * go to `problems`; returns the values, which are only meaningful when no problem was found.
 */
export function runConvict(raw: Record<string, unknown>, env: Record<string, string>, problems: Problems) {
  const cleaned = precheck(raw, configSchema, [], problems);
  const conf = convict<ConvictValues>(configSchema as unknown as convict.Schema<ConvictValues>, {
    env,
    args: [],
  });
  conf.load(cleaned);
  try {
    conf.validate({ allowed: 'strict' });
  } catch (error) {
    for (const line of (error as Error).message.split('\n')) addConvictProblem(line, env, problems);
  }
  return conf.getProperties();
}

/**
 * Convict misreads a mapping where it expects a value (and the reverse): it reports a key as both
 * missing and undeclared, or throws a TypeError. So shapes are checked first, and a value of the wrong
 * shape is reported here and left out of what convict sees.
 */
function precheck(raw: Record<string, unknown>, schema: SchemaNode, path: KeyPath, problems: Problems) {
  const cleaned: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    const node = childOf(schema, key);
    if (key === '__proto__') {
      problems.add([...path, key], 'unknown key'); // convict would skip it silently
    } else if (node === undefined) {
      cleaned[key] = value; // convict reports it as undeclared
    } else if (
      value === undefined ||
      (value === null && (!isLeaf(node) || node.format === 'trigsync-list'))
    ) {
      // `metrics:` with nothing under it in YAML means the defaults, as does `targets:`.
    } else if (!isLeaf(node)) {
      if (isPlainObject(value)) cleaned[key] = precheck(value, node, [...path, key], problems);
      else problems.add([...path, key], `must be a mapping with keys ${Object.keys(node).join(', ')}`);
    } else if (isPlainObject(value) || (node.format === 'trigsync-list' && !Array.isArray(value))) {
      problems.add([...path, key], formats[node.format].check(value, node) ?? 'must not be a mapping');
    } else {
      cleaned[key] = value;
    }
  }
  return cleaned;
}

/** Turn one line of convict's message into a problem. */
function addConvictProblem(line: string, env: Record<string, string>, problems: Problems): void {
  if (line.trim() === '') return;
  const undeclared = /^configuration param '(.*)' not declared in the schema$/.exec(line);
  if (undeclared?.[1] !== undefined) {
    const [path, known] = unknownPrefix(undeclared[1].split('.'));
    const key = path[path.length - 1] ?? '';
    const message = unknownKeyMessage(key, known);
    // Several undeclared leaves under one unknown key are one problem.
    if (!problems.list.some((p) => p.message === message && p.path.join('.') === path.join('.'))) {
      problems.add(path, message);
    }
    return;
  }
  const missing = /^configuration param '(.*)' missing from config/.exec(line);
  if (missing?.[1] !== undefined) {
    problems.add(missing[1].split('.'), 'missing');
    return;
  }
  const invalid = /^([^:]+): (.*)$/.exec(line);
  if (invalid?.[1] !== undefined && invalid[2] !== undefined) {
    const envName = [...schemaEnvVars].find(([name, p]) => p.join('.') === invalid[1] && name in env)?.[0];
    problems.add(invalid[1].split('.'), invalid[2], envName);
    return;
  }
  problems.add([], line);
}

/** The shortest prefix of an undeclared key path that is not in the schema, and its known siblings. */
function unknownPrefix(path: string[]): [string[], string[]] {
  let node: SchemaNode = configSchema;
  for (let i = 0; i < path.length; i++) {
    const key = path[i] ?? '';
    const child = childOf(node, key);
    if (child === undefined) return [path.slice(0, i + 1), isLeaf(node) ? [] : Object.keys(node)];
    node = child;
  }
  return [path, []];
}
