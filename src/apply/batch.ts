/**
 * Turn a chunk of changes into set-based steps. Consecutive changes of one table form a run; in a run
 * each key keeps only its last state, all touched keys are deleted first, then the rows whose last state
 * is present (and pass the row filter) are inserted. A TRUNCATE is a barrier applied in its place.
 *
 * Each key's first change in a run also says what the target should hold before the run (the conflict
 * check, src/apply/conflicts.ts): the old row for an update or delete whose old row passes the filter,
 * no row for an insert, or for an update that brings the key in.
 */
import type { LogChange } from '../log/window.js';
import type { TablePlan } from './plan.js';
import { objectText, rowFields } from './row-image.js';

/** Row images ready for the target: JSON texts without their json columns, and those columns apart. */
export interface RowImages {
  rows: string[];
  /** Per json column of the table plan, its value text in each row (null: SQL NULL). */
  json: (string | null)[][];
}

/** One touched key of a run: its changes there, in order. */
export interface KeyRun {
  /** The key as a JSON object text, as captured. */
  key: string;
  first: LogChange;
  ids: number[];
  /** Whether the target should hold the first change's old row before the run (else: no row). */
  expectsRow: boolean;
}

export interface RowsStep {
  kind: 'rows';
  table: TablePlan;
  /** Every touched key, in the order of `deleteKeys`. */
  keys: KeyRun[];
  /** Key objects as JSON texts, one per touched key. */
  deleteKeys: string[];
  /** The old rows the target should hold, for the keys that expect one. */
  expected: RowImages;
  /** For each expected row, its key's 1-based position in `deleteKeys`. */
  expectedAt: number[];
  /** The rows whose last state is present and passes the filter. */
  insert: RowImages;
}

export interface TruncateStep {
  kind: 'truncate';
  table: TablePlan;
}

export type ApplyStep = RowsStep | TruncateStep;

interface Run {
  table: TablePlan;
  keySet: ReadonlySet<string>;
  /** Key → its changes in this run, in id order. */
  history: Map<string, LogChange[]>;
}

export function emptyImages(table: TablePlan): RowImages {
  return { rows: [], json: table.jsonColumns.map(() => []) };
}

/** Add a change's row image, typed later by the target table. */
export function pushImage(images: RowImages, table: TablePlan, change: LogChange): void {
  const row = change.row!;
  if (table.imageJsonColumns.length === 0) {
    images.rows.push(row);
    return;
  }
  // Cut the json columns out (json_populate_record would choke on a \u0000 in them); pass them apart.
  const fields = rowFields(row);
  const json = new Set(table.imageJsonColumns);
  images.rows.push(
    objectText(
      [...fields.keys()].filter((n) => !json.has(n)),
      fields,
    ),
  );
  table.jsonColumns.forEach((c, i) =>
    images.json[i]!.push(change.nulls?.includes(c.name) === true ? null : (fields.get(c.name) ?? null)),
  );
}

function isNewRow(change: LogChange): boolean {
  return change.op === 'I' || change.op === 'U';
}

function flushRun(run: Run): RowsStep {
  const { table } = run;
  const step: RowsStep = {
    kind: 'rows',
    table,
    keys: [],
    deleteKeys: [],
    expected: emptyImages(table),
    expectedAt: [],
    insert: emptyImages(table),
  };
  for (const [key, changes] of run.history) {
    const first = changes[0]!;
    const last = changes.at(-1)!;
    // An old row outside the filter was never on the target.
    const expectsRow = !isNewRow(first) && first.keep;
    step.keys.push({ key, first, ids: changes.map((c) => c.id), expectsRow });
    step.deleteKeys.push(key);
    if (expectsRow) {
      pushImage(step.expected, table, first);
      step.expectedAt.push(step.deleteKeys.length);
    }
    if (isNewRow(last) && last.keep) pushImage(step.insert, table, last);
  }
  return step;
}

export function buildSteps(
  changes: readonly LogChange[],
  tables: ReadonlyMap<number, TablePlan>,
): ApplyStep[] {
  const steps: ApplyStep[] = [];
  let run: Run | undefined;
  for (const change of changes) {
    const table = tables.get(change.relid);
    if (table === undefined) continue;
    if (change.op === 'T') {
      if (run !== undefined) steps.push(flushRun(run));
      run = undefined;
      steps.push({ kind: 'truncate', table });
      continue;
    }
    if (run !== undefined && run.table !== table) {
      steps.push(flushRun(run));
      run = undefined;
    }
    run ??= { table, keySet: new Set(table.key), history: new Map() };
    if (change.row === null) continue;
    const key = objectText(table.key, rowFields(change.row, run.keySet));
    const history = run.history.get(key);
    if (history === undefined) run.history.set(key, [change]);
    else history.push(change);
  }
  if (run !== undefined) steps.push(flushRun(run));
  return steps;
}
