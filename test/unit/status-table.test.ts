// `status` as text (src/cli/commands/status.ts): whether a daemon runs, target states marked as last
// seen when none does, and parked, removed and paused targets each with their own time.
import { describe, expect, it } from 'vitest';

import { checkProblems, daemonLine, secondsAgo, statusTable } from '../../src/cli/commands/status.js';
import type { DaemonStatus, Status, TargetStatus } from '../../src/lib/status-report.js';

const stopped: DaemonStatus = {
  running: false,
  lastSeen: '2026-01-01T12:00:00.000Z',
  secondsSinceSeen: 300,
};
const running: DaemonStatus = { running: true, lastSeen: '2026-01-01T12:05:00.000Z', secondsSinceSeen: 0.4 };

function target(name: string, fields: Partial<TargetStatus>): TargetStatus {
  return {
    name,
    group: 'default',
    state: 'live',
    backlog: 0,
    lagSeconds: 0,
    errorQueue: 0,
    lastError: null,
    parkedSince: null,
    removedSince: null,
    pausedSince: null,
    recordedAt: '2026-01-01T12:00:00.000Z',
    current: true,
    lastAppliedAt: null,
    configured: true,
    toCopy: [],
    sequences: [],
    copying: null,
    ...fields,
  };
}

function status(daemon: DaemonStatus, targets: TargetStatus[]): Status {
  const leader = daemon.running ? { daemon: 'host:42', since: '2026-01-01T11:00:00.000Z' } : null;
  return {
    targets: targets.map((t) => ({ ...t, current: daemon.running })),
    log: { rows: 0 },
    notInConfig: [],
    leader,
    daemon,
    group: 'default',
    groups: [{ name: 'default', leader, daemon }],
  };
}

const parked = target('reporting', {
  state: 'parked',
  parkedSince: '2026-01-01T11:59:00.000Z',
  lastError: 'password authentication failed for user "app"',
  errorQueue: 0,
});
const removed = target('old', { state: 'removed', removedSince: '2026-01-01T11:30:00.000Z' });

describe('status text', () => {
  it('marks the states as last seen, and says when the daemon was, when none runs', () => {
    const lines = statusTable(status(stopped, [parked, target('analytics', {}), removed]));
    expect(lines.find((l) => l.startsWith('reporting'))).toMatch(
      /^reporting\s+last seen parked since 2026-01-01T11:59:00.000Z\s+0\s+0.0s\s+0\s+password authentication failed/,
    );
    expect(lines.find((l) => l.startsWith('analytics'))).toMatch(/^analytics\s+last seen live\s/);
    // Removed is the config's doing, not a daemon's: not a last-seen state, and its own time.
    expect(lines.find((l) => l.startsWith('old'))).toMatch(/^old\s+removed since 2026-01-01T11:30:00.000Z\s/);
    expect(lines).toContain('leader: none');
    expect(lines).toContain(
      'daemon: not running (last seen 2026-01-01T12:00:00.000Z, 5 min ago): target states are as last seen then',
    );
  });

  it('shows current states and the heartbeat while a daemon runs', () => {
    const lines = statusTable(status(running, [parked, removed]));
    expect(lines.find((l) => l.startsWith('reporting'))).toMatch(
      /^reporting\s+parked since 2026-01-01T11:59/,
    );
    expect(lines).toContain('leader: host:42 since 2026-01-01T11:00:00.000Z');
    expect(lines).toContain('daemon: running (last heartbeat 0.4 s ago)');
  });

  it('shows a paused target with its time, daemon or not, and does not count its lag as a problem', () => {
    const paused = target('audit', {
      state: 'paused',
      pausedSince: '2026-01-01T11:45:00.000Z',
      backlog: 1_200,
      lagSeconds: 900,
    });
    for (const daemon of [running, stopped]) {
      expect(statusTable(status(daemon, [paused])).find((l) => l.startsWith('audit'))).toMatch(
        /^audit\s+paused since 2026-01-01T11:45:00.000Z\s+1200\s/,
      );
    }
    expect(checkProblems(status(running, [paused]), 60)).toEqual([]);
    // Not so a target that lags without a pause.
    expect(checkProblems(status(running, [{ ...paused, state: 'catching_up' }]), 60)).toEqual([
      'target audit lags 900.0 s (more than 60 s)',
    ]);
  });

  it('tells a daemon that holds the lock without a leader row yet, or that this role cannot watch', () => {
    expect(daemonLine({ running: true, lastSeen: 'T', secondsSinceSeen: null })).toBe('running');
    expect(daemonLine({ running: false, lastSeen: null, secondsSinceSeen: null })).toBe(
      'not running (never seen on this source)',
    );
    const starting = { ...status(running, []), leader: null };
    expect(statusTable(starting)).toContain(
      'leader: none recorded yet (a daemon holds the lock and is starting)',
    );
    expect(checkProblems(starting, 60)).toEqual([]);
    expect(checkProblems(status(stopped, []), 60)).toEqual([
      'no trigsync daemon is running for this source (no leader)',
    ]);
  });

  it('says how long ago in the unit that reads best', () => {
    expect([3.25, 59.9, 60, 3599, 3600, 86_399, 86_400 * 3].map(secondsAgo)).toEqual([
      '3.3 s ago',
      '59.9 s ago',
      '1 min ago',
      '59 min ago',
      '1 h ago',
      '23 h ago',
      '3 d ago',
    ]);
  });
});
