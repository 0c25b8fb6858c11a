// @ts-check
// The import rules of src/ (STYLE.md: imports run down the layers, never up and never in a circle),
// checked by `npm run deps`, part of `npm run lint`. Type-only imports count: tsPreCompilationDeps keeps
// them in the graph, so `import type` may not climb a layer or close a cycle either.

/** The layers, lowest first: a file imports from its own folder and from the folders below it. */
const layers = [
  'failure', // the error taxonomy
  'config',
  'lib',
  'db',
  'capture',
  'changelog', // the change log, positions in it, and the source's record of targets
  'apply', // changes made into set-based statements and applied to a target
  'sync', // copying tables to a target: requests, the copy, its progress
  'worker', // one target's worker: a session that reads, applies, syncs, and judges failures
  'verify',
  'metrics',
  'operator', // what an operator asks of a running daemon: retry, skip, sync
  'daemon',
  'demo',
  'cli',
];

/** @type {import('dependency-cruiser').IForbiddenRuleType[]} */
const layerRules = layers.map((layer, i) => {
  const allowed = layers.slice(0, i + 1);
  return {
    name: `layer-${layer}`,
    comment: `src/${layer}/ imports from src/ only out of ${allowed.join(', ')}.`,
    severity: 'error',
    from: { path: `^src/${layer}/` },
    to: { path: '^src/', pathNot: `^src/(${allowed.join('|')})/` },
  };
});

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'No import cycle, type-only imports included.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    ...layerRules,
    {
      name: 'in-a-layer',
      comment: `Every file under src/ lives in a layer's folder: ${layers.join(', ')}.`,
      severity: 'error',
      from: { path: '^src/', pathNot: `^src/(${layers.join('|')})/` },
      to: {},
    },
    {
      name: 'resolved',
      comment: 'An import the cruiser cannot resolve escapes every rule above.',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
