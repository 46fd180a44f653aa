// Convolution and batchnorm speed on ResNet-18's CIFAR layer shapes at batch 32 (3×3, stride 1,
// pad 1, C → C): conv2d forward, input gradient and weight gradient, and training-mode
// BatchNorm2d forward + backward, in ms, GFLOP/s and as a fraction of the device's FMA peak
// (kernels/peak.wgsl, measured in the same run, before and after).
//   npm run bench:conv [-- --quick] [-- --peers [tfjs|jax]]
// --quick: one iteration each. --peers: the same workloads on TensorFlow.js / jax-js in this
// process (needs `npm --prefix bench/peers ci`), with peer ms / dawnet ms.
import { Bench } from 'tinybench';
import { backend, F, init, ones, randn, scope, shutdown, zeros, type Tensor } from '../src/index.js';
import { launch } from '../src/ops/launch.js';
import { conv2dBackwardInput, conv2dBackwardWeight, conv2dForward, conv2dGeometry } from '../src/ops/conv.js';
import { Tensor as TensorClass } from '../src/tensor.js';
import { ENGINES, loadPeers, measurePeer, type Engine } from './peers/index.js';

const quick = process.argv.includes('--quick');
const peersAt = process.argv.indexOf('--peers');
const peerEngines: Engine[] = peersAt < 0 ? [] : ENGINES.includes(process.argv[peersAt + 1] as Engine) ? [process.argv[peersAt + 1] as Engine] : [...ENGINES];

const BATCH = 32;
const LAYERS: [channels: number, side: number][] = [[64, 32], [128, 16], [256, 8], [512, 4]];

interface Row {
  name: string;
  ms: number;
  gflops?: number;
}

async function measure(name: string, fn: () => Promise<void>, iterations: number): Promise<number> {
  const bench = new Bench({ iterations: quick ? 1 : iterations, time: 0, warmupIterations: 1, warmupTime: 0, throws: true });
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
  const ms = await measure('fma peak', async () => {
    launch('peak', 'fma_peak', { out }, { iters, seed: 1 }, [invocations / 256]);
    await backend().sync();
  }, 10);
  out.dispose();
  return (64 * iters * invocations) / ms / 1e6;
}

async function convRows(channels: number, side: number): Promise<Row[]> {
  const shape = [BATCH, channels, side, side];
  const x = randn(shape).keep();
  const dy = randn(shape).keep();
  const w = randn([channels, channels, 3, 3]).keep();
  const g = conv2dGeometry(x.shape, w.shape, null, { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 });
  const flops = 2 * BATCH * channels * side * side * channels * 9;
  const size = `${BATCH}x${channels}x${side}x${side}`;
  const passes: [string, () => Tensor][] = [
    ['forward', () => conv2dForward(x, w, null, g)],
    ['backward-input', () => conv2dBackwardInput(dy, w, g)],
    ['backward-weight', () => conv2dBackwardWeight(x, dy, g)],
  ];
  const rows: Row[] = [];
  for (const [pass, run] of passes) {
    const name = `conv2d ${pass} ${size}`;
    const ms = await measure(name, async () => {
      run().dispose();
      await backend().sync();
    }, 5);
    rows.push({ name, ms, gflops: flops / ms / 1e6 });
  }
  for (const t of [x, dy, w]) t.dispose();
  return rows;
}

async function batchNormRow(): Promise<Row> {
  const shape = [BATCH, 64, 32, 32];
  const x = randn(shape).keep().requiresGrad_();
  const dy = randn(shape).keep();
  const gamma = ones([64]).keep().requiresGrad_();
  const beta = zeros([64]).keep().requiresGrad_();
  const runningMean = zeros([64]).keep();
  const runningVar = ones([64]).keep();
  const name = 'batchnorm train fwd+bwd 32x64x32x32';
  const ms = await measure(name, async () => {
    scope(() => F.batchNorm(x, runningMean, runningVar, gamma, beta, true).backward(dy));
    await backend().sync();
    for (const t of [x, gamma, beta]) {
      t.grad?.dispose();
      t.grad = null;
    }
  }, 20);
  for (const t of [x, dy, gamma, beta, runningMean, runningVar]) t.dispose();
  return { name, ms };
}

const gpu = await init({ announce: false });
process.stderr.write(`conv bench on ${gpu.adapterName}${quick ? ' (quick)' : ''}\n`);
const peakBefore = await fmaPeak();
const rows: Row[] = [];
for (const [channels, side] of LAYERS) {
  for (const row of await convRows(channels, side)) {
    rows.push(row);
    process.stderr.write(`  ${row.name}: ${row.ms.toFixed(1)} ms\n`);
  }
}
rows.push(await batchNormRow());
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
const header = ['workload', 'ms', 'GFLOP/s', 'of peak', ...peerEngines.map((e) => `${e} ms (×)`)];
const table = rows.map((r) => [
  r.name,
  r.ms.toFixed(1),
  r.gflops ? r.gflops.toFixed(2) : '',
  r.gflops ? `${((100 * r.gflops) / peak).toFixed(1)} %` : '',
  ...peerEngines.map((e) => {
    const ms = peers.get(`${e} ${r.name}`);
    return ms === undefined ? '' : `${ms.toFixed(0)} (${(ms / r.ms).toFixed(1)}×)`;
  }),
]);
const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
for (const line of [header, ...table]) console.log(line.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '));
shutdown();
process.exit(0);
