/**
 * What the demo shows of a target, decided from one status sample (src/changelog/status.ts), so that a row's
 * state never disagrees with the backlog and lag beside it.
 *
 * The daemon calls a target `live` once a window of the log fits in one chunk (src/worker/worker.ts), and
 * the source keeps that record until the worker applies again: a target that stops answering, without an
 * error yet, stays `live` there while the changes pile up. The view shows `live` only when the target
 * also trails by at most `liveLagSeconds`, and gives every other state its reason.
 */
import type { ErrorKind } from '../failure/errors.js';
import type { TargetState, TargetStatus } from '../lib/status-report.js';

/** A target whose oldest change not yet applied is older than this is shown catching up, not live. */
export const liveLagSeconds = 2;

export type TargetSample = Pick<
  TargetStatus,
  'state' | 'backlog' | 'lagSeconds' | 'errorQueue' | 'lastError'
>;

/** The error a target's worker reported last (the `target:error` event): its kind, and its first line. */
export interface LastError {
  kind: ErrorKind;
  message: string;
}

export interface ShownState {
  state: TargetState;
  /** Why the target is not live (its backlog, or the error it is parked on); undefined when it is. */
  reason: string | undefined;
}

const count = (n: number): string => n.toLocaleString('en-US');

export function shownState(sample: TargetSample, lastError?: LastError): ShownState {
  const { state, backlog, lagSeconds } = sample;
  if (state === 'parked') return { state, reason: `parked: ${parkedReason(sample, lastError)}` };
  if (state !== 'live' && state !== 'catching_up') return { state, reason: undefined };
  // Backlog 0: everything captured is applied, whatever the daemon said at its last window's end.
  if (lagSeconds <= liveLagSeconds && (state === 'live' || backlog === 0))
    return { state: 'live', reason: undefined };
  return {
    state: 'catching_up',
    reason: `${count(backlog)} change${backlog === 1 ? '' : 's'} behind, oldest ${lagSeconds.toFixed(1)}s old`,
  };
}

/**
 * The error a parked target waits on: the worker's last report of it, else the source's record. A
 * connection error never enters the error queue, so this is all there is to show of it.
 */
function parkedReason(sample: TargetSample, lastError: LastError | undefined): string {
  const message = firstLine(lastError?.message ?? sample.lastError ?? 'reason not recorded');
  const queued = sample.errorQueue > 0 ? ` (${count(sample.errorQueue)} in the error queue)` : '';
  return `${lastError === undefined ? '' : `${lastError.kind} error: `}${message}${queued}`;
}

export function firstLine(text: string): string {
  return text.split('\n')[0]!.trim();
}

/** The ERRORS cell: the error queue's size, or what a parked target waits on. */
export function errorsCell(sample: TargetSample, shown: ShownState): string {
  return shown.state === 'parked' && shown.reason !== undefined ? shown.reason : count(sample.errorQueue);
}

/** A line for the notes when the shown state changes: the state, and its reason when there is one. */
export function stateNote(target: string, shown: ShownState): string {
  return shown.reason === undefined
    ? `${target}: ${shown.state}`
    : `${target}: ${shown.state === 'parked' ? shown.reason : `${shown.state}: ${shown.reason}`}`;
}
