/**
 * The validated configuration, as the rest of trigsync sees it. Every value is resolved: defaults
 * filled in, environment overrides applied, table names parsed. See docs/configuration.md.
 */

import type { QualifiedName } from './identifiers.js';

export type { QualifiedName } from './identifiers.js';

export const logLevels = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof logLevels)[number];

export const initialSyncModes = ['copy', 'none'] as const;
export type InitialSync = (typeof initialSyncModes)[number];

/** The group of a config that names none: every daemon before groups existed was of it. */
export const defaultGroup = 'default';

export const conflictModes = ['apply', 'skip', 'park'] as const;
export type ConflictMode = (typeof conflictModes)[number];

/** How one captured table reaches one target. */
export interface TableMapping {
  /** The captured table on the source. */
  source: QualifiedName;
  /** The table on the target; the source's name unless mapped. */
  target: QualifiedName;
  /** Replicate only these columns (exact names); all columns when absent. */
  columns?: string[];
  /** Row filter, an SQL boolean expression over source columns; all rows when absent. */
  where?: string;
}

/**
 * A sequence carried to targets besides those the captured tables own (docs/operations.md, "Sequences");
 * `target` absent: the sequence a mapped table owns in the same column, else the same name.
 */
export interface SequenceMapping {
  source: QualifiedName;
  target?: QualifiedName;
}

export interface TargetConfig {
  /** Stable identifier: the target's position and error queue are stored under it. */
  name: string;
  url: string;
  /** Guard the target tables against writes by anyone but trigsync. */
  readOnly: boolean;
  /**
   * With readOnly: the guard lets only sessions of this role write (exact name, as in the catalog),
   * instead of those under trigsync's application_name.
   */
  guardRole?: string;
  /** What a target gets the first time it appears: a copy of the current data, or only later changes. */
  initialSync: InitialSync;
  /** What apply does when a change conflicts with the target's row. */
  conflict: ConflictMode;
  /** Resolved: when the config omits tables, one identity mapping per captured table. */
  tables: TableMapping[];
  /** Resolved: the target's own `sequences`, else the top-level list. */
  sequences: SequenceMapping[];
}

/** A captured table; `key` names the columns that identify its rows when it has no primary key to use. */
export type CapturedTable = QualifiedName & { key?: string[] };

export interface Config {
  source: { url: string };
  /** Schema of trigsync's own objects on each database. */
  schema: string;
  /**
   * The group of daemons this one belongs to: each group of a source has its own leader and its own
   * targets (docs/operations.md, "Groups"); `default` when the config names none.
   */
  group: string;
  /** Sessions with this application_name are trigsync's own writes and are never captured. */
  applicationName: string;
  /** Captured tables; at least one. */
  tables: CapturedTable[];
  /** May be empty: a node that only captures (the other side of a multi-master pair, say). */
  targets: TargetConfig[];
  /** Sequences carried to every target that lists none of its own; may be empty. */
  sequences: SequenceMapping[];
  /** batchBytes: the bytes of the row images as text (a change larger than that is a chunk alone). */
  apply: { batchSize: number; batchBytes: number; pollIntervalMs: number; silenceTimeoutMs: number };
  retry: { initialDelayMs: number; maxDelayMs: number; dataErrorDelayMs: number };
  shutdownTimeoutMs: number;
  /** A standby deposes a leader silent this long (src/daemon/leadership.ts). */
  leaderTimeoutMs: number;
  metrics: { enabled: boolean; host: string; port: number };
  log: { level: LogLevel };
  /** Path of the file it came from, for messages; undefined when built in code. */
  file?: string;
}
