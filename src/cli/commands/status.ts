/** `trigsync status [--json] [--check [--max-lag SECONDS]]`: state, backlog and lag of every target. */
import { copyAdvice, notInConfigAdvice } from '../../capture/table-set.js';
import { loadConfig } from '../../config/load.js';
import { defaultGroup } from '../../config/types.js';
import type {
  CopyStatus,
  DaemonStatus,
  SequenceStatus,
  Status,
  TargetStatus,
} from '../../lib/status-report.js';
import { readStatus } from '../../changelog/status.js';
import type { CommandContext } from '../command-context.js';
import { ExitCode } from '../exit-codes.js';
import { columns, configOptions, onInstalledSource, secondsOption } from './common.js';

export async function statusCommand(context: CommandContext): Promise<ExitCode> {
  const { out, options } = context;
  const maxLag = secondsOption(context, 'max-lag');
  const config = loadConfig(configOptions(context));
  // Everything status shows is read from the source (the daemon records each target's state there):
  // it connects to no target, so no target can stop it.
  const status = await onInstalledSource(config, (client) => readStatus(client, config));
  if (options.json === true) out.print(JSON.stringify(status));
  else for (const line of statusTable(status)) out.print(line);
  if (options.check !== true) return ExitCode.ok;
  const problems = checkProblems(status, maxLag);
  for (const problem of problems) out.error(`check: ${problem}`);
  return problems.length > 0 ? ExitCode.problemFound : ExitCode.ok;
}

/**
 * What `--check` finds wrong: a parked target, a lag over the threshold (of a target not paused), a
 * table a target may lack rows of, no daemon leading.
 */
export function checkProblems(status: Status, maxLagSeconds: number): string[] {
  const problems: string[] = [];
  for (const t of status.targets) {
    if (t.state === 'parked')
      problems.push(`target ${t.name} is parked: ${t.lastError ?? 'see trigsync errors'}`);
    // A target an operator paused falls behind by their choice.
    else if (t.lagSeconds > maxLagSeconds && t.state !== 'paused')
      problems.push(`target ${t.name} lags ${t.lagSeconds.toFixed(1)} s (more than ${maxLagSeconds} s)`);
    for (const gap of uncopied(t)) problems.push(copyAdvice({ target: t.name, ...gap }));
  }
  if (status.leader === null && !status.daemon.running)
    problems.push(
      grouped(status)
        ? `no trigsync daemon of group ${status.group} is running for this source (no leader)`
        : 'no trigsync daemon is running for this source (no leader)',
    );
  return problems;
}

/** The tables a target may lack that no copy asked of it takes. */
function uncopied(t: TargetStatus): TargetStatus['toCopy'] {
  const asked = t.copying?.tables;
  if (asked === undefined) return t.toCopy;
  return asked.length === 0 ? [] : t.toCopy.filter((gap) => !asked.includes(gap.table));
}

/** A copy asked of the target: which tables, and how far it is. */
function copyLine(target: string, copy: CopyStatus): string {
  const what = copy.tables.length === 0 ? 'every table' : copy.tables.join(', ');
  if (copy.table === null)
    return `target ${target}: copy of ${what} asked at ${copy.requestedAt}, not begun yet`;
  const of = copy.estimate === null ? '' : ` of ~${copy.estimate.toLocaleString('en-US')}`;
  const rows = (copy.rows ?? 0).toLocaleString('en-US');
  return `target ${target}: copying ${what}: ${copy.table} at ${rows} rows${of}`;
}

/** A sequence that trails its source or cannot be carried; nothing for one that is kept. */
function sequenceLine(target: string, s: SequenceStatus): string[] {
  const where = `target ${target}: sequence ${s.target} (from ${s.source})`;
  if (s.problem !== null) return [`${where}: not carried: ${s.problem}`];
  if (!s.behind) return [];
  return [`${where} is behind by ${s.lag} (source ${s.sourceValue}, target ${s.targetValue ?? 'unused'})`];
}

/** The source has groups of daemons besides the default one: status names them. */
function grouped(status: Status): boolean {
  return status.groups.some((g) => g.name !== status.group) || status.group !== defaultGroup;
}

/**
 * The table a terminal shows: one row per target (with its group where the source has groups), then the
 * tables a target may lack, the captured tables the config does not list, the log and the leader of
 * each group.
 */
export function statusTable(status: Status): string[] {
  const groups = grouped(status);
  const rows = [
    [...(groups ? ['GROUP'] : []), 'TARGET', 'STATE', 'BACKLOG', 'LAG', 'ERRORS', 'LAST ERROR'],
    ...status.targets.map((t) => [
      ...(groups ? [t.group] : []),
      t.name,
      stateCell(t),
      String(t.backlog),
      `${t.lagSeconds.toFixed(1)}s`,
      String(t.errorQueue),
      t.lastError ?? '',
    ]),
  ];
  const lines = columns(rows);
  for (const t of status.targets) if (t.copying !== null) lines.push(copyLine(t.name, t.copying));
  for (const t of status.targets)
    for (const gap of uncopied(t)) lines.push(copyAdvice({ target: t.name, ...gap }));
  for (const t of status.targets) for (const s of t.sequences) lines.push(...sequenceLine(t.name, s));
  if (status.notInConfig.length > 0) lines.push(notInConfigAdvice(status.notInConfig));
  lines.push(`change log: ${status.log.rows} row(s)`);
  const leaderLine = (leader: Status['leader'], daemon: DaemonStatus) =>
    leader !== null
      ? `${leader.daemon} since ${leader.since}`
      : daemon.running
        ? 'none recorded yet (a daemon holds the lock and is starting)'
        : 'none';
  if (!groups) {
    lines.push(`leader: ${leaderLine(status.leader, status.daemon)}`);
    lines.push(`daemon: ${daemonLine(status.daemon)}`);
  } else {
    for (const g of status.groups) {
      lines.push(`leader of group ${g.name}: ${leaderLine(g.leader, g.daemon)}`);
      lines.push(`daemon of group ${g.name}: ${daemonLine(g.daemon)}`);
    }
  }
  return lines;
}

/**
 * A target's state, with since when for a parked, removed or paused one; `last seen` when no daemon of
 * its group runs to keep it current.
 */
function stateCell(t: TargetStatus): string {
  const since =
    t.state === 'parked'
      ? t.parkedSince
      : t.state === 'removed'
        ? t.removedSince
        : t.state === 'paused'
          ? t.pausedSince
          : null;
  const state = since === null ? t.state : `${t.state} since ${since}`;
  // Removed and paused are the config's and an operator's doing, current whether a daemon runs or not.
  return t.current || t.state === 'removed' || t.state === 'paused' ? state : `last seen ${state}`;
}

/** Whether a daemon runs; when none does, when one was last seen, which is what the states show. */
export function daemonLine(daemon: DaemonStatus): string {
  const ago = daemon.secondsSinceSeen === null ? '' : `, ${secondsAgo(daemon.secondsSinceSeen)}`;
  if (daemon.running) {
    // The leader's lock session is another role's where this one may not see its activity.
    const seconds = daemon.secondsSinceSeen;
    return seconds === null ? 'running' : `running (last heartbeat ${secondsAgo(seconds)})`;
  }
  if (daemon.lastSeen === null) return 'not running (never seen on this source)';
  return `not running (last seen ${daemon.lastSeen}${ago}): target states are as last seen then`;
}

/** `3.2 s ago`, `5 min ago`, `2 h ago`, `3 d ago`. */
export function secondsAgo(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(1)} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86_400)} d ago`;
}
