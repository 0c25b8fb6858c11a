/** The checks of `sequences` (top-level, or a target's own): docs/configuration.md, "sequences". */
import { checkKeys, describe, isPlainObject, parseName } from './checks.js';
import { formatQualifiedName, sameName, type QualifiedName } from './identifiers.js';
import { formatKeyPath, type KeyPath, type Problems } from './problems.js';
import type { SequenceMapping } from './types.js';

export const sequenceMappingKeys = ['source', 'target'] as const;

/**
 * A list of sequences (top-level, or a target's own): each a sequence name, or `{source, target?}` to
 * name the target's sequence. A source or target sequence may appear once; `ownSchema` (top-level only)
 * holds none. Undefined when an entry has a problem.
 */
export function checkSequences(
  value: unknown,
  path: KeyPath,
  ownSchema: string | undefined,
  problems: Problems,
): SequenceMapping[] | undefined {
  if (!Array.isArray(value)) {
    problems.add(path, `must be a list of sequences, got ${describe(value)}`);
    return undefined;
  }
  const before = problems.count;
  const sequences: SequenceMapping[] = [];
  const paths: KeyPath[] = [];
  value.forEach((entry, i) => {
    const entryPath = [...path, i];
    const mapping = parseSequenceMapping(entry, entryPath, problems);
    if (mapping === undefined) return;
    const name = formatQualifiedName(mapping.source);
    const sourceTwice = sequences.findIndex((m) => sameName(m.source, mapping.source));
    const target = mapping.target ?? mapping.source;
    const targetTwice = sequences.findIndex((m) => sameName(m.target ?? m.source, target));
    if (sourceTwice >= 0) {
      problems.add(entryPath, `${name} is listed twice (also ${formatKeyPath(paths[sourceTwice] ?? [])})`);
    } else if (targetTwice >= 0) {
      problems.add(
        entryPath,
        `${formatQualifiedName(target)} is already the target sequence of ${formatKeyPath(paths[targetTwice] ?? [])}`,
      );
    } else if (mapping.source.schema === ownSchema) {
      problems.add(entryPath, `${name} is in trigsync's own schema "${ownSchema}"`);
    } else {
      sequences.push(mapping);
      paths.push(entryPath);
    }
  });
  return problems.count === before ? sequences : undefined;
}

function parseSequenceMapping(
  entry: unknown,
  path: KeyPath,
  problems: Problems,
): SequenceMapping | undefined {
  if (!isPlainObject(entry)) {
    const source = parseSequence(entry, path, problems);
    return source === undefined ? undefined : { source };
  }
  const before = problems.count;
  checkKeys(entry, sequenceMappingKeys, path, problems);
  if (entry.source === undefined)
    problems.add([...path, 'source'], 'missing: the source sequence, such as public.invoice_no');
  const source =
    entry.source === undefined ? undefined : parseSequence(entry.source, [...path, 'source'], problems);
  const target =
    entry.target === undefined ? undefined : parseSequence(entry.target, [...path, 'target'], problems);
  if (source === undefined || problems.count !== before) return undefined;
  return target === undefined ? { source } : { source, target };
}

/** A sequence name from the file, e.g. `public.invoice_no`. */
function parseSequence(value: unknown, path: KeyPath, problems: Problems): QualifiedName | undefined {
  return parseName(value, path, problems, 'a sequence name such as public.invoice_no');
}
