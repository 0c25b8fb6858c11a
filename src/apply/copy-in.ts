/**
 * Large inserts by COPY. On the bet that a chunk meets no conflict (src/apply/chunk.ts), an insert step
 * of many rows goes straight into its target table by COPY FROM STDIN, without its statement's check of
 * the keys: a key that holds a row fails the COPY with unique_violation, and the chunk is made again
 * with its conflicts read, as when a guarded statement finds one. The target then neither parses the
 * images as JSON nor probes its key index before inserting: 100k rows of four columns took 300 ms of
 * the target's time where the statement took 500 ms. The rows' text is made here, while the chunk before
 * applies (prepareChunk).
 *
 * It writes the very rows the statement would. json_populate_recordset gives a column the text of a
 * JSON scalar (a string de-escaped, a number or boolean as written) through the type's input function,
 * and so does COPY with that text. A value that is a JSON object or array (a composite, an array) is
 * typed otherwise by json_populate_recordset: its step keeps the statement. So do tables whose json
 * columns need their JSON as it is, and tables with rules, which COPY ignores (TablePlan.copyable).
 */
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';

import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';

import { ident, qualifiedIdent } from '../config/identifiers.js';
import type { RowsStep } from './batch.js';
import type { TablePlan } from './plan.js';
import { walkFields } from './row-image.js';

/**
 * The JSON string at image[start, end) as COPY text. A JSON string holds no raw control character, so
 * one without a backslash is its own text and needs no COPY escape; one with is de-escaped, then its
 * backslashes, newlines, CRs and tabs escaped for COPY.
 */
function copyString(image: string, start: number, end: number): string {
  const json = image.slice(start, end);
  if (!json.includes('\\')) return json.slice(1, -1);
  return copyEscaped(JSON.parse(json) as string);
}

const copyEscapes: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** A value's text with its backslashes, newlines, CRs and tabs escaped for COPY. */
function copyEscaped(text: string): string {
  return text.replace(/[\\\n\r\t]/g, (c) => copyEscapes[c]!);
}

/**
 * Row images (JSON object texts) as COPY text of the plan's columns, one line each; undefined when a
 * value is a JSON object or array. A column that an image lacks is NULL, or the value of a column added
 * since (TablePlan.missingValues), as json_populate_recordset makes it. Made by the daemon, whose one
 * thread is what limits a bulk apply: one walk of each image, no map of its fields.
 */
export function copyText(table: TablePlan, images: readonly string[]): string | undefined {
  const index = new Map(table.columns.map((c, i) => [c, i]));
  const lacking = table.columns.map((c) => {
    const value = table.missingValues.get(c);
    return value === undefined ? '\\N' : copyEscaped(value);
  });
  const values: string[] = new Array<string>(table.columns.length);
  let text = '';
  let scalars = true;
  for (const image of images) {
    for (let i = 0; i < values.length; i++) values[i] = lacking[i]!;
    walkFields(image, (name, start, end) => {
      const at = index.get(name);
      if (at === undefined) return true;
      const first = image[start];
      if (first === '"') values[at] = copyString(image, start, end);
      else if (first === '{' || first === '[') scalars = false;
      else values[at] = first === 'n' ? '\\N' : image.slice(start, end); // n: null
      return scalars;
    });
    if (!scalars) return undefined;
    text += values.join('\t') + '\n';
  }
  return text;
}

/** Per insert step, its rows as COPY text once made: null when they cannot go by COPY. */
const made = new WeakMap<RowsStep, string | null>();

/**
 * The COPY text of an insert step of at least `fromRows` rows of a copyable table, made once; undefined
 * when the step takes its statement.
 */
export function stepCopyText(step: RowsStep, fromRows: number): string | undefined {
  if (step.kind !== 'insert' || !step.table.copyable || step.keys.length < fromRows) return undefined;
  let text = made.get(step);
  if (text === undefined) {
    text =
      copyText(
        step.table,
        step.keys.map((k) => k.after!.row),
      ) ?? null;
    made.set(step, text);
  }
  return text ?? undefined;
}

/** COPY `text` (copyText's) into the table's columns, in the client's open transaction. */
export async function copyInto(client: pg.Client, table: TablePlan, text: string): Promise<void> {
  const stream = copyIntoStream(client, table);
  stream.end(text);
  await finished(stream);
}

/** A COPY FROM STDIN into the table's columns, in the client's open transaction: its rows' text goes in. */
export function copyIntoStream(client: pg.Client, table: TablePlan): Writable {
  return client.query(
    copyFrom(`copy ${qualifiedIdent(table.target)} (${table.columns.map(ident).join(', ')}) from stdin`),
  );
}

/**
 * The target link's round trip, the shortest seen: how long the target took to answer the first
 * statement of a pipeline (a session's, a chunk's `begin`). Load on either side only lengthens a round
 * trip, so the shortest is the link's own.
 */
export class RoundTrip {
  private shortestMs = Infinity;

  observe(ms: number): void {
    if (ms < this.shortestMs) this.shortestMs = ms;
  }

  /**
   * The fewest rows an insert step must have to go by COPY. A COPY costs two round trips more than a
   * statement sent with the rest of its chunk, and saves the target about 2 µs a row; it never goes
   * below `leastCopyRows`, where the saving is small whatever the link. None before a round trip is seen.
   */
  get copyFromRows(): number {
    return Math.max(leastCopyRows, Math.ceil((2 * this.shortestMs) / savedMsPerRow));
  }

  /** A link of a LAN or of one host, where a commit more costs the target a flush more than a wait. */
  get short(): boolean {
    return shortRoundTrip(this.shortestMs);
  }
}

/** A round trip of a link of a LAN or of one host (RoundTrip.short). */
export function shortRoundTrip(ms: number): boolean {
  return ms < shortLinkMs;
}

const shortLinkMs = 5;

const savedMsPerRow = 0.002;
const leastCopyRows = 1000;
