/**
 * A worker's plan kept in step with the source's tables while trigsync runs.
 *
 * A captured table can be altered under a running daemon: a column added, dropped or retyped, its key
 * changed. Row images written after that have the new shape, and applying them with the plan of the old
 * shape would drop or mangle values without a word. So before a batch is applied, the versions of the
 * catalog rows of the tables it touches are read (one light catalog query per batch); a table whose rows
 * moved is described again and, if its shape changed, the source's tables and the plan are rebuilt. A
 * target that cannot take the new shape fails the rebuild with the table and the problem named
 * (src/apply/plan.ts) and is parked; its batch waits in the log.
 *
 * An ALTER TABLE takes an exclusive lock: every image of the new shape was written by a transaction
 * that started after the ALTER committed, so a batch read before the catalogs are read again cannot
 * hold an image newer than what they say.
 *
 * The plan also holds the tables the target drains: removed from its config, they are still applied up
 * to what the log held then (their ceiling), under the mapping they had. A drain that cannot be planned
 * (the table gone from either side) is given up with a warning rather than parking the target.
 */
import type pg from 'pg';

import { catalogVersions, describeRelids, sameShape, type TableInfo } from '../capture/catalog.js';
import { readGuards, reconcileGuards, type GuardsRead } from '../capture/guard.js';
import { describeSourceTables, type SourceTables } from '../capture/source-tables.js';
import { forgetDrained } from '../capture/table-set.js';
import { formatQualifiedName, sameNames } from '../config/identifiers.js';
import { sendPipelined } from '../db/pipeline.js';
import type { CapturedTable, Config, TableMapping, TargetConfig } from '../config/types.js';
import { ConfigError } from '../failure/errors.js';
import type { Logger } from '../lib/logger.js';
import { parseSnapshot, seesAllOf, type Snapshot } from '../changelog/snapshot.js';
import {
  buildTargetPlan,
  planFromCatalog,
  targetCatalogReads,
  type TargetCatalog,
  type TargetPlan,
} from './plan.js';

/** The source's tables' catalog versions now (catalogVersions, or the daemon's shared SharedLog.versions). */
export type VersionReader = (
  source: pg.ClientBase,
  relids: readonly number[],
) => Promise<Map<number, string>>;

/** A table the target no longer takes: applied up to `until` (src/capture/table-set.ts). */
export interface Drain {
  relid: number;
  table: CapturedTable;
  mapping: TableMapping;
  until: Snapshot;
}

/**
 * What a plan reads of the target, in one round trip: the catalog of the tables it takes (plan.ts) and
 * the guards of those configured. A worker's first session sends it as soon as its target connection
 * opens, before the source's tables are known (src/worker/early-session.ts): on a fresh backend it is
 * the start's slowest read of the target (20 ms on one host, its catalog caches cold).
 */
export interface PlanReads {
  catalog: TargetCatalog;
  guards: GuardsRead | undefined;
}

/** Read what a plan of `planned`'s tables needs of the target; the guards of `target`'s own. */
export async function readForPlan(
  client: pg.Client,
  config: Config,
  target: TargetConfig,
  planned: TargetConfig = target,
): Promise<PlanReads> {
  const names = planned.tables.map((m) => m.target);
  const guarded = target.tables.map((m) => m.target);
  const [described, edges, guards] = await sendPipelined<unknown>(client, () => [
    ...targetCatalogReads(client, names),
    readGuards(client, config, target, guarded),
  ]);
  return {
    catalog: { names, described: described!, edges: edges! },
    guards: guards!.status === 'fulfilled' ? (guards!.value as GuardsRead) : undefined,
  };
}

export class PlanKeeper {
  #sourceTables!: SourceTables;
  /** The same tables by relid, with their display names: what each batch is checked against. */
  #byRelid!: Map<number, TableInfo & { display: string }>;
  /** The drains in the plan, and what each still applies: source relid → ceiling. */
  readonly ceilings = new Map<number, Snapshot>();
  #drains: Drain[];

  constructor(
    private readonly config: Config,
    private readonly target: TargetConfig,
    sourceTables: SourceTables,
    private readonly log: Logger,
    drains: readonly Drain[] = [],
  ) {
    this.#drains = [...drains];
    for (const d of drains) this.ceilings.set(d.relid, d.until);
    this.#describedAs(sourceTables);
  }

  #describedAs(sourceTables: SourceTables): void {
    this.#sourceTables = sourceTables;
    this.#byRelid = new Map([...sourceTables].map(([display, t]) => [t.relid, { ...t, display }]));
  }

  /**
   * The plan against the target as it is now, its guards in place; warnings are logged. `ahead`: the
   * target's catalog read before (readForPlan), used where it covers the tables this plan takes.
   */
  async build(targetClient: pg.Client, ahead?: PlanReads): Promise<TargetPlan> {
    const planned = this.#draining();
    const reads =
      ahead !== undefined &&
      sameNames(
        ahead.catalog.names,
        planned.tables.map((m) => m.target),
      )
        ? ahead
        : await readForPlan(targetClient, this.config, this.target, planned);
    let plan: TargetPlan;
    try {
      plan = planFromCatalog(this.config, planned, this.#sourceTables, reads.catalog);
    } catch (thrown) {
      if (!(thrown instanceof ConfigError) || this.#drains.length === 0) throw thrown;
      plan = await buildTargetPlan(this.config, this.target, this.#sourceTables, targetClient);
      const tables = this.#drains.map((d) => formatQualifiedName(d.table));
      this.log.warn(
        { tables, err: thrown.message },
        'tables removed from the config are not drained: their changes still in the log are not applied',
      );
      this.#drains = [];
    }
    // Guards go with the configured tables only: a drained table is on its way out.
    const configured = new Map([...plan.tables].filter(([relid]) => !this.ceilings.has(relid)));
    await reconcileGuards(
      targetClient,
      this.config,
      this.target,
      { ...plan, tables: configured },
      reads.guards,
    );
    for (const warning of plan.warnings) this.log.warn(warning);
    return plan;
  }

  /**
   * Drains whose ceiling a closed window's start (`from`, a pg_snapshot's text) has passed are done:
   * said once, forgotten on the source, and left out of the list (their ceilings stay, so nothing later
   * applies).
   */
  async forgetPassedDrains(source: pg.ClientBase, fromSnapshot: string): Promise<void> {
    if (this.#drains.length === 0) return;
    const from = parseSnapshot(fromSnapshot);
    for (const drain of this.#drains.filter((d) => seesAllOf(from, d.until))) {
      await forgetDrained(source, this.config.schema, this.target.name, drain.relid);
      this.#drains = this.#drains.filter((d) => d.relid !== drain.relid);
      this.log.info(
        { table: formatQualifiedName(drain.table) },
        'removed from the config: its changes up to the removal are applied, later ones are not',
      );
    }
  }

  /** The target with the drained tables' mappings after its own. */
  #draining(): TargetConfig {
    if (this.#drains.length === 0) return this.target;
    return { ...this.target, tables: [...this.target.tables, ...this.#drains.map((d) => d.mapping)] };
  }

  /**
   * Whether a table of `relids` (those of the changes about to apply) is no longer as described; if so
   * the source's tables are described anew (a problem with them, such as a dropped key, throws a
   * ConfigError naming it) and the caller rebuilds its plan. A table dropped since its changes were written is not a change: its
   * images are whole, and the target takes them as before.
   */
  async sourceChanged(
    source: pg.ClientBase,
    relids: readonly number[],
    versions: VersionReader = catalogVersions,
  ): Promise<boolean> {
    const now = await versions(source, relids);
    // Catalog rows as they were when the table was described: the description stands (catalog.ts).
    const stale = relids.filter((relid) => {
      const known = this.#byRelid.get(relid);
      const version = now.get(relid);
      return known !== undefined && version !== undefined && version !== known.version;
    });
    if (stale.length === 0) return false;
    const again = await describeRelids(source, stale);
    const changed = stale.filter((relid) => {
      const before = this.#byRelid.get(relid);
      const after = again.get(relid);
      if (before === undefined || after === undefined) return false;
      if (sameShape(before, after)) this.#byRelid.set(relid, { ...before, version: after.version });
      return !sameShape(before, after);
    });
    if (changed.length === 0) return false;
    const names = changed.map((relid) => this.#byRelid.get(relid)!.display);
    this.log.warn({ tables: names }, 'source table(s) altered; planning again');
    const described = await describeSourceTables(source, this.config);
    if (described.problems.length > 0) throw new ConfigError(described.problems);
    // A drained table that cannot be described any more is left out of the plan, not a problem.
    const drained = await describeSourceTables(source, {
      ...this.config,
      tables: this.#drains.map((d) => d.table),
    });
    this.#describedAs(new Map([...drained.tables, ...described.tables]));
    return true;
  }
}
