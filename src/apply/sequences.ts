/**
 * Replicated sequences: every target's sequence is kept at or above its source's value, so that a
 * promoted target never hands out a key the source has used (docs/operations.md, "Sequences").
 *
 * Which: each sequence a captured table owns (serial: pg_depend deptype 'a'; identity: 'i'), carried to
 * the sequence the mapped target table owns in the column of the same name; and each sequence the config
 * lists (`sequences`), to the same name or the one it maps to. An owned sequence is not carried to a
 * target that captures the table itself (a multi-master node writes with its own sequence); a listed one
 * always is (src/apply/sequence-pairs.ts).
 *
 * How: one query reads every source value, one statement on the target moves each sequence that trails
 * with setval(), in the same statement that checks it trails (never backwards) and that the value keeps
 * the target's residue modulo its increment (a node that hands out every 10th key stays on its own).
 * A descending sequence is kept at or below its source. A sequence that cannot be carried (missing, no
 * privilege, out of its range) is warned of once and shown in status; it never parks the target.
 */
import type pg from 'pg';

import { formatQualifiedName, ident } from '../config/identifiers.js';
import type { Config, TargetConfig } from '../config/types.js';
import { coerceError } from '../failure/errors.js';
import type { Logger } from '../lib/logger.js';
import {
  readSourceSequences,
  saveSequenceStates,
  type SequenceState,
  type SourceSequence,
} from '../changelog/sequence-state.js';
import type { TargetPlan } from './plan.js';
import { resolveSequences, type SequencePair } from './sequence-pairs.js';

/** At a window's close, sequences are carried at most this often... */
const closedIntervalMs = 1_000;
/** ...and while windows stay open (a backlog), this often. */
const busyIntervalMs = 3_000;
/** What is carried is found anew this often, and whenever the plan is rebuilt. */
const resolveIntervalMs = 60_000;

/**
 * The value a target sequence is set to: the first at or above the source's last value (at or below,
 * descending) that is congruent to `base` (a value of the target sequence) modulo its increment.
 */
export function keepResidue(sourceLast: bigint, base: bigint, increment: bigint): bigint {
  if (increment === 0n) throw new RangeError('a sequence increment is never 0');
  const step = increment < 0n ? -increment : increment;
  const mod = (n: bigint): bigint => ((n % step) + step) % step;
  return increment > 0n ? sourceLast + mod(base - sourceLast) : sourceLast - mod(sourceLast - base);
}

/** What a target statement learned of one target sequence. */
interface TargetRow {
  found: boolean;
  writable: boolean;
  readable: boolean;
  increment: string | null;
  min: string | null;
  max: string | null;
  start: string | null;
  last: string | null;
  /** An owned sequence whose target has become a trigsync source since it was resolved. */
  peer: boolean;
  set: string | null;
}

/** The target sequence as last seen: its increment, and a value of it to keep the residue of. */
interface TargetSide {
  increment: bigint;
  base: bigint;
}

/**
 * Set each target sequence to its wanted value where that is ahead of it (in the direction of its
 * increment), keeps its residue, and lies in its range; read every target sequence alike. One statement.
 * A sequence that has not handed out a value yet counts as one step before its start.
 */
async function setTargetSequences(
  target: pg.ClientBase,
  schema: string,
  rows: readonly { name: string; wanted: bigint | null; increment: bigint | null; owned: boolean }[],
): Promise<TargetRow[]> {
  const result = await target.query<TargetRow>(
    `select c.oid is not null as found, coalesce(p.writable, false) as writable,
            coalesce(p.readable, false) as readable, q.seqincrement::text as increment,
            q.seqmin::text as min, q.seqmax::text as max, q.seqstart::text as start, l.last::text as last,
            coalesce(s.owned and to_regclass($5) is not null, false) as peer,
            case when s.wanted is not null and p.writable and p.readable
                      and not (s.owned and to_regclass($5) is not null)
                      and q.seqincrement = s.increment
                      and s.wanted between q.seqmin and q.seqmax
                      and mod(s.wanted::numeric - coalesce(l.last, q.seqstart), q.seqincrement) = 0
                      and case when q.seqincrement > 0
                               then s.wanted > coalesce(l.last::numeric, q.seqstart::numeric - q.seqincrement)
                               else s.wanted < coalesce(l.last::numeric, q.seqstart::numeric - q.seqincrement) end
                 then setval(c.oid, s.wanted, true)::text end as set
       from unnest($1::text[], $2::int8[], $3::int8[], $4::bool[]) with ordinality
              as s (name, wanted, increment, owned, i)
       left join pg_class c on c.oid = to_regclass(s.name) and c.relkind = 'S'
       left join pg_sequence q on q.seqrelid = c.oid
       cross join lateral (select has_sequence_privilege(c.oid, 'UPDATE') as writable,
                                  has_sequence_privilege(c.oid, 'SELECT,USAGE') as readable) p
       cross join lateral (select case when p.readable then pg_sequence_last_value(c.oid) end as last) l
      order by s.i`,
    [
      rows.map((r) => r.name),
      rows.map((r) => (r.wanted === null ? null : String(r.wanted))),
      rows.map((r) => (r.increment === null ? null : String(r.increment))),
      rows.map((r) => r.owned),
      `${ident(schema)}.captured_table`,
    ],
  );
  return result.rows;
}

/** A target worker's sequences: resolved with its plan, carried at window closes and while busy. */
export class SequenceKeeper {
  #pairs: SequencePair[] | undefined;
  #resolvedFor: TargetPlan | undefined;
  #resolvedAt = 0;
  /**
   * Its first carry waits an interval too: resolving the pairs reads both catalogs on fresh backends, 2-4 ms
   * that a start's first chunk waited for.
   */
  #ranAt = Date.now();
  #sides = new Map<string, TargetSide>();
  /** Problems warned of, so that each is logged once while it lasts. */
  #warned = new Set<string>();
  /** The states last saved on the source, as JSON. */
  #saved: string | undefined;

  constructor(
    private readonly config: Config,
    private readonly target: TargetConfig,
    private readonly log: Logger,
  ) {}

  /**
   * Carry the sequences if it is time: at most once a second when a window closed, every few seconds
   * otherwise. Never throws: a failure is a warning, and the worker's own statements meet a broken
   * connection soon enough.
   */
  async keep(source: pg.ClientBase, target: pg.ClientBase, plan: TargetPlan, windowClosed: boolean) {
    const now = Date.now();
    if (now - this.#ranAt < (windowClosed ? closedIntervalMs : busyIntervalMs)) return;
    this.#ranAt = now;
    try {
      if (
        this.#pairs === undefined ||
        this.#resolvedFor !== plan ||
        now - this.#resolvedAt > resolveIntervalMs
      ) {
        const { schema } = this.config;
        this.#pairs = await resolveSequences(source, target, schema, plan, this.target.sequences);
        this.#resolvedFor = plan;
        this.#resolvedAt = now;
      }
      const states = await this.carry(source, target, this.#pairs);
      this.report(states);
      const json = JSON.stringify(states);
      if (json !== this.#saved) {
        await saveSequenceStates(source, this.config.schema, this.target.name, states);
        this.#saved = json;
      }
    } catch (thrown) {
      this.#pairs = undefined;
      this.warnOnce(`sequences not carried: ${coerceError(thrown).message}`);
    }
  }

  private async carry(
    source: pg.ClientBase,
    target: pg.ClientBase,
    pairs: readonly SequencePair[],
  ): Promise<SequenceState[]> {
    const carried = pairs.filter((p) => p.target !== undefined && p.problem === undefined);
    const values = await readSourceSequences(
      source,
      carried.map((p) => formatQualifiedName(p.source)),
    );
    if (carried.length === 0) return pairs.map((p) => stateOf(p, undefined, undefined));
    let rows: TargetRow[] = [];
    // A second round when a target sequence was not known yet or has changed (its increment, a setval
    // to another residue): the values it is set to are worked out from what the first round read.
    for (let round = 0; round < 2; round++) {
      const asked = carried.map((p, i) => {
        const name = formatQualifiedName(p.target!);
        const side = this.#sides.get(name);
        const last = values[i]?.last ?? null;
        const sourceIncrement = values[i]?.increment ?? null;
        const sameWay =
          side !== undefined && sourceIncrement !== null && side.increment > 0n === sourceIncrement > 0n;
        return {
          name,
          wanted: sameWay && last !== null ? keepResidue(last, side.base, side.increment) : null,
          increment: side?.increment ?? null,
          owned: p.owned,
          unknown: side === undefined && last !== null,
        };
      });
      rows = await setTargetSequences(target, this.config.schema, asked);
      this.remember(carried, rows);
      const learned = asked.some((a) => a.unknown && this.#sides.has(a.name));
      if (!learned && !this.refreshed(rows, asked)) break;
    }
    if (rows.some((r) => r.peer)) {
      // The target captures its tables now (it joined a mesh): find again what it takes.
      this.#pairs = undefined;
    }
    return pairs.map((p) => {
      const at = carried.indexOf(p);
      return at < 0 ? stateOf(p, undefined, undefined) : stateOf(p, values[at], rows[at]);
    });
  }

  /** Keep what the statement read of each target sequence: its increment, bounds and residue. */
  private remember(pairs: readonly SequencePair[], rows: readonly TargetRow[]): void {
    pairs.forEach((p, i) => {
      const row = rows[i];
      const name = formatQualifiedName(p.target!);
      if (row?.increment == null || row.start === null) {
        this.#sides.delete(name);
        return;
      }
      this.#sides.set(name, {
        increment: BigInt(row.increment),
        base: BigInt(row.set ?? row.last ?? row.start),
      });
    });
  }

  /** Whether a value asked for was refused because the target sequence was not what it seemed. */
  private refreshed(
    rows: readonly TargetRow[],
    asked: readonly { wanted: bigint | null; increment: bigint | null }[],
  ): boolean {
    return rows.some((row, i) => {
      const ask = asked[i];
      if (ask?.wanted == null || row.set !== null || row.increment === null) return false;
      const increment = BigInt(row.increment);
      const base = BigInt(row.last ?? row.start ?? '0');
      return increment !== ask.increment || (ask.wanted - base) % increment !== 0n;
    });
  }

  /** Warn once of each problem while it lasts. */
  private report(states: readonly SequenceState[]): void {
    const now = new Set<string>();
    for (const s of states) {
      if (s.problem === null) continue;
      const message = `sequence ${s.source} -> ${s.target}: ${s.problem}`;
      now.add(message);
      this.warnOnce(message);
    }
    // A problem that is gone is warned of again should it come back.
    for (const message of this.#warned) if (!now.has(message)) this.#warned.delete(message);
  }

  private warnOnce(message: string): void {
    if (this.#warned.has(message)) return;
    this.#warned.add(message);
    this.log.warn(`${message}; the target is not parked for it`);
  }
}

/** A pair as status shows it; without a row, only what was found when resolving. */
function stateOf(
  pair: SequencePair,
  source: SourceSequence | undefined,
  row: TargetRow | undefined,
): SequenceState {
  const target = pair.target === undefined ? '(none)' : formatQualifiedName(pair.target);
  return {
    source: formatQualifiedName(pair.source),
    target,
    targetValue: row?.set ?? row?.last ?? null,
    increment: row?.increment ?? null,
    problem: pair.problem ?? (row === undefined ? null : problemOf(pair, target, source, row)),
  };
}

/** Why a sequence is not carried, if it is not. */
function problemOf(
  pair: SequencePair,
  targetName: string,
  source: SourceSequence | undefined,
  row: TargetRow,
): string | null {
  const sourceName = formatQualifiedName(pair.source);
  if (source === undefined || !source.found) return `source sequence ${sourceName} does not exist`;
  if (!source.readable)
    return `the source role may not read sequence ${sourceName}: grant select on sequence ${sourceName}`;
  if (!row.found) return `target sequence ${targetName} does not exist on the target`;
  if (!row.writable || !row.readable)
    return (
      `the target role may not set sequence ${targetName}: ` +
      `grant select, update on sequence ${targetName} to the role trigsync connects as`
    );
  if (row.peer) return null;
  const increment = BigInt(row.increment!);
  if (source.increment !== null && source.increment > 0n !== increment > 0n)
    return `source sequence ${sourceName} and target sequence ${targetName} count in opposite directions`;
  if (source.last === null || row.set !== null) return null;
  const base = BigInt(row.last ?? row.start!);
  const wanted = keepResidue(source.last, base, increment);
  if (wanted > BigInt(row.max!) || wanted < BigInt(row.min!))
    return (
      `target sequence ${targetName} cannot be kept at or ${increment > 0n ? 'above' : 'below'} ` +
      `the source's value: it ends at ${increment > 0n ? row.max! : row.min!}`
    );
  return null;
}
