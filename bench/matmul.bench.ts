// Matmul speed: C = A·B for square float32 matrices of side 256, 512, 1024 and 2048, as the
// median ms, GFLOP/s and the fraction of the device's register-only FMA peak (kernels/peak.wgsl,
// measured before and after in the same process), with the kernel and tile each size ran.
// Prints a table, then one JSON line per workload.
//   npm run bench [-- --quick] [-- --peers [tfjs|jax]] [-- --sweep]
// --quick: fewer iterations. --peers: the same workloads on TensorFlow.js / jax-js in this process
// (needs `npm --prefix bench/peers ci`), as peer ms / dawnet ms. --sweep: matmul 1024 with every
// kernel and SIMD tile the planner can choose, to re-tune src/ops/matmul-plan.ts.
import { Bench } from 'tinybench';
import { backend, init, randn, shutdown, type Tensor } from '../src/index.js';
import { launch } from '../src/ops/launch.js';
import { matmulPlanFor, runMatmul } from '../src/ops/matmul.js';
import type { MatmulOptions, MatmulPlan } from '../src/ops/matmul-plan.js';
import { Tensor as TensorClass } from '../src/tensor.js';
import { ENGINES, loadPeers, measurePeer, type Engine } from './peers/index.js';

const quick = process.argv.includes('--quick');
const sweep = process.argv.includes('--sweep');
const peersAt = process.argv.indexOf('--peers');
const peerEngines: Engine[] = peersAt < 0 ? [] : ENGINES.includes(process.argv[peersAt + 1] as Engine) ? [process.argv[peersAt + 1] as Engine] : [...ENGINES];

/** Sides and timed iterations: 2048³ takes about half a second on lavapipe. */
const SIZES: [side: number, iterations: number][] = [[256, 30], [512, 15], [1024, 9], [2048, 5]];
const plain = { transposeA: false, transposeB: false };

interface Row {
  name: string;
  shape: number[];
  ms: number;
  gflops: number;
  kernel: string;
}

async function median(name: string, fn: () => Promise<void>, iterations: number): Promise<number> {
  const bench = new Bench({ iterations: quick ? Math.min(3, iterations) : iterations, time: 0, warmupIterations: 1, warmupTime: 0, throws: true });
  bench.add(name, fn);
  await bench.run();
  const result = bench.tasks[0]!.result;
  if (result.state !== 'completed') throw new Error(`${name}: ${result.state}`);
  return result.latency.p50;
}

/** GFLOP/s of kernels/peak.wgsl: every invocation chains 64·iters flops through registers. */
async function fmaPeak(): Promise<number> {
  const invocations = 256 * 128;
  const iters = 2048;
  const out = TensorClass.empty([invocations]);
  const ms = await median('fma peak', async () => {
    launch('peak', 'fma_peak', { out }, { iters, seed: 1 }, [invocations / 256]);
    await backend().sync();
  }, 10);
  out.dispose();
  return (64 * iters * invocations) / ms / 1e6;
}

function describe(plan: MatmulPlan): string {
  return plan.path === 'simd'
    ? `simd ${8 * plan.overrides.RA}x${32 * plan.overrides.CB}`
    : `tiled ${4 * plan.overrides.WG_Y}x${4 * plan.overrides.WG_X}`;
}

/** Times C = A·B; the operands are made outside the timed region and the queue is awaited inside it. */
async function matmulRow(name: string, n: number, iterations: number, options: MatmulOptions = {}): Promise<Row> {
  const a = randn([n, n]).keep();
  const b = randn([n, n]).keep();
  const ms = await median(name, async () => {
    runMatmul(a, b, plain, options).dispose();
    await backend().sync();
  }, iterations);
  for (const t of [a, b] as Tensor[]) t.dispose();
  return { name, shape: [n, n, n], ms, gflops: (2 * n ** 3) / ms / 1e6, kernel: describe(matmulPlanFor([n, n], [n, n], plain, options)) };
}

const gpu = await init({ announce: false });
process.stderr.write(`matmul bench on ${gpu.adapterName}${quick ? ' (quick)' : ''}\n`);
const peakBefore = await fmaPeak();
const rows: Row[] = [];
for (const [n, iterations] of SIZES) {
  const row = await matmulRow(`matmul ${n}`, n, iterations);
  rows.push(row);
  process.stderr.write(`  ${row.name}: ${row.ms.toFixed(1)} ms (${row.kernel})\n`);
}
if (sweep) {
  const choices: MatmulOptions[] = [{ path: 'tiled' }];
  for (const RA of [1, 2, 3, 4]) for (const CB of [1, 2]) choices.push({ path: 'simd', tile: { RA, CB } });
  for (const options of choices) {
    const kernel = describe(matmulPlanFor([1024, 1024], [1024, 1024], plain, options));
    const row = await matmulRow(`matmul 1024 [${kernel}]`, 1024, 5, options);
    rows.push(row);
    process.stderr.write(`  ${row.name}: ${row.ms.toFixed(1)} ms\n`);
  }
}
const peakAfter = await fmaPeak();
const peak = (peakBefore + peakAfter) / 2;

const peers = new Map<string, number>();
if (peerEngines.length > 0) {
  const loaded = await loadPeers();
  if (!loaded) process.stderr.write('--peers: the peer engines are not installed (npm --prefix bench/peers ci)\n');
  for (const engine of loaded ? peerEngines : []) {
    const adapter = await loaded!.startEngine(engine);
    for (const workload of loaded!.workloads.filter((w) => rows.some((r) => r.name === w.name))) {
      const result = await measurePeer(engine, workload, adapter, quick ? 1 : undefined);
      if (result.ms !== null) peers.set(`${engine} ${workload.name}`, result.ms);
      process.stderr.write(`  ${engine} ${workload.name}: ${result.ms === null ? result.unsupported ?? result.error : `${result.ms.toFixed(1)} ms`}\n`);
    }
  }
}

console.log(`\nadapter: ${gpu.adapterName}`);
console.log(`FMA peak: ${peak.toFixed(1)} GFLOP/s (before ${peakBefore.toFixed(1)}, after ${peakAfter.toFixed(1)})\n`);
const header = ['workload', 'kernel', 'median ms', 'GFLOP/s', 'of peak', ...peerEngines.map((e) => `${e} ms (×)`)];
const table = rows.map((r) => [
  r.name,
  r.kernel,
  r.ms.toFixed(1),
  r.gflops.toFixed(2),
  `${((100 * r.gflops) / peak).toFixed(1)} %`,
  ...peerEngines.map((e) => {
    const ms = peers.get(`${e} ${r.name}`);
    return ms === undefined ? '' : `${ms.toFixed(0)} (${(ms / r.ms).toFixed(1)}×)`;
  }),
]);
const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
for (const line of [header, ...table]) console.log(line.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '));
console.log('');
for (const r of rows) {
  const line = { name: r.name, shape: r.shape, ms: r.ms, gflops: r.gflops, peakFraction: r.gflops / peak, kernel: r.kernel, adapter: gpu.adapterName };
  console.log(JSON.stringify(line));
}
shutdown();
process.exit(0);
