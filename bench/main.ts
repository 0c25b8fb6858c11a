// Entry point of `npm run bench`: runs the named benchmarks (all when none is named) one after the other,
// each on servers of its own. See bench/README.md.
import { loadGenerator } from './support/load.js';
import { parseOptions, usage, type BenchContext, type BenchName } from './support/options.js';

type Bench = (context: BenchContext) => Promise<void>;

/** Loaded when named: a benchmark's modules are only read when it runs. */
const benches: Record<BenchName, () => Promise<Bench>> = {
  capture: async () => (await import('./capture/run.js')).captureBench,
  throughput: async () => (await import('./throughput/run.js')).throughputBench,
  latency: async () => (await import('./latency/run.js')).latencyBench,
  soak: async () => (await import('./soak/run.js')).soakBench,
  prune: async () => (await import('./prune.js')).pruneBench,
  relational: async () => (await import('./relational/run.js')).relationalBench,
  fanout: async () => (await import('./fanout/run.js')).fanoutBench,
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
    const bench = await benches[name]();
    await bench(context);
  }
}

main().catch((thrown: unknown) => {
  console.error(thrown instanceof Error ? (thrown.stack ?? thrown.message) : thrown);
  process.exitCode = 1;
});
