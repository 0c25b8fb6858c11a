import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The version matrix downloads other PostgreSQL majors: `npm run test:matrix` runs it.
    exclude: [...configDefaults.exclude, 'test/matrix/**'],
    globalSetup: ['test/support/global-setup.ts'],
    // Child processes (the daemon, pg servers) and signals behave best in forked workers.
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 60_000,
    reporters: ['default', 'json'],
    outputFile: { json: 'test-results.json' },
  },
});
