/**
 * Loading the configuration: find the file, parse it (YAML or JSON), apply the environment, validate
 * everything, and either return a complete Config or throw one ConfigError that lists every problem,
 * each as `file:line: key: what is wrong`.
 */

import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Document, type YAMLError } from 'yaml';
import { ConfigError } from '../failure/errors.js';
import { describe, isPlainObject } from './checks.js';
import { parseIdentifier } from './identifiers.js';
import { Problems, renderProblem, type KeyPath } from './problems.js';
import { redactUrlsIn } from './redact.js';
import { runConvict, schemaEnvVars } from './schema.js';
import { checkSequences } from './sequences.js';
import { checkCapturedTables, checkTargets } from './tables.js';
import type { Config } from './types.js';

export interface LoadOptions {
  /** The config file; else TRIGSYNC_CONFIG. */
  file?: string;
  /** Defaults to process.env. */
  env?: NodeJS.ProcessEnv;
}

/** Line of a key path in the file, when the parser kept positions. */
type Locate = (path: KeyPath) => number | undefined;

/** Load and validate the config file named by `options.file` or TRIGSYNC_CONFIG. */
export function loadConfig(options: LoadOptions = {}): Config {
  const env = options.env ?? process.env;
  const named = nonEmpty(options.file);
  const file = named ?? nonEmpty(env.TRIGSYNC_CONFIG);
  if (file === undefined) {
    throw new ConfigError('no configuration file given: pass --config PATH or set TRIGSYNC_CONFIG=PATH');
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const via = named === undefined ? ' (named by TRIGSYNC_CONFIG)' : '';
    throw new ConfigError(`${file}: cannot read the configuration file${via}: ${describeFsError(error)}`, {
      cause: error,
    });
  }
  const { raw, locate } = parseText(text.replace(/^\uFEFF/, ''), file);
  return validate(raw, env, file, locate);
}

/**
 * Validate a config given as an object, as if read from a file. The environment applies as for a file
 * (pass `env: {}` to ignore it); `file` only names the origin in messages and in `Config.file`.
 */
export function configFromObject(
  raw: unknown,
  options: { env?: NodeJS.ProcessEnv; file?: string } = {},
): Config {
  return validate(raw, options.env ?? process.env, options.file);
}

function validate(raw: unknown, env: NodeJS.ProcessEnv, file?: string, locate?: Locate): Config {
  const problems = new Problems();
  const fail = () => new ConfigError(render(problems, file, locate));
  if (raw === null || raw === undefined) {
    problems.add([], 'is empty: it needs at least source.url and tables');
    throw fail();
  }
  if (!isPlainObject(raw)) {
    problems.add([], `must be a mapping of keys (source, tables, targets, ...), got ${describe(raw)}`);
    throw fail();
  }

  const envValues = usableEnv(env);
  const values = runConvict(raw, envValues, problems);
  const at = (...path: string[]) => problems.list.some((p) => p.path.join('.') === path.join('.'));

  // The lists are only worth checking once convict holds them as lists.
  const ownSchema = at('schema') ? undefined : parseIdentifier(values.schema);
  const captured = at('tables')
    ? { tables: [], complete: false }
    : checkCapturedTables(values.tables, ownSchema ?? '', problems);
  const sequences = at('sequences')
    ? undefined
    : checkSequences(values.sequences, ['sequences'], ownSchema, problems);
  const targets = at('targets')
    ? []
    : checkTargets(values.targets, captured, sequences ?? [], envValues, problems);

  const { initialDelayMs, maxDelayMs } = values.retry;
  if (!at('retry', 'initialDelayMs') && !at('retry', 'maxDelayMs') && maxDelayMs < initialDelayMs) {
    problems.add(
      ['retry', 'maxDelayMs'],
      `${maxDelayMs} is less than retry.initialDelayMs (${initialDelayMs})`,
    );
  }

  if (problems.count > 0 || ownSchema === undefined || sequences === undefined) throw fail();
  const config: Config = {
    source: { url: values.source.url },
    schema: ownSchema,
    group: values.group,
    applicationName: values.applicationName,
    tables: captured.tables,
    targets,
    sequences,
    apply: {
      batchSize: values.apply.batchSize,
      batchBytes: values.apply.batchBytes,
      pollIntervalMs: values.apply.pollIntervalMs,
      silenceTimeoutMs: values.apply.silenceTimeoutMs,
    },
    retry: { initialDelayMs, maxDelayMs, dataErrorDelayMs: values.retry.dataErrorDelayMs },
    shutdownTimeoutMs: values.shutdownTimeoutMs,
    leaderTimeoutMs: values.leaderTimeoutMs,
    metrics: { enabled: values.metrics.enabled, host: values.metrics.host, port: values.metrics.port },
    log: { level: values.log.level },
  };
  if (file !== undefined) config.file = file;
  return config;
}

/** Problems in file order when the file gives lines (those without a line, such as a missing key, first). */
function render(problems: Problems, file?: string, locate?: Locate): string[] {
  const lines = problems.list.map((p) => (p.env === undefined ? (locate?.(p.path) ?? 0) : 0));
  return problems.list
    .map((p, i) => ({ text: renderProblem(p, file, locate), line: lines[i] ?? 0 }))
    .sort((a, b) => a.line - b.line)
    .map((p) => p.text);
}

/**
 * The variables trigsync reads, without empty ones: `FOO=` in a compose file or a shell usually means
 * "not set", and must not replace a good value from the file with an empty one.
 */
function usableEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const picked: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    const ours = schemaEnvVars.has(name) || /^TRIGSYNC_TARGET_[A-Z0-9_]+_URL$/.test(name);
    if (ours && value !== undefined && value !== '') picked[name] = value;
  }
  return picked;
}

/** Parse by extension: .yaml/.yml YAML, .json JSON, anything else JSON and then YAML. */
function parseText(text: string, file: string): { raw: unknown; locate: Locate | undefined } {
  const extension = extname(file).toLowerCase();
  if (extension === '.yaml' || extension === '.yml') return parseYaml(text, file);
  if (extension === '.json') return parseJson(text, file);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return parseYaml(text, file);
  }
  return { raw, locate: jsonLocator(text, file) };
}

function parseYaml(text: string, file: string): { raw: unknown; locate: Locate } {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) throw new ConfigError(syntaxProblems(doc.errors, lineCounter, file, 'YAML'));
  try {
    return { raw: doc.toJS(), locate: locator(doc, lineCounter) };
  } catch (error) {
    // Such as too many aliases, which yaml refuses as a resource exhaustion.
    throw new ConfigError(`${file}: YAML error: ${redactUrlsIn((error as Error).message)}`, { cause: error });
  }
}

/**
 * The parser's errors, each at its line and column. Without prettyErrors, yaml's message is the reason
 * alone: no excerpt of the file, which may hold a password.
 */
function syntaxProblems(
  errors: readonly YAMLError[],
  lineCounter: LineCounter,
  file: string,
  language: 'YAML' | 'JSON',
): string[] {
  return errors.map((e) => {
    const { line, col } = lineCounter.linePos(e.pos[0]);
    return `${file}:${line}:${col}: ${language} syntax error: ${redactUrlsIn(e.message)}`;
  });
}

function parseJson(text: string, file: string): { raw: unknown; locate: Locate | undefined } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    // JSON.parse tells where only inside its message, which quotes the file (and may so hold a password):
    // the reason and its place come from reading the file as YAML, of which JSON is nearly a subset.
    const lineCounter = new LineCounter();
    const { errors } = parseDocument(text, { lineCounter, prettyErrors: false });
    throw new ConfigError(
      errors.length > 0
        ? syntaxProblems(errors, lineCounter, file, 'JSON')
        : `${file}: JSON syntax error: not JSON, though valid YAML (single quotes, a comment or a comma ` +
            'before a closing bracket, say); name the file .yaml to read it as YAML',
      { cause: error },
    );
  }
  return { raw, locate: jsonLocator(text, file) };
}

/**
 * Positions for a JSON file come from reading it as YAML, which JSON nearly always is. That reading
 * also catches a key given twice, which JSON.parse lets the last one win silently.
 */
function jsonLocator(text: string, file: string): Locate | undefined {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter });
  const duplicates = doc.errors.filter((e) => e.code === 'DUPLICATE_KEY');
  if (duplicates.length > 0) {
    throw new ConfigError(
      duplicates.map(
        (e) => `${file}${e.linePos ? `:${e.linePos[0].line}` : ''}: a key is given twice in one object`,
      ),
    );
  }
  return doc.errors.length === 0 ? locator(doc, lineCounter) : undefined;
}

/** The line of the nearest part of `path` present in the document: the key itself, else its parent. */
function locator(doc: Document, lineCounter: LineCounter): Locate {
  const lineOf = (path: KeyPath): number | undefined => {
    const parent = path.length === 1 ? doc.contents : doc.getIn(path.slice(0, -1), true);
    const last = path[path.length - 1];
    let start: number | undefined;
    if (isMap(parent)) {
      const pair = parent.items.find((p) => isScalar(p.key) && String(p.key.value) === String(last));
      start = pair !== undefined && isScalar(pair.key) ? pair.key.range?.[0] : undefined;
    } else if (isSeq(parent) && typeof last === 'number') {
      const item: unknown = parent.items[last];
      start = isScalar(item) || isMap(item) || isSeq(item) ? item.range?.[0] : undefined;
    }
    return start === undefined ? undefined : lineCounter.linePos(start).line;
  };
  return (path) => {
    for (let n = path.length; n > 0; n--) {
      const line = lineOf(path.slice(0, n));
      if (line !== undefined) return line;
    }
    return undefined;
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

function describeFsError(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'it is a directory';
  return (error as Error).message;
}
