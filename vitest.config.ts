import { availableParallelism } from 'node:os';

import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The version matrix downloads other PostgreSQL majors: `npm run test:matrix` runs it.
    exclude: [...configDefaults.exclude, 'test/matrix/**'],
    globalSetup: ['test/support/global-setup.ts'],
    // Child processes (the daemon, pg servers) and signals behave best in forked workers.
    pool: 'forks',
    // Two files at a time at least: most of a file's time is waiting on servers and daemons, and every
    // file has databases (and where it stops servers, clusters) of its own. Vitest's default, one fewer
    // than the cores, runs one at a time on two (about 16 minutes instead of 11 on two cores).
    maxWorkers: Math.max(2, availableParallelism() - 1),
    testTimeout: 120_000,
    hookTimeout: 60_000,
    reporters: ['default', 'json'],
    outputFile: { json: 'test-results.json' },
  },
});
