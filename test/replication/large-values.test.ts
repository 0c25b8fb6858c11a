// Issue #18, point 5: a chunk is bounded by the bytes of its row images as well as by its changes
// (apply.batchBytes), the chunk read ahead included, and a change larger than that is applied alone.
// Rows of 8 MB, twice the chunk bound, under a daemon with a 128 MB heap all arrive, and the daemon never runs
// out of memory.
import { readFile } from 'node:fs/promises';

import { describe, expect, it } from 'vitest';

import { migrate } from '../../src/capture/migrations.js';
import { readStatus } from '../../src/changelog/status.js';
import {
  openWindow,
  positionAt,
  readWindow,
  takeTick,
  windowQuery,
  type Chunk,
} from '../../src/changelog/window.js';
import { withClient } from '../support/cluster.js';
import { freshDatabase, sharedClusters, waitFor } from '../support/fixtures.js';
import { ChildDaemon, expectSameRows, makeConfig } from '../support/replication.js';

const MB = 1024 * 1024;
/**
 * The large rows, the daemon's heap and the chunk bound: twenty rows, each larger than apply.batchBytes,
 * more than the heap together. A fifth of the bytes of the 50 MB rows under a 512 MB heap this test
 * began with: the time is the bytes (the target spends about a second per 8 MB on JSON and record text),
 * and the ratios that make it a test hold: a row twice the chunk bound, a pass larger than the heap.
 */
const rowMB = 8;
const heapMB = 128;
const batchMB = 4;

describe('large values', () => {
  it('reads chunks of at most apply.batchBytes, the first change whatever its size', async () => {
    const db = await freshDatabase(sharedClusters().source);
    await withClient(db.url, async (client) => {
      await migrate(client, 'trigsync', 'source');
      const start = positionAt(await takeTick(client, 'trigsync'));
      // Images of about 1 MB that compress to a few kB, one of them an update (two images), and small
      // ones around them; ids 1 to 7.
      const big = (n: number) => `json_build_object('id', ${n}, 'v', repeat(md5('${n}'), 32768))`;
      await client.query(
        `insert into trigsync.change_log (relid, op, row, old_row) values
           (1, 'I', ${big(1)}, null), (1, 'I', ${big(2)}, null), (1, 'U', ${big(3)}, ${big(30)}),
           (1, 'I', '{"id": 4}', null), (1, 'I', ${big(5)}, null), (1, 'I', '{"id": 6}', null),
           (1, 'I', '{"id": 7}', null)`,
      );
      const sizes = await client.query<{ id: number; bytes: number; stored: number }>(
        `select id, coalesce(octet_length(row::text), 0) + coalesce(octet_length(old_row::text), 0) as bytes,
                pg_column_size(row) as stored
           from trigsync.change_log order by id`,
      );
      const bytes = new Map(sizes.rows.map((r) => [Number(r.id), r.bytes]));
      expect(sizes.rows[0]!.stored).toBeLessThan(bytes.get(1)! / 10);
      const position = openWindow(start, await takeTick(client, 'trigsync'));
      const query = windowQuery('trigsync', [{ relid: 1, filter: undefined }]);
      const read = async (appliedId: number, limits: { changes: number; bytes: number }) => {
        const chunk: Chunk = await readWindow(client, query, { ...position, appliedId }, limits);
        const ids = chunk.changes.map((c) => c.id);
        expect(chunk.bytes).toBe(ids.reduce((sum, id) => sum + bytes.get(id)!, 0));
        return { ids, full: chunk.full };
      };

      // Taken while the changes before hold less than the bound: the one that crosses it is the last.
      expect(await read(0, { changes: 100, bytes: 1.5 * MB })).toEqual({ ids: [1, 2], full: true });
      // The update counts both its images.
      expect(await read(2, { changes: 100, bytes: 2.5 * MB })).toEqual({ ids: [3, 4, 5], full: true });
      // A change larger than the bound is a chunk alone, and not the window's last.
      expect(await read(0, { changes: 100, bytes: 1 })).toEqual({ ids: [1], full: true });
      expect(await read(3, { changes: 100, bytes: 1 })).toEqual({ ids: [4], full: true });
      // Changes and bytes bound it together; a chunk that reaches neither ends the window.
      expect(await read(3, { changes: 3, bytes: 100 * MB })).toEqual({ ids: [4, 5, 6], full: true });
      expect(await read(3, { changes: 100, bytes: 100 * MB })).toEqual({ ids: [4, 5, 6, 7], full: false });
      expect(await read(7, { changes: 100, bytes: 1 })).toEqual({ ids: [], full: false });
      // Exactly at the bound: the stored size of a small image (with its header) is more than its text,
      // and must not leave out a change that fits.
      const fits = { changes: 100, bytes: bytes.get(6)! + 1 };
      expect(await read(5, fits)).toEqual({ ids: [6, 7], full: true });
    });
  });

  it(`applies twenty ${rowMB} MB rows, inserted then updated, under a daemon with a ${heapMB} MB heap`, async () => {
    const { source, target1 } = sharedClusters();
    const [src, dst] = await Promise.all([freshDatabase(source), freshDatabase(target1)]);
    for (const db of [src, dst])
      await db.cluster.query('create table big (id int primary key, v text)', [], db.name);
    const raw = {
      source: { url: src.url },
      tables: ['big'],
      targets: [{ name: 'dst', url: dst.url, initialSync: 'none' }],
      apply: { pollIntervalMs: 100, batchBytes: batchMB * MB },
      retry: { initialDelayMs: 100, maxDelayMs: 1000 },
      metrics: { enabled: false },
    };
    const config = makeConfig(raw);
    const daemon = await ChildDaemon.create(raw, [`--max-old-space-size=${heapMB}`]);
    await daemon.start();

    // rowMB of text per row, made on the server (the test never holds it): it compresses to under 1 MB
    // on disk, and is as large a string in the daemon all the same. Written a few rows per statement, so
    // that the daemon applies some while the source writes the rest, and each UPDATE statement's rows
    // go in chunks of one (their images are larger than apply.batchBytes).
    const value = (seed: string) => `repeat(repeat(md5(${seed}), 32), ${(rowMB * MB) / 1024})`;
    // 160 MB a pass: more than the heap, were the daemon to hold the rows together.
    const rows = 20;
    const perStatement = 4;
    for (let first = 1; first <= rows; first += perStatement) {
      const ids = `generate_series(${first}, ${first + perStatement - 1})`;
      await src.cluster.query(`insert into big select i, ${value('i::text')} from ${ids} i`, [], src.name);
    }
    for (let first = 1; first <= rows; first += perStatement) {
      await src.cluster.query(
        `update big set v = ${value("id::text || 'updated'")}
          where id between ${first} and ${first + perStatement - 1}`,
        [],
        src.name,
      );
    }

    await waitFor(
      async () => {
        if (!daemon.running) return true;
        const status = await withClient(src.url, (client) => readStatus(client, config));
        return status.targets.every((t) => !t.configured || (t.backlog === 0 && t.state !== 'new'));
      },
      { what: 'the target to apply every large row', timeoutMs: 540_000, intervalMs: 500 },
    );
    const log = await daemon.log();
    expect(daemon.running, `the daemon exited:\n${log.slice(-3000)}`).toBe(true);
    expect(log.match(/daemon started/g)).toHaveLength(1);
    const peak = /VmHWM:\s+(\d+) kB/.exec(await readFile(`/proc/${daemon.pid}/status`, 'utf8'));
    console.info(`daemon peak RSS ${Math.round(Number(peak?.[1]) / 1024)} MB`);

    const query = `select id, md5(v) as v, length(v) as length from big`;
    await expectSameRows({ url: src.url, query }, { url: dst.url, query }, 'id');
    const updated = await dst.cluster.query<{ n: string }>(
      `select count(*) as n from big where v like md5(id::text || 'updated') || '%' and length(v) = ${rowMB * MB}`,
      [],
      dst.name,
    );
    expect(Number(updated[0]!.n)).toBe(rows);
    expect(await daemon.stop()).toBe(0);
  }, 600_000);
});
