// The unit tests alone (`npm run test:unit`): the pure core, no PostgreSQL, so no global setup. `npm test`
// runs them too, with everything else. No JSON reporter: test-results.json is the whole run's.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Paths below are from the repository root, wherever vitest is started.
    root: fileURLToPath(new URL('../..', import.meta.url)),
    include: ['test/unit/**/*.test.ts'],
    // Pure functions that keep no state between files: one module graph for all of them. Loading it
    // anew for each file (vitest's default) took most of the run's time.
    isolate: false,
  },
});
