/**
 * The settings under which the text of a value reads back as the source wrote it, whatever a server's
 * or a role's own defaults: dates year first (DateStyle), intervals in PostgreSQL's own form, and XML
 * read as content. A document is content too (PostgreSQL 12 and later), while content that is not a
 * document (two elements, text beside an element) fails to read under a database's xmloption = document.
 * Every session that writes rows from their text (apply, a sync's COPY, repair) sets them.
 */
const textForms = [
  ['datestyle', 'ISO, YMD'],
  ['intervalstyle', 'postgres'],
  ['xmloption', 'content'],
] as const;

/** SET statements of the text forms: for the session, or `local` to the transaction. */
export function setTextForms(scope: 'session' | 'local'): string {
  const set = scope === 'local' ? 'set local' : 'set';
  return textForms.map(([name, value]) => `${set} ${name} = '${value}'`).join('; ');
}
