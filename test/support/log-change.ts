// A change as a worker reads it from the log, for unit tests: an insert of `{}` unless told otherwise.
import type { LogChange } from '../../src/changelog/window.js';

export function logChange(partial: Partial<LogChange> = {}): LogChange {
  return {
    id: 1,
    relid: 1,
    op: 'I',
    txid: '100',
    capturedMs: 0,
    row: '{}',
    nulls: null,
    keep: true,
    oldRow: null,
    oldNulls: null,
    keepOld: true,
    statement: null,
    ...partial,
  };
}
