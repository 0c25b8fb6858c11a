/**
 * One target's worker: reads the log in windows (src/log/window.ts), applies each chunk to the target in
 * one transaction together with the position it reaches, then updates the source's copy of the position.
 * One ordered stream per target; targets run in parallel and never wait for each other.
 */
import type pg from 'pg';

import type { TableInfo } from '../capture/catalog.js';
import { migrate } from '../capture/migrations.js';
import type { Config, QualifiedName, TargetConfig } from '../config/types.js';
import { configSecrets, redactSecrets } from '../config/redact.js';
import { connect } from '../db/connect.js';
import { classifyError, coerceError, sqlState } from '../failure/errors.js';
import type { TargetState, TrigsyncEvents } from '../lib/events.js';
import type { Logger } from '../lib/logger.js';
import { Backoff, Doorbell, Runnable, sleep } from '../lib/runnable.js';
import { loadRegisteredPosition, saveRegisteredPosition, saveTargetError } from '../log/targets.js';
import {
  closeWindow,
  openWindow,
  readWindow,
  takeTick,
  type LogChange,
  type Position,
} from '../log/window.js';
import { buildSteps } from './batch.js';
import { buildTargetPlan, type TargetPlan } from './plan.js';
import {
  deleteKeys,
  insertRows,
  loadAppliedPosition,
  saveAppliedPosition,
  truncateTable,
} from './statements.js';

export interface WorkerDeps {
  config: Config;
  target: TargetConfig;
  /** This source's identity; the target keys our position by it. */
  origin: string;
  sourceTables: Map<string, TableInfo & { name: QualifiedName }>;
  logger: Logger;
  events: TrigsyncEvents;
  /** Ask the source to notify us at its next captured write. */
  armDoorbell: () => Promise<void>;
}

/** Idle workers refresh the source's copy of their position at most this often. */
const idleMirrorIntervalMs = 2_000;

export class TargetWorker extends Runnable {
  readonly name: string;
  readonly wake = new Doorbell();
  private readonly log: Logger;
  private source: pg.Client | undefined;
  private target: pg.Client | undefined;
  private plan: TargetPlan | undefined;
  private position: Position | undefined;
  private state: TargetState = 'new';
  private mirroredAt = 0;

  constructor(private readonly deps: WorkerDeps) {
    super();
    this.name = deps.target.name;
    this.log = deps.logger.child({ target: deps.target.name });
  }

  protected async loop(signal: AbortSignal): Promise<void> {
    const backoff = new Backoff(this.deps.config.retry);
    while (this.shouldRun()) {
      try {
        await this.connect();
        let applied = await this.step();
        backoff.reset();
        if (applied > 0) continue;
        // Idle: ring-me-next-time, then look once more, since a write may have landed before the arming.
        await this.deps.armDoorbell();
        applied = await this.step();
        if (applied > 0) continue;
        await this.wake.wait(this.deps.config.apply.pollIntervalMs, signal);
      } catch (thrown) {
        await this.failed(thrown);
        await this.disconnect();
        await sleep(backoff.next(), signal);
      }
    }
    await this.disconnect();
  }

  private async connect(): Promise<void> {
    const { config, target } = this.deps;
    const options = { applicationName: config.applicationName };
    this.source ??= await connect(config.source.url, options);
    if (this.target === undefined) {
      const client = await connect(target.url, options);
      try {
        // Text forms that every server reads back the same way.
        await client.query(`set datestyle = 'ISO, YMD'; set intervalstyle = 'postgres'`);
        await migrate(client, config.schema, 'target');
        this.plan = await buildTargetPlan(config, target, this.deps.sourceTables, client);
        // The truth is the target's own record; the source's copy only trails it.
        this.position =
          (await loadAppliedPosition(client, config.schema, this.deps.origin, target.name)) ??
          (await this.registeredPosition());
      } catch (thrown) {
        await client.end().catch(() => undefined);
        throw thrown;
      }
      this.target = client;
      this.log.info({ tables: this.plan.tables.size }, 'connected to target');
    }
  }

  private async registeredPosition(): Promise<Position> {
    const registered = await loadRegisteredPosition(this.source!, this.deps.config.schema, this.name);
    if (registered === undefined)
      throw new Error(`target ${this.name} is not registered on the source; run install`);
    this.state = registered.state;
    return registered.position;
  }

  /** Apply the next chunk; returns how many changes it read (0: caught up). */
  private async step(): Promise<number> {
    const { config } = this.deps;
    const source = this.source!;
    const plan = this.plan!;
    let position = this.position!;
    if (position.to === undefined) position = openWindow(position, await takeTick(source, config.schema));
    const changes = await readWindow(source, plan.readQuery, position, config.apply.batchSize);
    this.log.trace(
      {
        from: position.from,
        to: position.to,
        after: position.appliedId,
        read: changes.length,
        first: changes[0]?.id,
        last: changes.at(-1)?.id,
      },
      'window chunk',
    );
    if (changes.length === 0) {
      this.position = closeWindow(position);
      await this.mirror('live', 0, false);
      return 0;
    }
    const last = changes.at(-1)!;
    const next =
      changes.length < config.apply.batchSize ? closeWindow(position) : { ...position, appliedId: last.id };
    const started = performance.now();
    await this.applyChunk(changes, next);
    this.position = next;
    await this.mirror(next.to === undefined ? 'live' : 'catching_up', changes.length, true);
    this.emitApplied(changes, performance.now() - started);
    return changes.length;
  }

  private async applyChunk(changes: LogChange[], next: Position): Promise<void> {
    const target = this.target!;
    const plan = this.plan!;
    const steps = buildSteps(changes, plan.tables);
    await target.query('begin');
    try {
      for (const step of steps) {
        if (step.kind === 'truncate') {
          await truncateTable(target, step.table);
        } else {
          await deleteKeys(target, step.table, step.deleteKeys);
          await insertRows(target, step.table, step.insertRows, step.insertJson);
        }
      }
      await saveAppliedPosition(target, this.deps.config.schema, this.deps.origin, this.name, next);
      await target.query('commit');
    } catch (thrown) {
      await target.query('rollback').catch(() => undefined);
      throw thrown;
    }
  }

  /** Copy the position to the source; when nothing was applied, only now and then. */
  private async mirror(state: TargetState, applied: number, force: boolean): Promise<void> {
    const now = Date.now();
    if (!force && state === this.state && now - this.mirroredAt < idleMirrorIntervalMs) return;
    await saveRegisteredPosition(
      this.source!,
      this.deps.config.schema,
      this.name,
      this.position!,
      state,
      applied,
    );
    this.mirroredAt = now;
    if (state !== this.state) {
      this.state = state;
      this.deps.events.emit('target:state', { target: this.name, state });
    }
  }

  private emitApplied(changes: LogChange[], durationMs: number): void {
    const plan = this.plan!;
    const byTable = new Map<
      number,
      { table: string; insert: number; update: number; delete: number; truncate: number }
    >();
    const now = Date.now();
    const latencies: number[] = [];
    for (const change of changes) {
      const table = plan.tables.get(change.relid);
      if (table === undefined) continue;
      let counts = byTable.get(change.relid);
      if (counts === undefined) {
        counts = { table: table.sourceName, insert: 0, update: 0, delete: 0, truncate: 0 };
        byTable.set(change.relid, counts);
      }
      if (change.op === 'I') counts.insert++;
      else if (change.op === 'U') counts.update++;
      else if (change.op === 'D') counts.delete++;
      else if (change.op === 'T') counts.truncate++;
      if (change.op !== 'V') latencies.push((now - change.capturedAt.getTime()) / 1000);
    }
    this.deps.events.emit('batch:applied', {
      target: this.name,
      changes: changes.length,
      durationMs,
      counts: [...byTable.values()],
      latenciesSeconds: latencies,
    });
  }

  private async failed(thrown: unknown): Promise<void> {
    const kind = classifyError(thrown);
    const message = redactSecrets(coerceError(thrown).message, configSecrets(this.deps.config));
    this.log.warn({ kind, sqlstate: sqlState(thrown), err: message }, 'apply failed; retrying');
    this.deps.events.emit('target:error', { target: this.name, kind, message, sqlstate: sqlState(thrown) });
    if (this.source !== undefined && kind !== 'connection') {
      await saveTargetError(this.source, this.deps.config.schema, this.name, message).catch(() => undefined);
    }
  }

  private async disconnect(): Promise<void> {
    const clients = [this.source, this.target].filter((c) => c !== undefined);
    this.source = undefined;
    this.target = undefined;
    this.plan = undefined;
    this.position = undefined;
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  }
}
