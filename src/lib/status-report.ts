/**
 * What `status` reports, as a shape: read by src/changelog/status.ts, carried by the `status:sampled` event
 * (events.ts), shown by the CLI and the metrics. Kept apart from the reader so that the layers below the
 * change log can name it.
 */

/**
 * What a target's worker records on the source, and `paused`, which status shows for a target an
 * operator paused (src/changelog/status.ts).
 */
export type TargetState = 'new' | 'syncing' | 'catching_up' | 'live' | 'parked' | 'removed' | 'paused';

export interface TargetStatus {
  name: string;
  /** The group of daemons it belongs to (src/changelog/targets.ts). */
  group: string;
  state: TargetState;
  /** Changes captured and not yet applied; 0 exactly when the target has applied everything. */
  backlog: number;
  /** Age of the oldest change not yet applied; 0 when none. */
  lagSeconds: number;
  errorQueue: number;
  lastError: string | null;
  /** When the target was parked, while it is. */
  parkedSince: string | null;
  /** When an install found the target gone from its group's config, while it is removed. */
  removedSince: string | null;
  /** When an operator paused the target (`trigsync pause`), while it is paused; its state then `paused`. */
  pausedSince: string | null;
  /** When the target's state was last recorded on the source (by its worker, mostly). */
  recordedAt: string;
  /**
   * A daemon of the target's group runs now, so `state` is kept current; false: no daemon runs, and
   * `state` is as it was last seen (at `recordedAt`).
   */
  current: boolean;
  lastAppliedAt: string | null;
  configured: boolean;
  /**
   * Tables the target takes and may lack rows or changes of, since when, and why (null: it did not take
   * the table all along; else what stopped its capture): `trigsync sync` copies them.
   */
  toCopy: { table: string; since: string; why: string | null }[];
  /** Replicated sequences: the source's value now, the target's as its worker last set it (src/changelog/sequence-state.ts). */
  sequences: SequenceStatus[];
  /** A copy asked of the target (`sync`, initialSync, a table added) and not done yet; null when none. */
  copying: CopyStatus | null;
}

export interface CopyStatus {
  /** The tables asked for; empty: every table of the target. */
  tables: string[];
  requestedAt: string;
  /** The table being copied now and its rows so far (of about `estimate`); null before the copy begins. */
  table: string | null;
  rows: number | null;
  estimate: number | null;
}

export interface Status {
  targets: TargetStatus[];
  log: { rows: number };
  /**
   * Captured tables neither this config nor another group's lists (removed from this config, or from
   * another of its group): still captured.
   */
  notInConfig: string[];
  /**
   * The daemon that holds the leader's lock of this config's group now (src/daemon/leadership.ts); null
   * when none runs.
   */
  leader: Leader | null;
  /** Whether a daemon of this config's group runs, and when one was last seen. */
  daemon: DaemonStatus;
  /** This config's group. */
  group: string;
  /**
   * Every group the source knows (this config's, those with targets, tables or a leader recorded), by
   * name, each with its leader now and whether a daemon of it runs.
   */
  groups: { name: string; leader: Leader | null; daemon: DaemonStatus }[];
}

/** A group's daemons as the source sees them. */
export interface DaemonStatus {
  /** A daemon of the group leads now: it holds the group's leader lock on the source. */
  running: boolean;
  /**
   * The group's daemons' last sign of life. While one runs: its leader's last heartbeat (the lock
   * session runs a statement every second), or now where this role cannot see that session. Else the
   * latest of the leader's last recorded heartbeat, the start of its term and the last update of one of
   * the group's targets. Null when no daemon of the group was ever seen.
   */
  lastSeen: string | null;
  /** Seconds from `lastSeen` to now, by the source's clock. */
  secondsSinceSeen: number | null;
}

export interface Leader {
  daemon: string;
  since: string;
}

/** A sequence in `status`: the source's value now against the target's. */
export interface SequenceStatus {
  source: string;
  target: string;
  sourceValue: string | null;
  targetValue: string | null;
  /** How far the target trails the source, in values of the sequence; 0 when at or beyond it. */
  lag: number;
  /** The source has handed out a value the target might still hand out. */
  behind: boolean;
  problem: string | null;
}
