/**
 * What `status` reports, as a shape: read by src/log/status.ts, carried by the `status:sampled` event
 * (events.ts), shown by the CLI and the metrics. Kept apart from the reader so that the layers below the
 * change log can name it.
 */

export type TargetState = 'new' | 'syncing' | 'catching_up' | 'live' | 'parked' | 'removed';

export interface TargetStatus {
  name: string;
  /** The group of daemons it belongs to (src/log/targets.ts). */
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
  lastAppliedAt: string | null;
  configured: boolean;
  /** Tables the target takes and may lack rows or changes of, since when: `trigsync sync` copies them. */
  toCopy: { table: string; since: string }[];
  /** Replicated sequences: the source's value now, the target's as its worker last set it (src/log/sequence-state.ts). */
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
  /** This config's group. */
  group: string;
  /**
   * Every group the source knows (this config's, those with targets, tables or a leader recorded), by
   * name, each with its leader now.
   */
  groups: { name: string; leader: Leader | null }[];
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
