/**
 * Checks of what convict cannot see: the entries of `tables` and `targets`, down to each target's
 * table mappings. Like convict, they report every problem with its key path and go on.
 */

import {
  boolProblem,
  checkKeys,
  describe,
  enumProblem,
  identifierProblem,
  isPlainObject,
  nonEmptyStringProblem,
  parseName,
  pgUrlProblem,
  storedNameProblem,
} from './checks.js';
import {
  formatQualifiedName,
  parseColumnName,
  parseIdentifier,
  sameName,
  type QualifiedName,
} from './identifiers.js';
import { formatKeyPath, type KeyPath, type Problems } from './problems.js';
import { checkSequences } from './sequences.js';
import {
  conflictModes,
  initialSyncModes,
  type CapturedTable,
  type SequenceMapping,
  type TableMapping,
  type TargetConfig,
} from './types.js';

export const targetKeys = [
  'name',
  'url',
  'readOnly',
  'guardRole',
  'initialSync',
  'conflict',
  'tables',
  'sequences',
] as const;
export const mappingKeys = ['source', 'target', 'columns', 'where'] as const;
/** A captured table given as an object: its name and the columns that identify its rows. */
export const capturedTableKeys = ['table', 'key'] as const;

/** The environment variable that overrides a target's URL: `reporting` → TRIGSYNC_TARGET_REPORTING_URL. */
export function targetUrlEnvVar(name: string): string {
  return `TRIGSYNC_TARGET_${name.toUpperCase()}_URL`;
}

export interface CapturedTables {
  tables: CapturedTable[];
  /** Every entry parsed: only then does "not a captured table" mean what it says. */
  complete: boolean;
}

/** The top-level `tables`: parsed, without duplicates, none in trigsync's own schema. */
export function checkCapturedTables(list: unknown[], ownSchema: string, problems: Problems): CapturedTables {
  if (list.length === 0)
    problems.add(['tables'], 'must list at least one table to capture, such as public.orders');
  const tables: CapturedTable[] = [];
  const where: KeyPath[] = [];
  let complete = true;
  list.forEach((entry, i) => {
    const path = ['tables', i];
    const table = parseCapturedTable(entry, path, problems);
    if (table === undefined) {
      complete = false;
      return;
    }
    const earlier = tables.findIndex((t) => sameName(t, table));
    if (earlier >= 0) {
      problems.add(
        path,
        `${formatQualifiedName(table)} is listed twice (also ${formatKeyPath(where[earlier] ?? [])})`,
      );
    } else if (table.schema === ownSchema) {
      problems.add(path, `${formatQualifiedName(table)} is in trigsync's own schema "${ownSchema}"`);
    } else {
      tables.push(table);
      where.push(path);
    }
  });
  return { tables, complete };
}

/** The top-level `targets`; returns those without problems. */
export function checkTargets(
  list: unknown[],
  captured: CapturedTables,
  sequences: SequenceMapping[],
  env: Record<string, string>,
  problems: Problems,
): TargetConfig[] {
  // Names first, so that a duplicate is reported even when either target has other problems.
  const names = new Map<string, number>();
  list.forEach((entry, i) => {
    const name = isPlainObject(entry) ? entry.name : undefined;
    if (typeof name !== 'string' || storedNameProblem(name) !== undefined) return;
    const earlier = names.get(name);
    if (earlier === undefined) names.set(name, i);
    else problems.add(['targets', i, 'name'], `"${name}" is already the name of targets[${earlier}]`);
  });
  const targets: TargetConfig[] = [];
  list.forEach((entry, i) => {
    const target = checkTarget(entry, ['targets', i], captured, sequences, env, problems);
    if (target !== undefined) targets.push(target);
  });
  return targets;
}

function checkTarget(
  entry: unknown,
  path: KeyPath,
  captured: CapturedTables,
  topSequences: SequenceMapping[],
  env: Record<string, string>,
  problems: Problems,
): TargetConfig | undefined {
  if (!isPlainObject(entry)) {
    problems.add(path, `must be a mapping with at least name and url, got ${describe(entry)}`);
    return undefined;
  }
  checkKeys(entry, targetKeys, path, problems);

  const name = entry.name;
  let validName: string | undefined;
  if (name === undefined) problems.add([...path, 'name'], 'missing: a name such as reporting');
  else {
    const problem = storedNameProblem(name);
    if (problem === undefined) validName = name as string;
    else problems.add([...path, 'name'], problem);
  }

  // The environment wins over the file, so that the file can stay free of passwords.
  const envName = validName === undefined ? undefined : targetUrlEnvVar(validName);
  const fromEnv = envName === undefined ? undefined : env[envName];
  const url = fromEnv ?? entry.url;
  if (url === undefined) {
    const where = envName === undefined ? '' : ` here or in ${envName}`;
    problems.add([...path, 'url'], `missing: give the URL of the target database${where}`);
  } else {
    const problem = pgUrlProblem(url);
    if (problem !== undefined)
      problems.add([...path, 'url'], problem, fromEnv === undefined ? undefined : envName);
  }

  const readOnly = optional(entry, 'readOnly', false, path, problems, boolProblem);
  const guardRole = checkGuardRole(entry.guardRole, readOnly, [...path, 'guardRole'], problems);
  const initialSync = optional(entry, 'initialSync', 'copy', path, problems, (v) =>
    enumProblem(v, initialSyncModes),
  );
  const conflict = optional(entry, 'conflict', 'apply', path, problems, (v) => enumProblem(v, conflictModes));
  const tables = checkMappings(entry.tables, [...path, 'tables'], captured, problems);
  const sequences =
    entry.sequences === undefined
      ? topSequences
      : checkSequences(entry.sequences, [...path, 'sequences'], undefined, problems);

  if (validName === undefined || typeof url !== 'string' || tables === undefined || sequences === undefined)
    return undefined;
  return {
    name: validName,
    url,
    readOnly: readOnly as boolean,
    ...(guardRole === undefined ? {} : { guardRole }),
    initialSync: initialSync as TargetConfig['initialSync'],
    conflict: conflict as TargetConfig['conflict'],
    tables,
    sequences,
  };
}

/** `guardRole`: a role name, by the rules of any identifier; only meaningful with `readOnly: true`. */
function checkGuardRole(
  value: unknown,
  readOnly: unknown,
  path: KeyPath,
  problems: Problems,
): string | undefined {
  if (value === undefined) return undefined;
  const problem = identifierProblem(value);
  if (problem !== undefined) {
    problems.add(path, problem.replace(/^must be a name/, 'must be a role name'));
    return undefined;
  }
  // An invalid readOnly is reported on its own key.
  if (readOnly !== true && boolProblem(readOnly) === undefined) {
    problems.add(path, 'applies only to a read-only target: set readOnly: true, or leave guardRole out');
    return undefined;
  }
  return parseIdentifier(value as string);
}

/** A target's `tables`; absent means every captured table under its own name. */
function checkMappings(
  value: unknown,
  path: KeyPath,
  captured: CapturedTables,
  problems: Problems,
): TableMapping[] | undefined {
  if (value === undefined) {
    return captured.tables.map((t) => ({ source: { ...t }, target: { ...t } }));
  }
  if (!Array.isArray(value)) {
    problems.add(path, `must be a list of tables, got ${describe(value)}`);
    return undefined;
  }
  if (value.length === 0) {
    problems.add(path, 'must not be empty: leave tables out to replicate every captured table');
    return undefined;
  }
  const mappings: TableMapping[] = [];
  const targetPaths: KeyPath[] = [];
  value.forEach((entry, i) => {
    const entryPath = [...path, i];
    const mapping = checkMapping(entry, entryPath, captured, problems);
    if (mapping === undefined) return;
    const targetPath =
      isPlainObject(entry) && entry.target !== undefined ? [...entryPath, 'target'] : entryPath;
    const earlier = mappings.findIndex((m) => sameName(m.target, mapping.target));
    if (earlier >= 0) {
      const other = formatKeyPath(targetPaths[earlier] ?? []);
      problems.add(
        targetPath,
        `${formatQualifiedName(mapping.target)} is already the target table of ${other}`,
      );
      return;
    }
    mappings.push(mapping);
    targetPaths.push(targetPath);
  });
  return mappings.length === value.length ? mappings : undefined;
}

/** A captured table: its name, or `{table, key?}` to name the columns that identify its rows. */
function parseCapturedTable(entry: unknown, path: KeyPath, problems: Problems): CapturedTable | undefined {
  if (!isPlainObject(entry)) return parseTable(entry, path, problems);
  const before = problems.count;
  checkKeys(entry, capturedTableKeys, path, problems);
  if (entry.table === undefined) {
    problems.add([...path, 'table'], 'missing: the table to capture, such as public.orders');
    return undefined;
  }
  const table = parseTable(entry.table, [...path, 'table'], problems);
  const key = entry.key === undefined ? undefined : checkColumns(entry.key, [...path, 'key'], problems);
  if (table === undefined || problems.count > before) return undefined;
  return key === undefined ? table : { ...table, key };
}

/** One mapping: a table name (same name on the target) or `{source, target?, columns?, where?}`. */
function checkMapping(
  entry: unknown,
  path: KeyPath,
  captured: CapturedTables,
  problems: Problems,
): TableMapping | undefined {
  if (typeof entry === 'string') {
    const source = parseCaptured(entry, path, captured, problems);
    return source === undefined ? undefined : { source, target: { ...source } };
  }
  if (!isPlainObject(entry)) {
    problems.add(path, `must be a table name or a mapping with source, got ${describe(entry)}`);
    return undefined;
  }
  const before = problems.count;
  checkKeys(entry, mappingKeys, path, problems);
  let source: QualifiedName | undefined;
  if (entry.source === undefined)
    problems.add([...path, 'source'], 'missing: the captured table to replicate');
  else source = parseCaptured(entry.source, [...path, 'source'], captured, problems);
  const target =
    entry.target === undefined ? source : parseTable(entry.target, [...path, 'target'], problems);
  const columns =
    entry.columns === undefined ? undefined : checkColumns(entry.columns, [...path, 'columns'], problems);
  const where = entry.where;
  if (where !== undefined) {
    const problem = nonEmptyStringProblem(where);
    if (problem !== undefined)
      problems.add([...path, 'where'], `${problem} (an SQL condition over source columns)`);
  }
  if (source === undefined || target === undefined || problems.count !== before) return undefined;
  const mapping: TableMapping = { source, target: { ...target } };
  if (columns !== undefined) mapping.columns = columns;
  if (typeof where === 'string') mapping.where = where.trim();
  return mapping;
}

/** A non-empty list of distinct column names. */
function checkColumns(value: unknown, path: KeyPath, problems: Problems): string[] | undefined {
  if (!Array.isArray(value) || value.length === 0) {
    const got = Array.isArray(value) ? 'an empty list' : describe(value);
    problems.add(path, `must be a non-empty list of column names (leave it out for all columns), got ${got}`);
    return undefined;
  }
  const columns: string[] = [];
  let ok = true;
  value.forEach((entry, i) => {
    if (typeof entry !== 'string') {
      problems.add([...path, i], `must be a column name, got ${describe(entry)}`);
      ok = false;
      columns.push(''); // keeps indexes aligned for the "listed twice" message
      return;
    }
    try {
      const column = parseColumnName(entry);
      const earlier = columns.indexOf(column);
      if (earlier >= 0) {
        problems.add(
          [...path, i],
          `column ${describe(column)} is listed twice (also ${formatKeyPath([...path, earlier])})`,
        );
        ok = false;
      }
      columns.push(column);
    } catch (error) {
      problems.add([...path, i], `${describe(entry)}: ${(error as Error).message}`);
      ok = false;
      columns.push(''); // keeps indexes aligned for the "listed twice" message
    }
  });
  return ok ? columns : undefined;
}

function parseCaptured(
  value: unknown,
  path: KeyPath,
  captured: CapturedTables,
  problems: Problems,
): QualifiedName | undefined {
  const table = parseTable(value, path, problems);
  if (table === undefined) return undefined;
  if (captured.complete && !captured.tables.some((t) => sameName(t, table))) {
    problems.add(path, `${formatQualifiedName(table)} is not a captured table: add it to tables`);
    return undefined;
  }
  return table;
}

/** A table name from the file, e.g. `public."Order Lines"`; problems quote the parser's reason. */
function parseTable(value: unknown, path: KeyPath, problems: Problems): QualifiedName | undefined {
  return parseName(value, path, problems, 'a table name such as public.orders');
}

/** An optional key with a default; the checked value or the default (only meaningful without problems). */
function optional(
  entry: Record<string, unknown>,
  key: string,
  fallback: unknown,
  path: KeyPath,
  problems: Problems,
  check: (value: unknown) => string | undefined,
): unknown {
  const value = entry[key];
  if (value === undefined) return fallback;
  const problem = check(value);
  if (problem !== undefined) problems.add([...path, key], problem);
  return value;
}
