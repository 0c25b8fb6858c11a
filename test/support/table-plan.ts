// A TablePlan for unit tests: a table `public.<name>` keyed by `id`, whose target oid is its relid + 1000.
import type { TablePlan } from '../../src/apply/plan.js';

export function tablePlan(
  relid: number,
  name: string,
  rank: number,
  partitioned = false,
  looseKey = false,
): TablePlan {
  const q = { schema: 'public', name };
  return {
    relid,
    source: q,
    target: q,
    sourceName: `public.${name}`,
    targetName: `public.${name}`,
    columns: ['id', 'v'],
    identityAlways: [],
    key: ['id'],
    imageJsonColumns: [],
    jsonColumns: [],
    keyScan: true,
    looseKey,
    targetRelid: relid + 1000,
    partitioned,
    inherits: false,
    missingValues: new Map(),
    copyable: true,
    copyThrough: true,
    rank,
  };
}
