// Entry point of `npm run bench`: runs the named benchmarks (all when none is named) one after the other,
// each on servers of its own. See bench/README.md.
import { applyBench } from './apply.js';
import { captureBench } from './capture/run.js';
import { loadGenerator } from './support/load.js';
import { parseOptions, usage, type BenchContext, type BenchName } from './support/options.js';
import { pruneBench } from './prune.js';

const benches: Record<BenchName, (context: BenchContext) => Promise<void>> = {
  capture: captureBench,
  apply: applyBench,
  prune: pruneBench,
};

async function main(): Promise<void> {
  const parsed = parseOptions(process.argv.slice(2));
  if (parsed === 'help') {
    console.log(usage);
    return;
  }
  const context: BenchContext = {
    options: parsed.options,
    load: await loadGenerator(parsed.options.nodeLoad),
  };
  for (const [i, name] of parsed.names.entries()) {
    if (i > 0) console.log('');
    await benches[name](context);
  }
}

main().catch((thrown: unknown) => {
  console.error(thrown instanceof Error ? (thrown.stack ?? thrown.message) : thrown);
  process.exitCode = 1;
});
