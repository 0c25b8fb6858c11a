/**
 * The source's side of replicated sequences: reading a sequence's value, each target's sequences as its
 * worker last left them (`<schema>.target.sequences`, sql/source/011), and what `status` makes of the two.
 * Which sequences are carried, and how, is src/apply/sequences.ts.
 */
import type pg from 'pg';

import { ident } from '../config/identifiers.js';
import type { SequenceStatus } from '../lib/status-report.js';

/** One replicated sequence of a target, as its worker last saw it. Values are int8 as text. */
export interface SequenceState {
  /** Display names, e.g. `public.orders_id_seq`; also valid SQL text for to_regclass. */
  source: string;
  target: string;
  /** The target's last_value after the worker's last setval; null before its first nextval. */
  targetValue: string | null;
  /** The target sequence's increment; null when unknown (the sequence is missing). */
  increment: string | null;
  /** What keeps it from being carried (missing, no privilege, out of range); null when none. */
  problem: string | null;
}

export interface SourceSequence {
  found: boolean;
  /** The role may read its value (SELECT or USAGE). */
  readable: boolean;
  increment: bigint | null;
  /** The last value handed out (or cached by a session); null before the first nextval. */
  last: bigint | null;
}

/**
 * The values of sequences named by SQL text (to_regclass), in one query. Never fails for a missing
 * sequence or a missing privilege: it says so.
 */
export async function readSourceSequences(
  client: pg.ClientBase,
  names: readonly string[],
): Promise<SourceSequence[]> {
  if (names.length === 0) return [];
  const result = await client.query<{
    found: boolean;
    readable: boolean | null;
    increment: string | null;
    last: string | null;
  }>(
    `select c.oid is not null as found, r.readable, q.seqincrement::text as increment,
            case when r.readable then pg_sequence_last_value(c.oid)::text end as last
       from unnest($1::text[]) with ordinality as s (name, i)
       left join pg_class c on c.oid = to_regclass(s.name) and c.relkind = 'S'
       left join pg_sequence q on q.seqrelid = c.oid
       cross join lateral (select has_sequence_privilege(c.oid, 'SELECT,USAGE') as readable) r
      order by s.i`,
    [names],
  );
  return result.rows.map((r) => ({
    found: r.found,
    readable: r.readable === true,
    increment: r.increment === null ? null : BigInt(r.increment),
    last: r.last === null ? null : BigInt(r.last),
  }));
}

/** Record a target's sequences on the source. */
export async function saveSequenceStates(
  client: pg.ClientBase,
  schema: string,
  target: string,
  states: readonly SequenceState[],
): Promise<void> {
  await client.query(`update ${ident(schema)}.target set sequences = $2::jsonb where name = $1`, [
    target,
    JSON.stringify(states),
  ]);
}

/**
 * How far a target sequence trails its source: ascending, the target must be at or above the source's
 * value; descending (a negative increment), at or below it.
 */
export function sequenceLag(
  source: bigint | null,
  target: bigint | null,
  increment: bigint | null,
): { lag: number; behind: boolean } {
  if (source === null) return { lag: 0, behind: false };
  if (target === null) return { lag: Number(source < 0n ? -source : source), behind: true };
  const gap = increment !== null && increment < 0n ? target - source : source - target;
  return gap > 0n ? { lag: Number(gap), behind: true } : { lag: 0, behind: false };
}

/** Every target's sequences, by target name, with the source's values read now. */
export async function readSequenceStatus(
  client: pg.ClientBase,
  schema: string,
): Promise<Map<string, SequenceStatus[]>> {
  const stored = await client.query<{ name: string; sequences: SequenceState[] }>(
    `select name, sequences from ${ident(schema)}.target where jsonb_array_length(sequences) > 0`,
  );
  const all = stored.rows.flatMap((r) => r.sequences.map((s) => ({ target: r.name, state: s })));
  const sources = await readSourceSequences(
    client,
    all.map((s) => s.state.source),
  );
  const byTarget = new Map<string, SequenceStatus[]>();
  all.forEach(({ target, state }, i) => {
    const source = sources[i]?.last ?? null;
    const value = state.targetValue === null ? null : BigInt(state.targetValue);
    const increment = state.increment === null ? null : BigInt(state.increment);
    const list = byTarget.get(target) ?? [];
    list.push({
      source: state.source,
      target: state.target,
      sourceValue: source === null ? null : String(source),
      targetValue: state.targetValue,
      ...sequenceLag(source, value, increment),
      problem: state.problem,
    });
    byTarget.set(target, list);
  });
  return byTarget;
}
