/**
 * One side (source or target) of one table under verification: the SQL that hashes, splits and fetches
 * its rows by primary-key range. Both sides render every value the same way (`verifySessionSettings`,
 * and the target casts a column to the source's type where its own differs), so that a row has the
 * same text, and so the same hash, on both servers.
 */
import type pg from 'pg';

import { isJsonColumn, type ColumnInfo } from '../capture/catalog.js';
import { ident, qualifiedIdent } from '../config/identifiers.js';
import type { QualifiedName } from '../config/types.js';
import { setTextForms } from '../db/text-forms.js';

/** A primary key value: the text of each key column, in the source's types. */
export type Key = readonly string[];

/** A range of keys: from `lo` (inclusive) to `hi` (exclusive); undefined is unbounded. */
export interface KeyRange {
  lo: Key | undefined;
  hi: Key | undefined;
}

export const wholeTable: KeyRange = { lo: undefined, hi: undefined };

/** A bucket's row count and the sum of its rows' 64-bit hashes (numeric text, so no overflow). */
export interface RangeHash {
  count: number;
  hash: string;
}

/** Rows hashed in the database and rows (or keys) fetched to the client. */
export interface SideCounters {
  hashed: number;
  fetched: number;
}

/** What a side knows about its table; built by `tableSides`. */
export interface SideSpec {
  client: pg.ClientBase;
  relation: QualifiedName;
  /**
   * The table's own rows (ONLY): those of the tables that inherit from it are theirs, compared as theirs.
   * Not for a partitioned table, whose rows are its partitions'.
   */
  only: boolean;
  /** The mapping's row filter (source side only): an SQL boolean over the table aliased `t`. */
  filter: string | undefined;
  /** Per selected column, its value in the source's type. */
  columns: string[];
  /** Per key column, its value in the source's type (equality, text). */
  keyValues: string[];
  /** Per key column, the expression ranges compare: byte order where the two sides' orders may differ. */
  keyOrder: string[];
  /** Per key column, the source's type, to cast bound key texts. */
  keyTypes: string[];
}

/**
 * The text forms both sides render the same way, and a repair's writes read back (setTextForms).
 * extra_float_digits 1 gives floats that read back exactly; DateStyle ISO and a fixed TimeZone fix dates
 * and timestamps; bytea as hex.
 */
export async function verifySessionSettings(client: pg.ClientBase): Promise<void> {
  await client.query(
    `${setTextForms('session')}; set timezone = 'UTC'; set extra_float_digits = 1; set bytea_output = 'hex'`,
  );
}

/** Bound parameters of one statement, numbered in order of use. */
class Params {
  readonly values: unknown[] = [];
  add(value: unknown, type?: string): string {
    this.values.push(value);
    return `$${this.values.length}${type === undefined ? '' : `::${type}`}`;
  }
}

function tuple(expressions: readonly string[]): string {
  return expressions.length === 1 ? expressions[0]! : `(${expressions.join(', ')})`;
}

export class TableSide {
  private readonly from: string;
  private readonly keyOrder: string;
  private readonly keyTexts: string[];
  private readonly rowHash: string;

  readonly counters: SideCounters = { hashed: 0, fetched: 0 };
  /** Keys left out of every range (changed while the two sides' snapshots differ); compared by key. */
  private excluded: readonly Key[] = [];

  constructor(readonly spec: SideSpec) {
    this.from = `${spec.only ? 'only ' : ''}${qualifiedIdent(spec.relation)} as t`;
    this.keyOrder = tuple(spec.keyOrder);
    this.keyTexts = spec.keyValues.map((v, i) => `(${v})::text as k${i}`);
    // row(...)::text renders every type through its output function, as the seeds' hashtext(t::text).
    this.rowHash = `hashtextextended(row(${spec.columns.join(', ')})::text, 0)`;
  }

  private get client(): pg.ClientBase {
    return this.spec.client;
  }

  /** The key as a parameter tuple, cast to the source's types. */
  private keyParams(params: Params, key: Key): string {
    return tuple(key.map((v, i) => params.add(v, this.spec.keyTypes[i])));
  }

  /** Leave these keys out of every range from now on. */
  exclude(keys: readonly Key[]): void {
    this.excluded = keys;
  }

  /** `keys` as a subquery of typed key tuples, from one text array parameter per key column. */
  private keyList(params: Params, keys: readonly Key[]): string {
    const columns = this.spec.keyValues.map((_, i) => `u${i}`);
    const arrays = columns.map((_, i) =>
      params.add(
        keys.map((k) => k[i]),
        'text[]',
      ),
    );
    const typed = columns.map((c, i) => `u.${c}::${this.spec.keyTypes[i]}`);
    return `(select ${typed.join(', ')} from unnest(${arrays.join(', ')}) as u(${columns.join(', ')}))`;
  }

  /** The WHERE conditions of a range (and the row filter, and the excluded keys), as one SQL boolean. */
  private conditions(params: Params, range: KeyRange): string {
    const parts: string[] = [];
    if (this.spec.filter !== undefined) parts.push(`(${this.spec.filter})`);
    if (range.lo !== undefined) parts.push(`${this.keyOrder} >= ${this.keyParams(params, range.lo)}`);
    if (range.hi !== undefined) parts.push(`${this.keyOrder} < ${this.keyParams(params, range.hi)}`);
    if (this.excluded.length > 0) {
      // Keys are never NULL, so NOT IN means what it says; a short list is hashed once per statement.
      parts.push(`${tuple(this.spec.keyValues)} not in ${this.keyList(params, this.excluded)}`);
    }
    return parts.length === 0 ? 'true' : parts.join(' and ');
  }

  private keysOf(row: Record<string, string>): Key {
    return this.spec.keyValues.map((_, i) => row[`k${i}`]!);
  }

  /**
   * Count and hash the rows of `range` in the buckets that `splits` (sorted) cut it into: bucket 0 below
   * splits[0], bucket i from splits[i-1] on. One scan of the range; each row finds its bucket by a
   * balanced tree of comparisons (log2 of the bucket count), not a linear CASE.
   */
  async hashBuckets(range: KeyRange, splits: readonly Key[]): Promise<RangeHash[]> {
    const params = new Params();
    const where = this.conditions(params, range);
    const bounds = splits.map((split) => this.keyParams(params, split));
    const bucket = (first: number, last: number): string => {
      if (first === last) return String(first);
      const middle = Math.ceil((first + last) / 2);
      return `case when ${this.keyOrder} < ${bounds[middle - 1]} then ${bucket(first, middle - 1)} else ${bucket(middle, last)} end`;
    };
    const result = await this.client.query<{ b: number; n: number; hash: string }>(
      `select b, count(*) as n, coalesce(sum(h), 0)::text as hash
         from (select ${bucket(0, splits.length)} as b, ${this.rowHash} as h from ${this.from} where ${where}) x
        group by b`,
      params.values,
    );
    const hashes: RangeHash[] = Array.from({ length: splits.length + 1 }, () => ({ count: 0, hash: '0' }));
    for (const row of result.rows) {
      hashes[row.b] = { count: row.n, hash: row.hash };
      this.counters.hashed += row.n;
    }
    return hashes;
  }

  /**
   * Split points that cut `range` (holding `count` rows on this side) into about `buckets` equal parts:
   * every step-th key of an ordered scan of the range. Used below the top level, where a range is small
   * enough that reading its keys costs less than hashing it did.
   */
  async splitRange(range: KeyRange, count: number, buckets: number): Promise<Key[]> {
    const step = Math.ceil(count / buckets);
    if (count < 2 || step < 1) return [];
    const params = new Params();
    const where = this.conditions(params, range);
    const result = await this.client.query<Record<string, string>>(
      `select ${this.spec.keyValues.map((_, i) => `k${i}`).join(', ')}
         from (select ${this.keyTexts.join(', ')}, row_number() over (order by ${this.keyOrder}) as rn
                 from ${this.from} where ${where}) s
        where rn % ${params.add(step, 'int8')} = 0 and rn < ${params.add(count, 'int8')}
        order by rn`,
      params.values,
    );
    this.counters.fetched += result.rows.length;
    return result.rows.map((row) => this.keysOf(row));
  }

  /**
   * Split points for the whole table, from a block sample (TABLESAMPLE SYSTEM) of about `sampleBlocks`
   * pages: a few hundred page reads rather than an ordered scan of every key (about a third of the
   * hashing pass's time on 1M rows, measured), and no reliance on ANALYZE having run, as reltuples or
   * percentile estimates from statistics would. Rows within a page are clustered, hence whole pages and enough of them; uneven buckets only
   * cost a further split where they differ. The bucket count follows the table's estimated size, so a
   * bucket holds about `leafRows` rows, up to `topBuckets`.
   */
  async splitTable(options: { topBuckets: number; leafRows: number; sampleBlocks: number }): Promise<Key[]> {
    const size = await this.client.query<{ pages: number }>(
      // pg_partition_tree is empty for a table that is not partitioned: count the table itself too.
      `select (pg_relation_size($1::regclass)
               + coalesce((select sum(pg_relation_size(p.relid)) from pg_partition_tree($1::regclass) p), 0)
              )::int8 / current_setting('block_size')::int8 as pages`,
      [qualifiedIdent(this.spec.relation)],
    );
    const pages = size.rows[0]?.pages ?? 0;
    const percent = pages <= options.sampleBlocks ? 100 : (100 * options.sampleBlocks) / pages;
    // The same sample twice (REPEATABLE, one snapshot): first its size, then its every step-th key.
    const sample = `${this.from} tablesample system ($1::float8) repeatable (0) where ${this.spec.filter === undefined ? 'true' : `(${this.spec.filter})`}`;
    const counted = await this.client.query<{ n: number }>(`select count(*) as n from ${sample}`, [percent]);
    const sampled = counted.rows[0]?.n ?? 0;
    const estimate = (sampled * 100) / percent;
    const buckets = Math.min(options.topBuckets, Math.ceil(estimate / options.leafRows));
    if (buckets < 2 || sampled < 2) return [];
    const step = Math.ceil(sampled / buckets);
    const result = await this.client.query<Record<string, string>>(
      `select ${this.spec.keyValues.map((_, i) => `k${i}`).join(', ')}
         from (select ${this.keyTexts.join(', ')}, row_number() over (order by ${this.keyOrder}) as rn
                 from ${sample}) s
        where rn % $2 = 0 and rn < $3
        order by rn`,
      [percent, step, sampled],
    );
    this.counters.fetched += result.rows.length;
    return result.rows.map((row) => this.keysOf(row));
  }

  /** Every key of a (small) range with its row hash: the leaves of the narrowing. */
  async fetchRange(range: KeyRange): Promise<Map<string, KeyedRow>> {
    const params = new Params();
    const where = this.conditions(params, range);
    return this.fetch(
      `select ${this.keyTexts.join(', ')}, ${this.rowHash}::text as h from ${this.from} where ${where}`,
      params.values,
    );
  }

  /** The rows of the given keys (those that exist), with their hashes: for re-checking differences. */
  async fetchKeys(keys: readonly Key[]): Promise<Map<string, KeyedRow>> {
    if (keys.length === 0) return new Map();
    const params = new Params();
    const filter = this.spec.filter === undefined ? '' : `(${this.spec.filter}) and `;
    return this.fetch(
      `select ${this.keyTexts.join(', ')}, ${this.rowHash}::text as h
         from ${this.from}
        where ${filter}${tuple(this.spec.keyValues)} in ${this.keyList(params, keys)}`,
      params.values,
    );
  }

  /**
   * The rows of the given keys (those that exist, under the row filter) as row images made the way the
   * capture makes them (sql/source/007): `to_json` of the row, a column whose type to_json would cast to
   * json through its own text, and the json columns that are SQL NULL noted apart. Source side only:
   * `repair` writes these images to a target as the worker writes captured ones.
   */
  async fetchImages(keys: readonly Key[], columns: readonly ColumnInfo[]): Promise<Map<string, KeyedImage>> {
    if (keys.length === 0) return new Map();
    const params = new Params();
    const filter = this.spec.filter === undefined ? '' : `(${this.spec.filter}) and `;
    const list = columns
      .map((c) => (c.textForm ? `t.${ident(c.name)}::text as ${ident(c.name)}` : `t.${ident(c.name)}`))
      .join(', ');
    const json = columns.filter(isJsonColumn);
    const nulls =
      json.length === 0
        ? 'null::text[]'
        : `array_remove(array[${json.map((c) => `case when t.${ident(c.name)} is null then ${params.add(c.name, 'text')} end`).join(', ')}], null)`;
    const result = await this.client.query<
      Record<string, string> & { image: string; nulls: string[] | null }
    >(
      `select ${this.keyTexts.join(', ')}, (select to_json(i.*) from (select ${list}) as i)::text as image,
              ${nulls} as nulls
         from ${this.from}
        where ${filter}${tuple(this.spec.keyValues)} in ${this.keyList(params, keys)}`,
      params.values,
    );
    this.counters.fetched += result.rows.length;
    return new Map(
      result.rows.map((row) => {
        const key = this.keysOf(row);
        return [keyId(key), { key, image: { row: row.image, nulls: row.nulls } }];
      }),
    );
  }

  private async fetch(text: string, values: unknown[]): Promise<Map<string, KeyedRow>> {
    const result = await this.client.query<Record<string, string>>(text, values);
    this.counters.fetched += result.rows.length;
    const rows = new Map<string, KeyedRow>();
    for (const row of result.rows) {
      const key = this.keysOf(row);
      const id = keyId(key);
      // A key twice (a target without the primary key constraint) can never match one source row.
      rows.set(id, rows.has(id) ? { key, hash: 'duplicate' } : { key, hash: row.h! });
    }
    return rows;
  }
}

export interface KeyedRow {
  key: Key;
  hash: string;
}

/** A source row as a row image: its JSON text, and its json columns that are SQL NULL. */
export interface KeyedImage {
  key: Key;
  image: { row: string; nulls: string[] | null };
}

/** A key's identity in maps. */
export function keyId(key: Key): string {
  return JSON.stringify(key);
}

/** How a side orders its key columns: which are collatable, and which of those sort in byte order. */
interface KeyOrdering {
  collatable: Set<string>;
  /** Collatable columns under the C collation (directly or as the database's libc default). */
  byteOrder: Set<string>;
}

async function keyOrdering(
  client: pg.ClientBase,
  relation: QualifiedName,
  columns: readonly string[],
): Promise<KeyOrdering> {
  // to_jsonb(d): datlocprovider exists from PostgreSQL 15 on; before, every database is libc.
  const result = await client.query<{ name: string; byte_order: boolean }>(
    `select a.attname as name,
            coalesce(c.collname in ('C', 'POSIX')
                     or (c.collname = 'default' and d.provider = 'c' and d.datcollate in ('C', 'POSIX')),
                     false) as byte_order
       from pg_attribute a
       left join pg_collation c on c.oid = a.attcollation
       cross join (select datcollate, coalesce(to_jsonb(d) ->> 'datlocprovider', 'c') as provider
                     from pg_database d where datname = current_database()) d
      where a.attrelid = $1::regclass and a.attname = any($2::text[]) and a.attcollation <> 0`,
    [qualifiedIdent(relation), columns],
  );
  return {
    collatable: new Set(result.rows.map((r) => r.name)),
    byteOrder: new Set(result.rows.filter((r) => r.byte_order).map((r) => r.name)),
  };
}

/**
 * The two sides of a table. The target casts a column to the source's type where its own type
 * differs, so values render alike. A collatable key column is compared in byte order (COLLATE "C")
 * unless both sides already sort it so: the two servers' collations may order text differently, and
 * a range must hold the same keys on both. (Where both sort by C, the plain column keeps its index.)
 */
export async function tableSides(input: {
  source: {
    client: pg.ClientBase;
    relation: QualifiedName;
    columns: ColumnInfo[];
    filter: string | undefined;
    only: boolean;
  };
  target: { client: pg.ClientBase; relation: QualifiedName; columns: ColumnInfo[]; only: boolean };
  columns: readonly string[];
  key: readonly string[];
}): Promise<{ source: TableSide; target: TableSide }> {
  const { source, target } = input;
  const sourceType = new Map(source.columns.map((c) => [c.name, c.type]));
  const targetType = new Map(target.columns.map((c) => [c.name, c.type]));
  const cast = (name: string): boolean => targetType.get(name) !== sourceType.get(name);
  const [sourceOrder, targetOrder] = await Promise.all([
    keyOrdering(source.client, source.relation, input.key),
    keyOrdering(target.client, target.relation, input.key),
  ]);
  const sourceValue = (name: string): string => `t.${ident(name)}`;
  const targetValue = (name: string): string =>
    cast(name) ? `t.${ident(name)}::${sourceType.get(name)!}` : `t.${ident(name)}`;
  const inByteOrder = (name: string): boolean =>
    !sourceOrder.collatable.has(name) ||
    (sourceOrder.byteOrder.has(name) && targetOrder.byteOrder.has(name) && !cast(name));
  const order = (value: (name: string) => string) => (name: string) =>
    inByteOrder(name) ? value(name) : `(${value(name)} collate "C")`;
  const keyTypes = input.key.map((k) => sourceType.get(k)!);
  return {
    source: new TableSide({
      client: source.client,
      relation: source.relation,
      only: source.only,
      filter: source.filter,
      columns: input.columns.map(sourceValue),
      keyValues: input.key.map(sourceValue),
      keyOrder: input.key.map(order(sourceValue)),
      keyTypes,
    }),
    target: new TableSide({
      client: target.client,
      relation: target.relation,
      only: target.only,
      filter: undefined,
      columns: input.columns.map(targetValue),
      keyValues: input.key.map(targetValue),
      keyOrder: input.key.map(order(targetValue)),
      keyTypes,
    }),
  };
}
