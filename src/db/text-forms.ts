/**
 * The settings under which the text of a value reads back as the source wrote it, whatever a server's
 * or a role's own defaults: dates year first (DateStyle), intervals in PostgreSQL's own form, XML read as
 * content, and an unquoted NULL in an array's text read as a NULL element. A document is content too
 * (PostgreSQL 12 and later), while content that is not a document (two elements, text beside an element)
 * fails to read under a database's xmloption = document; under array_nulls off, `{a,NULL}` reads as
 * the string 'NULL', silently. Every session that writes rows from their text (apply, a sync's COPY,
 * repair) sets them.
 */
const textForms = [
  ['datestyle', 'ISO, YMD'],
  ['intervalstyle', 'postgres'],
  ['xmloption', 'content'],
  ['array_nulls', 'on'],
] as const;

/** SET statements of the text forms: for the session, or `local` to the transaction. */
export function setTextForms(scope: 'session' | 'local'): string {
  const set = scope === 'local' ? 'set local' : 'set';
  return textForms.map(([name, value]) => `${set} ${name} = '${value}'`).join('; ');
}
