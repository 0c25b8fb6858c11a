/**
 * Images of the log under the current names of their tables' renamed columns (sql/source/023,
 * src/capture/renamed-columns.ts): every reader of images by column name goes through this, the window's
 * read (window.ts), a run's COPY (bulk-window.ts) and verify's keys in flight.
 */
import type { Renames } from '../capture/renamed-columns.js';
import { ident, sqlLiteral } from '../config/identifiers.js';

/**
 * A log column of images (`c.row`, `c.old_row`), or of the names in their notes (`c.nulls`,
 * `c.old_nulls`), under the current names of the tables' renamed columns (sql/source/023). Tables
 * without a renamed column read it as it is, and so does every image that holds no former name: a
 * search of its text for `"name":` (as to_json writes a field) picks the few that may, without parsing
 * any. A table keeps its former names for good, so this is what it costs for every read after a rename.
 */
export function underCurrentNames(
  schema: string,
  tables: readonly { relid: number; renamed?: Renames | undefined }[],
  column: string,
  what: 'image' | 'names',
): string {
  const cases = tables
    .filter((t) => t.renamed !== undefined)
    .map((t) => {
      const { former, current } = t.renamed!;
      const holds =
        what === 'image'
          ? former
              .map((name) => `strpos(${column}::text, ${sqlLiteral(`${JSON.stringify(name)}:`)}) > 0`)
              .join(' or ')
          : `${column} && ${textArray(former)}`;
      const fn = what === 'image' ? 'renamed_image' : 'renamed_names';
      return `when c.relid = ${t.relid} and (${holds})
              then ${ident(schema)}.${fn}(${column}, ${textArray(former)}, ${textArray(current)})`;
    });
  return cases.length === 0 ? column : `case ${cases.join(' ')} else ${column} end`;
}

function textArray(values: readonly string[]): string {
  return `array[${values.map(sqlLiteral).join(', ')}]::text[]`;
}
