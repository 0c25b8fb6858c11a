// The applied-by-position rule (src/changelog/applied-by.ts) in PostgreSQL: its SQL agrees with its TypeScript
// twin on generated positions and changes, and the window read built on it still finds its changes by
// the change log's indexes.
import fc from 'fast-check';
import type pg from 'pg';
import { describe, expect, it } from 'vitest';

import { prepareReaderSession } from '../../src/apply/log-reader.js';
import { migrate } from '../../src/capture/migrations.js';
import { appliedBy, appliedBySql, pendingSql, type PositionSql } from '../../src/changelog/applied-by.js';
import { parseSnapshot, visibleIn } from '../../src/changelog/snapshot.js';
import {
  readWindow,
  txidsOfA,
  windowQuery,
  windowValues,
  type Position,
} from '../../src/changelog/window.js';
import { withClient } from '../support/cluster.js';
import { freshDatabase, sharedClusters } from '../support/fixtures.js';
import { predicateCase, type PredicateCase } from '../unit/position-predicate-arbitraries.js';

/** A plan node of EXPLAIN (FORMAT JSON), as far as these tests read it. */
interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Index Cond'?: string;
  Filter?: string;
  Plans?: PlanNode[];
}

function nodesOf(node: PlanNode): PlanNode[] {
  return [node, ...(node.Plans ?? []).flatMap(nodesOf)];
}

describe('the applied-by-position rule', () => {
  it('agrees in SQL with its TypeScript twin on generated positions and changes', async () => {
    const db = await freshDatabase(sharedClusters().source);
    await withClient(db.url, async (client) => {
      // One row per case, its position and change in columns as the rule's callers have them.
      const position: PositionSql = {
        fromSnapshot: 'u.from_snapshot',
        toSnapshot: 'u.to_snapshot',
        appliedId: 'u.applied_id',
      };
      const query = `
        select ${appliedBySql(position, 'u')} as applied, ${pendingSql('u.at', position, 'u')} as pending
          from unnest($1::pg_snapshot[], $2::pg_snapshot[], $3::int8[], $4::xid8[], $5::int8[], $6::pg_snapshot[])
               with ordinality as u (from_snapshot, to_snapshot, applied_id, txid, id, at, n)
         order by u.n`;
      const inTypeScript = ({ position, change, at }: PredicateCase) => {
        const applied = appliedBy(position)(change);
        return { applied, pending: visibleIn(change.txid, parseSnapshot(at)) && !applied };
      };
      let compared = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.array(predicateCase, { minLength: 1, maxLength: 200, size: 'max' }),
          async (cases) => {
            const result = await client.query<{ applied: boolean; pending: boolean }>(query, [
              cases.map((c) => c.position.from.snapshot),
              cases.map((c) => c.position.to?.snapshot ?? null),
              cases.map((c) => c.position.appliedId),
              cases.map((c) => c.change.txid),
              cases.map((c) => c.change.id),
              cases.map((c) => c.at),
            ]);
            expect(result.rows).toHaveLength(cases.length);
            cases.forEach((c, i) => {
              expect({ case: c, ...result.rows[i] }).toEqual({ case: c, ...inTypeScript(c) });
            });
            compared += cases.length;
          },
        ),
        { numRuns: 40 },
      );
      expect(compared).toBeGreaterThan(2000);
    });
  });

  it('leaves the window read on its indexes: part A by txid, part B by id', async () => {
    // 100k changes of 25k transactions, four each: change g (id g + 1) by transaction 1000 + g / 4.
    await withLog(100_000, '1000 + g / 4', async (client) => {
      // `from` did not see transaction 5000 (a long one) nor 21000 and took the ids up to 21004's; the
      // window ends where every transaction below 22000 had committed.
      const position: Position = {
        from: { snapshot: '5000:21002:5000,21000', idBound: 80_020, nextXid: '21005' },
        to: { snapshot: '22000:22000:', idBound: 84_000, nextXid: '22001', idCeiling: 84_000 },
        appliedId: 0,
      };
      const query = windowQuery('trigsync', [{ relid: 1, filter: undefined }]);
      // At the window's start, within the long transaction's changes, and past from's id bound (part A
      // empty: where its ids lie is then the planner's to choose).
      for (const appliedId of [0, 16_002, 82_000]) {
        const result = await client.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(
          `explain (format json) ${query}`,
          windowValues({ ...position, appliedId }, { changes: 5000, bytes: 16 * 1024 * 1024 }),
        );
        const plan = result.rows[0]!['QUERY PLAN'][0].Plan;
        const scans = nodesOf(plan).filter((n) => n['Relation Name'] === 'change_log');
        const shown = `at appliedId ${appliedId}:\n${JSON.stringify(plan, null, 1)}`;
        expect(scans, shown).toHaveLength(2);
        const [a, b] = scans as [PlanNode, PlanNode];
        // A: point lookups by txid, each from the applied id up to from's id bound.
        if (appliedId < position.from.idBound) {
          expect([a['Node Type'], a['Index Name']], shown).toEqual(['Index Scan', 'change_log_txid']);
          expect(a['Index Cond'], shown).toMatch(
            new RegExp(`txid = ANY .* AND \\(id > '${appliedId}'::bigint\\) AND \\(id <= '80020'::bigint\\)`),
          );
        }
        // B: the range of ids past both.
        expect([b['Node Type'], b['Index Name']], shown).toEqual(['Index Scan', 'change_log_pkey']);
        const low = Math.max(appliedId, position.from.idBound);
        expect(b['Index Cond'], shown).toBe(`((id > '${low}'::bigint) AND (id <= '84000'::bigint))`);
        // The rule filters what the indexes find.
        for (const scan of [a, b]) expect(scan.Filter, shown).toContain('pg_visible_in_snapshot');
      }
    });
  });

  it('reads nothing below the start of a window whose start saw every transaction', async () => {
    // A log that a lagging target holds: 200k changes of ten bulk transactions below the window, then
    // the window's 1,000 of transaction 1010. Few transactions: a txid matches a tenth of the log.
    await withLog(201_000, '1000 + least(g / 20000, 10)', async (client) => {
      // `from` saw every transaction below 1010 (part A has no txid); the window holds 1010's changes.
      const position: Position = {
        from: { snapshot: '1010:1010:', idBound: 200_000, nextXid: '1009' },
        to: { snapshot: '1011:1011:', idBound: 201_000, nextXid: '1011', idCeiling: 201_000 },
        appliedId: 0,
      };
      expect(txidsOfA(position.from)).toEqual([]);
      const query = windowQuery('trigsync', [{ relid: 1, filter: undefined }]);
      const chunk = await readWindow(client, query, position, { changes: 256, bytes: 16 * 1024 * 1024 });
      expect(chunk.changes.map((c) => Number(c.id))).toEqual(
        Array.from({ length: 256 }, (_, i) => 200_001 + i),
      );
      // The read's blocks: the window's few, not the log's below it (over 2,000 walked by id).
      type Buffers = { 'Shared Hit Blocks': number; 'Shared Read Blocks': number };
      const result = await client.query<{ 'QUERY PLAN': [{ Plan: PlanNode & Buffers }] }>(
        `explain (analyze, buffers, format json) ${query}`,
        windowValues(position, { changes: 256, bytes: 16 * 1024 * 1024 }),
      );
      const plan = result.rows[0]!['QUERY PLAN'][0].Plan;
      const blocks = plan['Shared Hit Blocks'] + plan['Shared Read Blocks'];
      expect(blocks, JSON.stringify(plan, null, 1)).toBeLessThan(200);
    });
  });
});

/**
 * A fresh source schema whose log holds `changes` changes, change g (id g + 1) by transaction `txid`
 * (an expression of g), analyzed; then `fn` on a reader's session.
 */
async function withLog(
  changes: number,
  txid: string,
  fn: (client: pg.Client) => Promise<void>,
): Promise<void> {
  const db = await freshDatabase(sharedClusters().source);
  await withClient(db.url, async (client) => {
    await migrate(client, 'trigsync', 'source');
    await client.query(
      `insert into trigsync.change_log (txid, relid, op, row)
       select (${txid})::text::xid8, 1, 'I', json_build_object('id', g) from generate_series(0, $1 - 1) g`,
      [changes],
    );
    await client.query('analyze trigsync.change_log');
    await prepareReaderSession(client);
    await fn(client);
  });
}
