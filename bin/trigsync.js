#!/usr/bin/env node
// Thin launcher: the compiled CLI lives in dist/ (npm run build).
import { existsSync } from 'node:fs';
import v8 from 'node:v8';

const entry = new URL('../dist/cli/main.js', import.meta.url);
// A checkout that was never built has no dist/: say so in a line. Anything else that fails to load
// inside dist/ is a real error, and shows as one.
if (!existsSync(entry)) {
  console.error(
    "trigsync: not built yet; run 'npm run build' first (npm run demo and npm test build it for you)",
  );
  process.exit(3);
}
// V8 lets its heap grow to up to four times what survived the last full collection before it collects
// again. A daemon's heap turns over fast (chunks read, applied and dropped) around a small live part, so
// the default made a daemon of 20 targets hold 350 MB of memory for 50 MB live; growing by 30% over the
// live part holds it near 200 MB at the same speed (npm run bench -- fanout). The flag is read at each
// collection, so setting it before anything loads is as good as giving it to node; one given to node
// itself wins.
if (!process.execArgv.some((arg) => /heap.growing.percent/.test(arg))) {
  v8.setFlagsFromString('--heap-growing-percent=30');
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
