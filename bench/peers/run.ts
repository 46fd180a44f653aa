// Times the peer engines (TensorFlow.js WebGPU, jax-js) on the workloads of bench/peers/workloads.ts
// with tinybench: one untimed warm-up run (pipeline compiles), then the median of a few runs.
// Usage: npx tsx bench/peers/run.ts [--engine tfjs|jax] [--only <substring>] [--json out.json] [--iterations n]
import { appendFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ENGINES, loadPeers, measurePeer, type Engine, type PeerResult } from './index.js';

const HELP = `Times the peer engines on dawnet's benchmark workloads, on the adapter dawnet would pick.

  npx tsx bench/peers/run.ts [--engine tfjs|jax] [--only <substring>] [--json out.json] [--iterations n]

  --engine       tfjs or jax (default: both, tfjs first)
  --only         run only the workloads whose name contains this substring
  --json         write one JSON object per line: {engine, name, ms, adapter, ...}
  --iterations   timed runs per workload (default: 3 to 10 per workload, sized for lavapipe)
  --list         print the workload names and exit

DAWNET_ADAPTER / DAWNET_BACKEND choose the adapter, as for dawnet.
Install the peers first: npm --prefix bench/peers ci`;

const { values } = parseArgs({
  options: {
    engine: { type: 'string' },
    only: { type: 'string' },
    json: { type: 'string' },
    iterations: { type: 'string' },
    list: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}
if (values.engine && !(ENGINES as readonly string[]).includes(values.engine)) {
  console.error(`--engine must be one of ${ENGINES.join(', ')}\n\n${HELP}`);
  process.exit(2);
}
const engines = values.engine ? [values.engine as Engine] : [...ENGINES];
const iterations = values.iterations ? Number(values.iterations) : undefined;
if (iterations !== undefined && !(Number.isInteger(iterations) && iterations > 0)) {
  console.error('--iterations must be a positive integer');
  process.exit(2);
}

const peers = await loadPeers();
if (!peers) {
  console.error('The peer engines are not installed: npm --prefix bench/peers ci');
  process.exit(1);
}
const expected = await peers.peerAdapterName();
// As dawnet's src/gpu/device.ts tells a software adapter from a GPU.
const software = /llvmpipe|lavapipe|swiftshader/i.test(expected);
const workloads = peers.workloads.filter((w) => (!values.only || w.name.includes(values.only)) && !(software && w.gpuOnly));
if (values.list) {
  for (const w of workloads) console.log(w.name);
  process.exit(0);
}

function format(r: PeerResult): string {
  const head = `${r.engine.padEnd(5)} ${r.name.padEnd(42)}`;
  if (r.unsupported) return `${head} unsupported: ${r.unsupported}`;
  if (r.error || r.ms === null) return `${head} failed: ${r.error ?? 'no result'}`;
  const rate = r.gflops !== undefined ? `${r.gflops.toFixed(2)} GFLOP/s`
    : r.imagesPerSecond !== undefined ? `${r.imagesPerSecond.toFixed(2)} images/s` : '';
  return `${head} ${r.ms.toFixed(1).padStart(10)} ms  ${rate}`;
}

if (values.json) writeFileSync(values.json, '');
console.log(`adapter: ${expected}`);
for (const engine of engines) {
  const adapter = await peers.startEngine(engine);
  if (adapter !== expected) throw new Error(`${engine} opened ${adapter}, not ${expected}`);
  for (const workload of workloads) {
    const result = await measurePeer(engine, workload, adapter, iterations);
    console.log(format(result));
    if (values.json) appendFileSync(values.json, `${JSON.stringify(result)}\n`);
  }
}
// Dawn's devices keep Node's event loop alive; the results are written.
process.exit(0);
