/**
 * Turn a chunk of changes into set-based steps. Consecutive changes of one table form a run; in a run
 * each key keeps only its last state, all touched keys are deleted first, then the rows whose last state
 * is present (and pass the row filter) are inserted. A TRUNCATE is a barrier applied in its place.
 */
import type { LogChange } from '../log/window.js';
import type { TablePlan } from './plan.js';
import { objectText, rowFields } from './row-image.js';

export interface RowsStep {
  kind: 'rows';
  table: TablePlan;
  /** Key objects as JSON texts, one per touched key. */
  deleteKeys: string[];
  /** Row images as JSON texts (without their json columns), one per key whose last state is present. */
  insertRows: string[];
  /** Per json column of the table plan, its value text in each inserted row (null: SQL NULL). */
  insertJson: (string | null)[][];
}

export interface TruncateStep {
  kind: 'truncate';
  table: TablePlan;
}

export type ApplyStep = RowsStep | TruncateStep;

interface Run {
  table: TablePlan;
  keySet: ReadonlySet<string>;
  /** Collapse key → the key's last change. */
  last: Map<string, LogChange>;
}

function flushRun(run: Run): RowsStep {
  const { table } = run;
  const step: RowsStep = {
    kind: 'rows',
    table,
    deleteKeys: [...run.last.keys()],
    insertRows: [],
    insertJson: table.jsonColumns.map(() => []),
  };
  for (const change of run.last.values()) {
    if ((change.op !== 'I' && change.op !== 'U') || !change.keep || change.row === null) continue;
    if (table.imageJsonColumns.length === 0) {
      step.insertRows.push(change.row);
      continue;
    }
    // Cut the json columns out (json_populate_record would choke on a \u0000 in them); pass them apart.
    const fields = rowFields(change.row);
    const json = new Set(table.imageJsonColumns);
    step.insertRows.push(
      objectText(
        [...fields.keys()].filter((n) => !json.has(n)),
        fields,
      ),
    );
    table.jsonColumns.forEach((c, i) =>
      step.insertJson[i]!.push(change.nulls?.includes(c.name) === true ? null : (fields.get(c.name) ?? null)),
    );
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
    run ??= { table, keySet: new Set(table.key), last: new Map() };
    if (change.row === null) continue;
    const key = objectText(table.key, rowFields(change.row, run.keySet));
    // Deleting first moves the key to the end; order within a run does not matter.
    run.last.delete(key);
    run.last.set(key, change);
  }
  if (run !== undefined) steps.push(flushRun(run));
  return steps;
}
