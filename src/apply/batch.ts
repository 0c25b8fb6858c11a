/**
 * Turn a chunk of changes into set-based steps, a few per table however the tables interleave.
 *
 * Each change is a removal of an old row, an arrival of a new row, or both (an update). Between two
 * TRUNCATEs, every touched key of a table keeps only what the target should hold before its first change
 * (`before`) and after its last (`after`); a key with both is updated in place, one with only `before` is
 * deleted, one with only `after` inserted. An update whose old and new key differ and that is the only
 * change of both keys moves the row (an UPDATE of its key), so that the row stays one row for the
 * target's foreign keys, unique indexes and triggers.
 *
 * The steps are ordered for the target's foreign keys (TablePlan.rank: parents first): inserts, moves
 * and updates of parents before those of their children, then deletes of children before their parents.
 * Children thus point at their new parents before old parents go, whatever order the source logged them
 * in (a source's ON UPDATE CASCADE logs the children first). TRUNCATEs one transaction made together are
 * one step, the partitions it truncated alone (P) with them.
 */
import type { LogChange } from '../changelog/window.js';
import type { TablePlan } from './plan.js';
import { canonicalKey, KeyReader, objectText, rowFields } from './row-image.js';

/** A row image as captured: its JSON text, and its json columns that are SQL NULL. */
export interface Image {
  row: string;
  nulls: string[] | null;
}

/** Row images ready for the target: JSON texts without their json columns, and those columns apart. */
export interface RowImages {
  rows: string[];
  /** Per json column of the table plan, its value text in each row (null: SQL NULL). */
  json: (string | null)[][];
}

/** One touched key of a table in a step: what the target should hold before and after. */
export interface KeyChange {
  /** The key as a JSON object text, as captured (for messages and the error queue). */
  key: string;
  /** The change of the key's first event: the one a conflict is reported on. */
  first: LogChange;
  /** Every change touching the key, in order: what `skip` leaves out. */
  ids: number[];
  before: Image | undefined;
  after: Image | undefined;
  /**
   * A key whose row came from another key of the batch that ends deleted (`movedTo` there): that key's
   * old row. A target applying as origin may hold the row here already, moved by its own ON UPDATE
   * CASCADE with a parent's key (conflicts.ts settleCascaded).
   */
  arrivedFrom?: Image;
  movedTo?: KeyChange;
  /** Its row was found here on its way from `arrivedFrom`, and completed: no conflict, nor its old key's. */
  settled?: boolean;
  /** Removed again after other changes of the batch: the row as they left it, which the source removed. */
  lastBefore?: Image | undefined;
}

export type RowsStepKind = 'insert' | 'update' | 'move' | 'delete';

export interface RowsStep {
  kind: RowsStepKind;
  table: TablePlan;
  /** insert: `after` set; update and move: both set (move: `before` under the old key); delete: `after` unset. */
  keys: KeyChange[];
}

export interface TruncateStep {
  kind: 'truncate';
  /** Truncated together. */
  tables: TablePlan[];
  /** Partitions truncated alone: the rows of `table` within the bounds `where` (SQL) go. */
  partitions: { table: TablePlan; where: string }[];
}

export type ApplyStep = RowsStep | TruncateStep;

function emptyImages(table: TablePlan): RowImages {
  return { rows: [], json: table.jsonColumns.map(() => []) };
}

/** Add a row image, typed later by the target table. */
function pushImage(images: RowImages, table: TablePlan, image: Image): void {
  if (table.imageJsonColumns.length === 0) {
    images.rows.push(image.row);
    return;
  }
  // Cut the json columns out (json_populate_record would choke on a \u0000 in them); pass them apart.
  const fields = rowFields(image.row);
  const json = new Set(table.imageJsonColumns);
  images.rows.push(
    objectText(
      [...fields.keys()].filter((n) => !json.has(n)),
      fields,
    ),
  );
  table.jsonColumns.forEach((c, i) => {
    const value = fields.get(c.name);
    // An image logged without a note of its SQL NULLs (by capture_rows(), before the triggers of a table
    // that gained a json column are made anew): its JSON null stands for SQL NULL, by far the commoner.
    const sqlNull = image.nulls === null ? value === 'null' : image.nulls.includes(c.name);
    images.json[i]!.push(sqlNull ? null : (value ?? null));
  });
}

/** The images of `keys`, taken by `pick`, in order. */
export function imagesOf<K = KeyChange>(
  table: TablePlan,
  keys: readonly K[],
  pick: (k: K) => Image,
): RowImages {
  const images = emptyImages(table);
  for (const key of keys) pushImage(images, table, pick(key));
  return images;
}

/** A removal (old row) or an arrival (new row) of one key. */
interface RowEvent {
  change: LogChange;
  arrival: boolean;
  image: Image;
  keep: boolean;
}

/** The events of one change, with an update's arrival apart: a statement's arrivals wait for its removals. */
function eventsOf(change: LogChange): { removal?: RowEvent; arrival?: RowEvent } {
  const row = change.row!;
  switch (change.op) {
    case 'I':
      return { arrival: { change, arrival: true, image: { row, nulls: change.nulls }, keep: change.keep } };
    case 'D':
    case 'V':
      return { removal: { change, arrival: false, image: { row, nulls: change.nulls }, keep: change.keep } };
    case 'U': {
      const arrival = { change, arrival: true, image: { row, nulls: change.nulls }, keep: change.keep };
      if (change.oldRow === null) return { arrival }; // logged before sql/source/007: its V came first
      const old = { row: change.oldRow, nulls: change.oldNulls };
      return { removal: { change, arrival: false, image: old, keep: change.keepOld }, arrival };
    }
    case 'T':
    case 'P':
      return {};
  }
}

/** A key's JSON object text as captured, and in the form that compares keys (canonicalKey). */
interface KeyText {
  text: string;
  canonical: string;
}

interface KeyState extends KeyChange {
  canonical: string;
  /** The key's text in its last arrival: another than `key` where an update wrote it anew (1.0 as 1.00). */
  arrivedAs: string | undefined;
}

/** The touched keys of one table since the last TRUNCATE. */
class TableChanges {
  readonly keys = new Map<string, KeyState>();
  /** Updates whose old and new key differ, by change id: candidates for a move. */
  readonly keyChanges = new Map<number, { from: string; to: string }>();
  private readonly keyReader: KeyReader;

  private readonly identityKey: boolean;

  constructor(readonly table: TablePlan) {
    this.keyReader = new KeyReader(table.key);
    this.identityKey = table.key.some((k) => table.identityAlways.includes(k));
  }

  keyOf(image: Image): KeyText {
    const text = this.keyReader.read(image.row);
    return { text, canonical: canonicalKey(text) };
  }

  /** Add an event of `key` (keyOf its image). */
  add(event: RowEvent, key: KeyText): void {
    const { canonical } = key;
    let state = this.keys.get(canonical);
    if (state === undefined) {
      const before = !event.arrival && event.keep ? event.image : undefined;
      // `[id]`, not `[]` and a push: V8 gives a pushed-to array room for 16, and a chunk's keys mostly
      // have one change (20 targets' steps held 48 MB of that room on a 50k-change backlog).
      const ids = [event.change.id];
      state = {
        canonical,
        key: key.text,
        first: event.change,
        ids,
        before,
        after: undefined,
        arrivedAs: undefined,
      };
      this.keys.set(canonical, state);
    } else {
      if (state.ids.at(-1) !== event.change.id) state.ids.push(event.change.id);
      if (!event.arrival) state.lastBefore = event.keep ? event.image : undefined;
    }
    state.after = event.arrival && event.keep ? event.image : undefined;
    if (event.arrival) state.arrivedAs = key.text;
  }

  /** The steps of this table, by kind (each key as its state: a KeyChange with its canonical text). */
  steps(): Record<RowsStepKind, KeyChange[]> {
    const steps: Record<RowsStepKind, KeyChange[]> = { insert: [], update: [], move: [], delete: [] };
    const moved = new Set<string>();
    for (const [id, { from, to }] of this.keyChanges) {
      const old = this.keys.get(from)!;
      const now = this.keys.get(to)!;
      const alone = old.ids.length === 1 && now.ids.length === 1 && old.ids[0] === id && now.ids[0] === id;
      // A key GENERATED ALWAYS AS IDENTITY on the target: no UPDATE writes it, so the row moves by a
      // delete and an insert (OVERRIDING SYSTEM VALUE).
      if (!alone || old.before === undefined || now.after === undefined || this.identityKey) {
        if (old.before !== undefined && old.after === undefined && now.before === undefined) {
          now.arrivedFrom = old.before;
          old.movedTo = now;
        }
        continue;
      }
      steps.move.push({ key: old.key, first: old.first, ids: [id], before: old.before, after: now.after });
      moved.add(from).add(to);
    }
    for (const state of this.keys.values()) {
      if (moved.has(state.canonical)) continue;
      // A key that came and went, whose delete only checks that the target holds no row under it: under
      // a loose key, that row may be one of this table's new keys in other letters.
      if (state.after === undefined && state.before === undefined && this.table.looseKey) continue;
      if (state.after === undefined) steps.delete.push(state);
      else if (state.before === undefined) steps.insert.push(state);
      // The same key in other digits (numeric's 1.0 written as 1.00): an update in place would keep the
      // target's. `key` is the old row's text here, the key's first event being its removal.
      else if (state.arrivedAs !== state.key) steps.move.push(state);
      else steps.update.push(state);
    }
    return steps;
  }
}

/** Changes between two TRUNCATEs, by table, and the update statements whose arrivals still wait. */
class Segment {
  readonly tables = new Map<number, TableChanges>();
  /** UPDATE statements whose new rows have not arrived yet, by statement. */
  private readonly pending = new Map<
    number,
    { txid: string; arrivals: { event: RowEvent; key: KeyText }[] }
  >();
  /** The statement a transaction is in, while its arrivals wait. */
  private readonly openIn = new Map<string, number>();
  /** `relid:key` of every waiting arrival -> its statement. */
  private readonly waitingKeys = new Map<string, number>();
  /**
   * Of each table whose keys are loose (TablePlan.looseKey), the statements of its removals whose key
   * did not come back in the same change: a delete's (null), a key-changing update's.
   */
  private readonly removals = new Map<number, Set<number | null>>();

  constructor(private readonly plans: ReadonlyMap<number, TablePlan>) {}

  get empty(): boolean {
    return this.tables.size === 0 && this.pending.size === 0;
  }

  /**
   * A statement's new rows arrive once its last row is read: when its transaction goes on with something
   * else, or a later transaction touches one of its new keys (it could only after this one committed).
   */
  add(change: LogChange, table: TablePlan): void {
    const open = this.openIn.size === 0 ? undefined : this.openIn.get(change.txid);
    if (open !== undefined && open !== change.statement) this.settle(open);
    const { removal, arrival } = eventsOf(change);
    const changes = this.of(table);
    let from: KeyText | undefined;
    if (removal !== undefined) {
      from = changes.keyOf(removal.image);
      this.settleKey(table, from, change.statement);
      changes.add(removal, from);
    }
    const to = arrival === undefined ? undefined : changes.keyOf(arrival.image);
    // A V (an old image logged apart, before sql/source/007) is half of an update whose U follows.
    if (from !== undefined && table.looseKey && change.op !== 'V' && from.canonical !== to?.canonical) {
      let statements = this.removals.get(table.relid);
      if (statements === undefined) this.removals.set(table.relid, (statements = new Set()));
      statements.add(change.statement);
    }
    if (arrival === undefined || to === undefined) return;
    this.settleKey(table, to, change.statement);
    if (change.statement === null) {
      changes.add(arrival, to);
      return;
    }
    if (from !== undefined && from.canonical !== to.canonical) {
      changes.keyChanges.set(change.id, { from: from.canonical, to: to.canonical });
    }
    let statement = this.pending.get(change.statement);
    if (statement === undefined) {
      statement = { txid: change.txid, arrivals: [] };
      this.pending.set(change.statement, statement);
      this.openIn.set(change.txid, change.statement);
    }
    statement.arrivals.push({ event: arrival, key: to });
    this.waitingKeys.set(`${table.relid}:${to.canonical}`, change.statement);
  }

  /**
   * Whether `change` would bring a row of a loose-key table after a removal of another statement in this
   * segment. Its steps insert before they delete, which is right only where an inserted key differs from
   * every deleted one; loose keys that differ in text may be one key to the target ('tAg5' inserted
   * where 'TAG5' was deleted), and the delete would then take the new row. Such a change starts a new
   * segment, applied after this one, as a TRUNCATE does. The rows of one UPDATE statement stay together.
   */
  mixes(change: LogChange, table: TablePlan): boolean {
    if (!table.looseKey || change.op === 'D' || change.op === 'V') return false;
    const statements = this.removals.get(table.relid);
    if (statements === undefined) return false;
    return change.statement === null || statements.size > 1 || !statements.has(change.statement);
  }

  private settleKey(table: TablePlan, key: KeyText, statement: number | null): void {
    if (this.waitingKeys.size === 0) return;
    const waiting = this.waitingKeys.get(`${table.relid}:${key.canonical}`);
    if (waiting !== undefined && waiting !== statement) this.settle(waiting);
  }

  /** The statement's rows are all read: its new rows arrive. */
  private settle(id: number): void {
    const statement = this.pending.get(id);
    if (statement === undefined) return;
    this.pending.delete(id);
    if (this.openIn.get(statement.txid) === id) this.openIn.delete(statement.txid);
    for (const { event, key } of statement.arrivals) {
      const table = this.plans.get(event.change.relid)!;
      this.waitingKeys.delete(`${table.relid}:${key.canonical}`);
      this.of(table).add(event, key);
    }
  }

  private of(table: TablePlan): TableChanges {
    let changes = this.tables.get(table.relid);
    if (changes === undefined) {
      changes = new TableChanges(table);
      this.tables.set(table.relid, changes);
    }
    return changes;
  }

  /** The segment's steps in foreign-key order. */
  steps(): ApplyStep[] {
    for (const id of [...this.pending.keys()]) this.settle(id);
    const byRank = [...this.tables.values()]
      .map((t) => ({ table: t.table, steps: t.steps() }))
      .sort((a, b) => a.table.rank - b.table.rank);
    const steps: RowsStep[] = [];
    for (const { table, steps: s } of byRank) {
      steps.push({ kind: 'insert', table, keys: s.insert });
      steps.push({ kind: 'move', table, keys: s.move });
      steps.push({ kind: 'update', table, keys: s.update });
    }
    for (const { table, steps: s } of byRank.reverse()) steps.push({ kind: 'delete', table, keys: s.delete });
    return steps.filter((s) => s.keys.length > 0);
  }
}

export function buildSteps(
  changes: readonly LogChange[],
  tables: ReadonlyMap<number, TablePlan>,
): ApplyStep[] {
  const steps: ApplyStep[] = [];
  let segment = new Segment(tables);
  /** The transaction of the last TRUNCATE step, while no row change followed it. */
  let truncating: string | undefined;
  for (const change of changes) {
    const table = tables.get(change.relid);
    if (table === undefined) continue;
    if (change.op !== 'T' && change.op !== 'P') {
      truncating = undefined;
      if (change.row === null) continue;
      if (segment.mixes(change, table)) {
        steps.push(...segment.steps());
        segment = new Segment(tables);
      }
      segment.add(change, table);
      continue;
    }
    if (!segment.empty) {
      steps.push(...segment.steps());
      segment = new Segment(tables);
    }
    const last = steps.at(-1);
    const step: TruncateStep =
      truncating === change.txid && last?.kind === 'truncate'
        ? last
        : { kind: 'truncate', tables: [], partitions: [] };
    if (step !== last) steps.push(step);
    if (change.op === 'T') {
      if (!step.tables.includes(table)) step.tables.push(table);
      step.partitions = step.partitions.filter((p) => p.table !== table);
    } else if (!step.tables.includes(table)) {
      step.partitions.push({ table, where: (JSON.parse(change.row!) as { where: string }).where });
    }
    truncating = change.txid;
  }
  if (!segment.empty) steps.push(...segment.steps());
  return steps;
}
