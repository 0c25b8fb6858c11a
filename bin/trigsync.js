#!/usr/bin/env node
// Thin launcher: the compiled CLI lives in dist/ (npm run build).
import { existsSync } from 'node:fs';

const entry = new URL('../dist/cli/main.js', import.meta.url);
// A checkout that was never built has no dist/: say so in a line. Anything else that fails to load
// inside dist/ is a real error, and shows as one.
if (!existsSync(entry)) {
  console.error(
    "trigsync: not built yet; run 'npm run build' first (npm run demo and npm test build it for you)",
  );
  process.exit(3);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
