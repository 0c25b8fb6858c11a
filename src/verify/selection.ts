/** Which targets and tables `verify` compares: the command's TARGET and --table, checked against the config. */
import { formatQualifiedName, parseQualifiedName, sameName } from '../config/identifiers.js';
import type { Config, TableMapping, TargetConfig } from '../config/types.js';
import { UsageError, coerceError } from '../failure/errors.js';

export interface Selection {
  target: TargetConfig;
  mappings: TableMapping[];
}

/** The targets and tables the command names; usage errors name what is unknown. */
export function selectTables(
  config: Config,
  options: { target?: string | undefined; table?: string | undefined },
): Selection[] {
  const names = config.targets.map((t) => t.name);
  if (options.target !== undefined && !names.includes(options.target)) {
    throw new UsageError(
      `no target named ${options.target} in the config (targets: ${names.join(', ') || 'none'})`,
    );
  }
  const targets = config.targets.filter((t) => options.target === undefined || t.name === options.target);
  if (options.table === undefined) return targets.map((target) => ({ target, mappings: target.tables }));

  let table;
  try {
    table = parseQualifiedName(options.table);
  } catch (thrown) {
    throw new UsageError(`--table ${options.table}: ${coerceError(thrown).message}`);
  }
  const display = formatQualifiedName(table);
  if (!config.tables.some((t) => sameName(t, table))) {
    throw new UsageError(
      `no table ${display} among the captured tables (${config.tables.map(formatQualifiedName).join(', ')})`,
    );
  }
  const selected = targets
    .map((target) => ({ target, mappings: target.tables.filter((m) => sameName(m.source, table)) }))
    .filter((s) => s.mappings.length > 0);
  if (selected.length === 0) {
    throw new UsageError(
      options.target === undefined
        ? `no target takes table ${display}`
        : `target ${options.target} does not take table ${display}`,
    );
  }
  return selected;
}
