/**
 * Statements that a connection runs over and over with the same text, prepared once per connection:
 * the server parses and plans them at their first run there, not at every run.
 */
import { createHash } from 'node:crypto';

import type pg from 'pg';

/** By text: the few texts prepared are named once each. */
const names = new Map<string, string>();

/**
 * `text` with `values` as a named statement: node-postgres prepares it at its first run on each
 * connection and runs it by name after. The name is a hash of the text, so two texts never share one
 * (node-postgres refuses a name reused for another text). Only for statements whose best plan does not
 * depend on their parameters' values: after five runs the server may keep one generic plan for any.
 */
export function prepared(text: string, values: readonly unknown[] = []): pg.QueryConfig {
  let name = names.get(text);
  if (name === undefined) {
    name = `trigsync_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
    names.set(text, name);
  }
  return { name, text, values: [...values] };
}
