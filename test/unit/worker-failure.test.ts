// What a worker's failure means (src/worker/worker-failure.ts): wait, reconnect or park, and with what kind.
// No database.
import pg from 'pg';
import { describe, expect, it } from 'vitest';

import { ChangeRefused } from '../../src/apply/chunk.js';
import { TargetLockHeld } from '../../src/apply/target-lock.js';
import { FailureReporter, judge, onTarget, TargetFailed } from '../../src/worker/worker-failure.js';
import { configFromObject } from '../../src/config/load.js';
import type { TermFence } from '../../src/db/term-fence.js';
import { TrigsyncEvents } from '../../src/lib/events.js';
import { createLogger } from '../../src/lib/logger.js';
import { ConfigError } from '../../src/failure/errors.js';
import { PositionLost } from '../../src/changelog/horizon.js';
import { logChange } from '../support/log-change.js';

function databaseError(code: string): pg.DatabaseError {
  const error = new pg.DatabaseError('error from the server', 0, 'error');
  error.code = code;
  return error;
}

const refused = () =>
  Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });

describe('judge', () => {
  it("waits, without parking, while another daemon holds the target's apply lock", () => {
    expect(judge(new TargetFailed(new TargetLockHeld('reporting'))).verdict).toBe('wait');
  });

  it('parks the target on its own failures, retried as their kind says', () => {
    expect(judge(new TargetFailed(refused()))).toMatchObject({ verdict: 'park', kind: 'connection' });
    expect(judge(new TargetFailed(databaseError('42703')))).toMatchObject({ verdict: 'park', kind: 'data' });
    const plan = new ConfigError('targets.reporting: table public.t does not exist on target reporting');
    expect(judge(new TargetFailed(plan))).toMatchObject({ verdict: 'park', kind: 'config', cause: plan });
  });

  it('parks with the refused change, whose cause is what the target said', () => {
    const cause = databaseError('23503');
    const thrown = new ChangeRefused(logChange({ id: 7, op: 'I', row: '{"id":1}' }), cause);
    expect(judge(thrown)).toEqual({ verdict: 'park', kind: 'data', cause, refused: thrown });
  });

  it('parks on what an operator must fix on the source: a lost position, a target not registered', () => {
    expect(judge(new PositionLost('the log was pruned past it'))).toMatchObject({
      verdict: 'park',
      kind: 'data',
    });
    expect(judge(new ConfigError('target x is not registered'))).toMatchObject({
      verdict: 'park',
      kind: 'config',
    });
  });

  it('reconnects to a source that is unavailable, without parking the target', () => {
    expect(judge(refused())).toMatchObject({ verdict: 'reconnect', kind: 'connection' });
    expect(judge(databaseError('57P01'))).toMatchObject({ verdict: 'reconnect', kind: 'connection' });
  });
});

describe('FailureReporter', () => {
  it('logs a source that refused a query apart from one that is unavailable; both are retried', async () => {
    const lines: string[] = [];
    const reporter = new FailureReporter({
      target: 'reporting',
      config: configFromObject(
        {
          source: { url: 'postgres://u:p@source/app' },
          tables: ['public.t'],
          targets: [{ name: 'reporting', url: 'postgres://u:p@target/app' }],
        },
        { env: {} },
      ),
      log: createLogger('info', { write: (line: string) => void lines.push(line) }),
      events: new TrigsyncEvents(),
      fence: {} as TermFence,
    });
    const said = async (thrown: unknown): Promise<string> => {
      const verdict = judge(thrown);
      if (verdict.verdict === 'wait') throw new Error('expected no wait');
      lines.length = 0;
      await reporter.report(verdict, undefined);
      return (JSON.parse(lines[0]!) as { msg: string }).msg;
    };
    expect(await said(refused())).toBe('source unavailable; retrying');
    expect(await said(databaseError('57P01'))).toBe('source unavailable; retrying');
    // A grant revoked on the log: the source answers, and refuses.
    expect(await said(databaseError('42501'))).toBe('source refused a query; retrying');
  });
});

describe('onTarget', () => {
  it("marks what fails as the target's, once, and lets a refused change through as it is", async () => {
    const cause = databaseError('42P01');
    const wrapped = (await onTarget(() => Promise.reject(cause)).catch((e: unknown) => e)) as TargetFailed;
    expect(wrapped).toBeInstanceOf(TargetFailed);
    expect(wrapped.cause).toBe(cause);
    expect(await onTarget(() => Promise.reject(wrapped)).catch((e: unknown) => e)).toBe(wrapped);
    const change = new ChangeRefused(logChange({ id: 1, op: 'D', row: '{"id":1}' }), cause);
    expect(await onTarget(() => Promise.reject(change)).catch((e: unknown) => e)).toBe(change);
  });
});
