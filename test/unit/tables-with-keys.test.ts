// verify's and repair's tables as text (src/cli/commands/common.ts): aligned cells, each table's keys
// under it, and how many more there were than those shown.
import { describe, expect, it } from 'vitest';

import { printTablesWithKeys, tablePair } from '../../src/cli/commands/common.js';

describe('printTablesWithKeys', () => {
  it('aligns the cells, lists keys under their table and counts the rest', () => {
    const lines: string[] = [];
    const out = { print: (line: string) => void lines.push(line), error: () => undefined };
    const tables = [
      { table: 'public.orders', targetTable: 'public.orders', keys: ['{"id":1}', '{"id":2}'], total: 5 },
      { table: 'public.items', targetTable: 'shop.items', keys: [], total: 0 },
    ];
    printTablesWithKeys(out, ['TABLE', 'LEFT'], tables, (t) => ({
      cells: [tablePair(t), String(t.total)],
      keyLines: t.keys.map((k) => `missing  ${k}`),
      more: t.total - t.keys.length,
    }));
    expect(lines).toEqual([
      '  TABLE                       LEFT',
      '  public.orders               5',
      '      missing  {"id":1}',
      '      missing  {"id":2}',
      '      ... and 3 more',
      '  public.items -> shop.items  0',
    ]);
  });
});
