/**
 * The convict schema of the file's fixed keys: defaults, environment variables and value checks.
 * Convict does not look inside lists, so the entries of `tables`, `targets` and `sequences` are checked in
 * tables.ts; here they only have to be lists.
 *
 * Problems never pass through the text of a convict error. The formats report into the load's Problems
 * through the leaf convict hands them; the file's keys and shapes, which convict can only report as text
 * (and misreads, for a mapping given where a value belongs or the reverse), are checked by our own walk of
 * the document, which gives convict only what it reads correctly.
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
  min?: number;
  max?: number;
  values?: readonly string[];
}
interface Branch {
  [key: string]: SchemaNode;
}
type SchemaNode = Leaf | Branch;

/** A leaf as convict holds it during one load (see convictSchema): the formats report through it. */
interface LoadLeaf extends Leaf {
  report: (message: string) => void;
  sensitive: true;
}

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
    // Convict passes the leaf of this load's schema; the problem goes to that load's Problems, with its key
    // path, and nothing is thrown, so convict has no message of ours to word.
    validate(value: unknown, leaf: LoadLeaf) {
      const problem = format.check(value, leaf);
      if (problem !== undefined) leaf.report(problem);
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
});

/** The file's fixed keys, as declared once: convict, the docs test and schemaEnvVars read it. */
export const configSchema = {
  source: {
    url: {
      doc: 'Connection URL of the source database',
      format: 'trigsync-pg-url',
      default: null,
      env: 'TRIGSYNC_SOURCE_URL',
    },
  },
  schema: {
    doc: "Schema of trigsync's own objects on each database",
    format: 'trigsync-identifier',
    default: 'trigsync',
    env: 'TRIGSYNC_SCHEMA',
  },
  group: {
    doc: 'Group of daemons this one belongs to: each group has its own leader and targets',
    format: 'trigsync-name',
    default: defaultGroup,
    env: 'TRIGSYNC_GROUP',
  },
  applicationName: {
    doc: 'application_name of trigsync sessions; writes under it are not captured',
    format: 'trigsync-application-name',
    default: 'trigsync',
    env: 'TRIGSYNC_APPLICATION_NAME',
  },
  tables: { doc: 'Captured tables', format: 'trigsync-list', default: [] },
  targets: { doc: 'Targets', format: 'trigsync-list', default: [] },
  sequences: { doc: 'Sequences carried to targets', format: 'trigsync-list', default: [] },
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
    },
    host: {
      doc: 'Listen address',
      format: 'trigsync-host',
      default: '0.0.0.0',
      env: 'TRIGSYNC_METRICS_HOST',
    },
    port: {
      doc: 'Listen port; 0 picks a free one',
      format: 'trigsync-int',
      default: 9753,
      min: 0,
      max: 65535,
      env: 'TRIGSYNC_METRICS_PORT',
    },
  },
  log: {
    level: {
      doc: 'Log level',
      format: 'trigsync-enum',
      values: logLevels,
      default: 'info',
      env: 'TRIGSYNC_LOG_LEVEL',
    },
  },
} satisfies Record<string, SchemaNode>;

function isLeaf(node: SchemaNode): node is Leaf {
  return 'default' in node;
}

/** Own keys only: a file's `constructor:` must not find Object.prototype.constructor. */
function childOf(node: Branch, key: string): SchemaNode | undefined {
  return Object.hasOwn(node, key) ? node[key] : undefined;
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
  const document = checkShape(raw, configSchema, [], problems);
  const schema = convictSchema(configSchema, [], (path, leaf, message) => {
    // Convict reads the environment after the file, so a value is the variable's whenever it is set.
    const from = leaf.env !== undefined && Object.hasOwn(env, leaf.env) ? leaf.env : undefined;
    problems.add(path, message, from);
  });
  const conf = convict<ConvictValues>(schema as unknown as convict.Schema<ConvictValues>, { env, args: [] });
  conf.load(document);
  // Strict, as an assertion: checkShape leaves convict no undeclared key and nothing of the wrong shape,
  // and the formats report instead of throwing, so an error here is a bug in trigsync, not in the file.
  conf.validate({ allowed: 'strict' });
  return conf.getProperties();
}

/**
 * The schema convict gets for one load: each leaf as declared, with `report` sending its problems to
 * this load, and `sensitive` so that convict would never echo a value (a URL) into an error of its own.
 */
function convictSchema(
  node: SchemaNode,
  path: string[],
  report: (path: string[], leaf: Leaf, message: string) => void,
): LoadLeaf | { [key: string]: unknown } {
  if (isLeaf(node)) return { ...node, sensitive: true, report: (message) => report(path, node, message) };
  return Object.fromEntries(
    Object.entries(node).map(([key, child]) => [key, convictSchema(child, [...path, key], report)]),
  );
}

/**
 * The keys and shapes of `raw` against the schema, which convict reports only as text if at all: it names
 * an undeclared key once per value under it, without a suggestion, and skips `__proto__`, `constructor`
 * and dotted keys silently; a mapping given for a value or a value for a mapping it reports as a missing
 * key plus undeclared ones (or throws a TypeError), and a mapping given for a list it takes for the list.
 * So this walk reports unknown keys and values of the wrong shape, and returns the rest of the document,
 * which convict reads as declared.
 */
function checkShape(raw: Record<string, unknown>, node: Branch, path: KeyPath, problems: Problems) {
  const document: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    const child = childOf(node, key);
    const at = [...path, key];
    if (child === undefined) {
      problems.add(at, unknownKeyMessage(key, Object.keys(node)));
    } else if (
      value === undefined ||
      (value === null && (!isLeaf(child) || child.format === 'trigsync-list'))
    ) {
      // `metrics:` with nothing under it in YAML means the defaults, as does `targets:`.
    } else if (!isLeaf(child)) {
      if (isPlainObject(value)) document[key] = checkShape(value, child, at, problems);
      else problems.add(at, `must be a mapping with keys ${Object.keys(child).join(', ')}`);
    } else if (isPlainObject(value)) {
      // The leaf's own check words it (`must be a list, got a mapping`); convict never sees the mapping.
      problems.add(at, formats[child.format].check(value, child) ?? 'must not be a mapping');
    } else {
      document[key] = value;
    }
  }
  return document;
}
