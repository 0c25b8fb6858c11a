/** Typed events that core code emits; metrics and logs subscribe (STYLE: core code does not know them). */
import { EventEmitter } from 'node:events';

import type { ErrorKind } from '../failure/errors.js';
import type { Status, TargetState } from './status-report.js';

export interface TrigsyncEventMap {
  'batch:applied': [
    {
      target: string;
      changes: number;
      durationMs: number;
      /** Per table and operation, the captured changes applied. */
      counts: { table: string; insert: number; update: number; delete: number; truncate: number }[];
      /**
       * Seconds from capture to target commit, and how many of the applied changes took that long (a
       * statement's changes share their capture time); an update's two images are one change.
       */
      latencies: { seconds: number; changes: number }[];
      /** Of `changes`, those copied through from the source's log unread (src/apply/copy-through.ts). */
      copiedThrough: number;
    },
  ];
  /** A change met a target row not as the source had it (src/apply/conflicts.ts). */
  'apply:conflict': [
    {
      target: string;
      /** The source table, as in batch:applied. */
      table: string;
      key: string;
      kind: 'exists' | 'missing' | 'differs';
      operation: string;
      changeId: number;
      resolution: 'applied' | 'skipped' | 'parked';
    },
  ];
  /** A sync's copy, as it goes (src/sync/copy-tables.ts). */
  'sync:progress': [{ target: string; table: string; rows: number; estimate: number | undefined }];
  'sync:done': [{ target: string; rows: number; seconds: number }];
  'target:state': [{ target: string; state: TargetState }];
  /** A target's worker stopped applying for an operator's pause, or went on after it (src/worker/worker.ts). */
  'target:paused': [{ target: string; paused: boolean }];
  'target:error': [{ target: string; kind: ErrorKind; message: string; sqlstate: string | undefined }];
  /** This daemon took or lost the leader's lock (src/daemon/leadership.ts). */
  'leader:changed': [{ leader: boolean; daemon: string }];
  /** The source's view of every target, read now and then (src/daemon/status-sampler.ts). */
  'status:sampled': [{ status: Status; at: number }];
  /** The sampler could not reach the source. */
  'status:failed': [{ message: string; at: number }];
}

export class TrigsyncEvents extends EventEmitter<TrigsyncEventMap> {}
