// The source's copy of a target's position (src/worker/position-mirror.ts) may lag the target's own
// record, never run ahead of it, and never write an old position back to the target. A position whose
// commit did not wait for its flush is copied, and first written again on the target, only through the
// session that applied it: once it ended, the target may have lost that position (a crash) or gone past
// it (a commit whose answer was lost).
import type pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';

import { sourceOrigin } from '../../src/capture/install.js';
import { loadRegisteredPosition } from '../../src/changelog/targets.js';
import type { Position } from '../../src/changelog/window.js';
import type { TargetState } from '../../src/lib/status-report.js';
import { loadAppliedPosition, saveAppliedPosition } from '../../src/apply/applied-position.js';
import { PositionMirror } from '../../src/worker/position-mirror.js';
import type { Session } from '../../src/worker/worker-session.js';
import { clientAs, caughtUpPair } from '../support/replication.js';

const opened: pg.Client[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((c) => c.end()));
});

/** The parts of a session the mirror uses: its two connections and its position. */
async function sessionAt(srcUrl: string, dstUrl: string, position: Position): Promise<Session> {
  const [source, target] = await Promise.all([clientAs(srcUrl, 'test'), clientAs(dstUrl, 'test')]);
  opened.push(source, target);
  return { source, target, position } as Session;
}

/** A pair caught up, its daemon stopped: the target's record, the source's copy, and a mirror of them. */
async function stoppedPair() {
  const { src, dst, config } = await caughtUpPair();
  const first = await sessionAt(src.url, dst.url, undefined as unknown as Position);
  const origin = await sourceOrigin(first.source, config.schema);
  const key = { schema: config.schema, origin, target: 'dst' };
  const recorded = (await loadAppliedPosition(first.target, config.schema, origin, 'dst'))!;
  first.position = recorded;
  let state: TargetState = 'live';
  const mirror = new PositionMirror(
    key,
    () => state,
    (s) => (state = s),
  );
  const onTarget = () => loadAppliedPosition(first.target, config.schema, origin, 'dst');
  const onSource = async () => (await loadRegisteredPosition(first.source, config.schema, 'dst'))!;
  const later = (by: number): Position => ({
    from: recorded.from,
    to: { ...recorded.from, idCeiling: 1_000_000 },
    appliedId: by,
  });
  return { src, dst, config, key, first, recorded, mirror, onTarget, onSource, later };
}

describe("the source's copy of the position", () => {
  it('copies a position that did not wait for its flush through its own session, flushed there first', async () => {
    const { first, mirror, onTarget, onSource, later, key } = await stoppedPair();
    const before = await onSource();
    // A chunk committed without waiting, its position in the target's record.
    first.position = later(10);
    await saveAppliedPosition(first.target, key.schema, key.origin, key.target, first.position);
    await mirror.applied(first, 'live', 7, false);
    expect((await onSource()).position).toStrictEqual(before.position);
    await mirror.flush(first);
    expect(await onTarget()).toStrictEqual(later(10));
    expect((await onSource()).position).toStrictEqual(later(10));
    expect((await onSource()).appliedChanges).toBe(before.appliedChanges + 7);
  });

  it('never writes it back where a later session read the target anew: a crash took it', async () => {
    const { src, dst, first, recorded, mirror, onTarget, onSource, later } = await stoppedPair();
    const before = await onSource();
    // Applied without waiting for the flush; the target then crashed and kept only `recorded`.
    first.position = later(10);
    await mirror.applied(first, 'live', 7, false);
    const second = await sessionAt(src.url, dst.url, recorded);
    await mirror.flush(second);
    expect(await onTarget()).toStrictEqual(recorded);
    expect(await onSource()).toStrictEqual(before);
    // The next session's own positions are copied as usual.
    second.position = later(20);
    await mirror.applied(second, 'live', 3, true);
    expect((await onSource()).position).toStrictEqual(later(20));
    expect((await onSource()).appliedChanges).toBe(before.appliedChanges + 3);
  });

  it('never takes back a later commit whose answer the ended session lost', async () => {
    const { src, dst, first, mirror, onTarget, onSource, later, key } = await stoppedPair();
    const before = await onSource();
    first.position = later(10);
    await mirror.applied(first, 'live', 7, false);
    // The next chunk committed, its answer lost with the connection; the next session reads it.
    await saveAppliedPosition(first.target, key.schema, key.origin, key.target, later(20));
    const second = await sessionAt(src.url, dst.url, later(20));
    await mirror.flush(second);
    expect(await onTarget()).toStrictEqual(later(20));
    expect(await onSource()).toStrictEqual(before);
  });
});
