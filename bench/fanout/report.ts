// The fan-out benchmark's table: each target count, and two groups, beside the goals of issue #20.
import { fmt, formatTable, mean, verdict, type Cell } from '../support/report.js';
import type { FanoutResult } from './measure.js';

/** Issue #20: the source's block accesses with many targets, at most this many times one target's. */
export const blocksRatioGoal = 2;
/** Issue #20: the daemon's RSS at 20 targets. */
export const rssGoalMB = 200;
/** Issue #20: two groups together apply at least as fast as one daemon with all their targets. */
export const groupsGoal = 1;

const headers = [
  'targets',
  'daemons',
  'changes',
  's',
  'rows/s all',
  '÷ 1 daemon',
  '',
  'rows/s per target',
  'source blocks',
  '÷ 1 target',
  '',
  'start+stop',
  'drain only',
  '÷ 1 target',
  'daemon RSS peak MB',
  '',
];

export function fanoutReport(results: readonly FanoutResult[]): string {
  const alone = results.find((r) => r.targets === 1 && r.groups === 1);
  const rows = results.map((r): Cell[] => {
    const ratio = alone === undefined ? NaN : r.sourceBlocks / alone.sourceBlocks;
    const drainOnly = (x: FanoutResult): number => x.sourceBlocks - x.idleBlocks;
    const oneDaemon = results.find((x) => x.targets === r.targets && x.groups === 1);
    const byGroups = oneDaemon === undefined ? NaN : r.rowsPerSecond / oneDaemon.rowsPerSecond;
    const peak = Math.max(...r.daemonPeakMB);
    return [
      r.targets,
      r.groups === 1 ? '1' : `${r.groups} groups`,
      r.changes,
      r.seconds,
      r.rowsPerSecond,
      r.groups === 1 ? '' : byGroups,
      r.groups === 1 ? '' : `≥ ${groupsGoal} ${verdict(byGroups >= groupsGoal)}`,
      r.targets === 1
        ? fmt(r.perTarget[0]!)
        : `${fmt(Math.min(...r.perTarget))} to ${fmt(Math.max(...r.perTarget))} (mean ${fmt(mean(r.perTarget))})`,
      r.sourceBlocks,
      ratio,
      r.targets === 1 || alone === undefined
        ? ''
        : `≤ ${blocksRatioGoal} ${verdict(ratio <= blocksRatioGoal)}`,
      r.idleBlocks,
      drainOnly(r),
      alone === undefined ? NaN : drainOnly(r) / drainOnly(alone),
      r.daemonPeakMB.map((mb) => fmt(mb)).join(' / '),
      r.targets < 20 ? '' : `≤ ${rssGoalMB} ${verdict(peak <= rssGoalMB)}`,
    ];
  });
  return [
    'Fan-out: a backlog of single-row changes written while the daemon was stopped, then drained to every',
    "target (a database each on one target cluster), timed from the daemons' spawn (`trigsync start`, a",
    'process each) until the last target has committed the last change (its position on the target)',
    formatTable(headers, rows),
    'rows/s all: changes × targets ÷ seconds until the last target is done; per target: its own seconds.',
    "source blocks: blks_hit + blks_read of the source database (pg_stat_database), from before the daemon's",
    '  start to after its stop, read once the counters settled; autovacuum is off on the servers, and the',
    '  log was vacuumed before the start, so that the figure is the daemon’s work. start+stop: the same for',
    '  a start and stop that apply one change (install, connections, the first window); drain only: the',
    '  difference, what the backlog itself cost.',
    'daemons: one of the default group, or 2 groups (a and b, a daemon each, half the targets each, taken',
    '  over from the default group); ÷ 1 daemon: their rows/s all against one daemon with every target.',
    "daemon RSS peak: each daemon process's VmHWM (/proc/PID/status) at the end of the drain, in MB.",
  ].join('\n');
}
