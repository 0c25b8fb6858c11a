/**
 * A worker's plan kept in step with the source's tables while trigsync runs.
 *
 * A captured table can be altered under a running daemon: a column added, dropped or retyped, its key
 * changed. Row images written after that have the new shape, and applying them with the plan of the old
 * shape would drop or mangle values without a word. So before a batch is applied, the tables it touches
 * are described again (one catalog query per batch) and, if any changed, the source's tables and the
 * plan are rebuilt. A target that cannot take the new shape fails the rebuild with the table and the
 * problem named (src/apply/plan.ts) and is parked; its batch waits in the log.
 *
 * An ALTER TABLE takes an exclusive lock: every image of the new shape was written by a transaction
 * that started after the ALTER committed, so a batch read before the catalogs are read again cannot
 * hold an image newer than what they say.
 */
import type pg from 'pg';

import { describeRelids, sameShape, type TableInfo } from '../capture/catalog.js';
import { reconcileGuards } from '../capture/guard.js';
import type { Config, TargetConfig } from '../config/types.js';
import { ConfigError } from '../failure/errors.js';
import type { Logger } from '../lib/logger.js';
import type { LogChange } from '../log/window.js';
import { buildTargetPlan, describeSourceTables, type SourceTables, type TargetPlan } from './plan.js';

export class PlanKeeper {
  #sourceTables!: SourceTables;
  /** The same tables by relid, with their display names: what each batch is checked against. */
  #byRelid!: Map<number, TableInfo & { display: string }>;

  constructor(
    private readonly config: Config,
    private readonly target: TargetConfig,
    sourceTables: SourceTables,
    private readonly log: Logger,
  ) {
    this.#describedAs(sourceTables);
  }

  #describedAs(sourceTables: SourceTables): void {
    this.#sourceTables = sourceTables;
    this.#byRelid = new Map([...sourceTables].map(([display, t]) => [t.relid, { ...t, display }]));
  }

  /** The plan against the target as it is now, its guards in place; warnings are logged. */
  async build(targetClient: pg.ClientBase): Promise<TargetPlan> {
    const plan = await buildTargetPlan(this.config, this.target, this.#sourceTables, targetClient);
    await reconcileGuards(targetClient, this.config, this.target, plan);
    for (const warning of plan.warnings) this.log.warn(warning);
    return plan;
  }

  /**
   * Whether a table these changes touch is no longer as described; if so the source's tables are
   * described anew (a problem with them, such as a dropped key, throws a ConfigError naming it) and the
   * caller rebuilds its plan. A table dropped since its changes were written is not a change: its
   * images are whole, and the target takes them as before.
   */
  async sourceChanged(source: pg.ClientBase, changes: readonly LogChange[]): Promise<boolean> {
    const relids = [...new Set(changes.map((c) => c.relid))];
    const now = await describeRelids(source, relids);
    const changed = relids.filter((relid) => {
      const before = this.#byRelid.get(relid);
      const after = now.get(relid);
      return before !== undefined && after !== undefined && !sameShape(before, after);
    });
    if (changed.length === 0) return false;
    const names = changed.map((relid) => this.#byRelid.get(relid)!.display);
    this.log.warn({ tables: names }, 'source table(s) altered; planning again');
    const described = await describeSourceTables(source, this.config);
    if (described.problems.length > 0) throw new ConfigError(described.problems);
    this.#describedAs(described.tables);
    return true;
  }
}
