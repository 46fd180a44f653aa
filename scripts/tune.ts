// Times each candidate kernel and tile for the bench's matmul and convolution shapes on the open
// adapter and stores the winners in its tuning table (src/gpu/tuning.ts), which the planners
// then follow. The untuned choice is always a candidate, and another replaces it only when 5 %
// faster, so tuning never makes a shape slower than the planners' own heuristics.
//   npm run tune [-- --quick] [-- --only <text>]
import { parseArgs } from 'node:util';
import { backend, init, randn, shutdown, type Tensor } from '../src/index.js';
import { saveTuning, convKey, matmulKey, type GemmTile, type TunedChoice } from '../src/gpu/tuning.js';
import { conv2dBackwardInput, conv2dBackwardWeight, conv2dForward, conv2dGeometry, convKernelFor, type ConvGeometry } from '../src/ops/conv.js';
import type { ConvOptions, ConvPass } from '../src/ops/conv-plan.js';
import { matmulPlanFor, runMatmul } from '../src/ops/matmul.js';
import { gemmLabel, type MatmulOptions } from '../src/ops/matmul-plan.js';

const HELP = `npm run tune [-- options]: time the kernels for the bench's shapes on this adapter and keep the fastest.

  --quick        two matmul sizes, two convolution layers, one GEMM tile, three timed runs each (a smoke test)
  --only <text>  only the shapes whose key contains <text>

Writes ~/.cache/dawnet/tuning/<adapter>.json (XDG_CACHE_HOME or DAWNET_TUNING_DIR moves it).`;

const TILES: GemmTile[] = [
  { WG_X: 16, WG_Y: 16, TM: 4, TN4: 1, BK: 16 },
  { WG_X: 16, WG_Y: 16, TM: 8, TN4: 2, BK: 8 },
  { WG_X: 16, WG_Y: 16, TM: 8, TN4: 1, BK: 16 },
  { WG_X: 8, WG_Y: 16, TM: 4, TN4: 2, BK: 16 },
];
/** A challenger must beat the untuned choice by this much to replace it (timing noise). */
const MARGIN = 0.95;

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, only: { type: 'string' }, help: { type: 'boolean', default: false } } });
if (values.help) {
  console.log(HELP);
  process.exit(0);
}

interface Candidate {
  label: string;
  choice: { path?: string; gemmTile?: GemmTile };
}

async function median(run: () => Tensor, iterations: number): Promise<number> {
  run().dispose();
  await backend().sync();
  const times: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const start = performance.now();
    run().dispose();
    await backend().sync();
    times.push(performance.now() - start);
  }
  return times.sort((a, b) => a - b)[times.length >> 1]!;
}

/** Times the untuned choice (`untuned` names its path) and each other candidate; returns the winner, or null when the untuned choice stays. */
async function tune(key: string, untuned: string, all: Candidate[], run: (choice: Candidate['choice']) => Tensor, iterations: number): Promise<TunedChoice | null> {
  const candidates = all.filter((c) => c.label !== untuned);
  const baselineMs = await median(() => run({}), iterations);
  let best: (Candidate & { ms: number }) | null = null;
  for (const c of candidates) {
    const ms = await median(() => run(c.choice), iterations);
    if (!best || ms < best.ms) best = { ...c, ms };
  }
  // A challenger is timed again against the untuned choice, so one noisy run cannot install it.
  let won = best !== null && best.ms < MARGIN * baselineMs;
  if (won) won = (await median(() => run(best!.choice), iterations)) < MARGIN * (await median(() => run({}), iterations));
  console.log(`${key}: untuned (${untuned}) ${baselineMs.toFixed(2)} ms; best ${best?.label} ${best?.ms.toFixed(2)} ms → ${won ? best!.label : 'untuned'}`);
  return won ? { path: best!.choice.path!, gemmTile: best!.choice.gemmTile, ms: best!.ms, baselineMs } : null;
}

const gpu = await init({ announce: false });
const software = gpu.caps.software;
// The backend's own table: a shape's entry is dropped before timing it, so that `untuned` is.
const table = gpu.tuning;
const iterations = values.quick ? 3 : 7;
const wanted = (key: string): boolean => !values.only || key.includes(values.only);
const gemm = (extra: string[] = []): Candidate[] => [
  ...extra.map((path) => ({ label: path, choice: { path } })),
  ...(values.quick ? TILES.slice(0, 1) : TILES).map((t) => ({ label: `gemm ${gemmLabel(t)}`, choice: { path: 'gemm', gemmTile: t } })),
];
console.log(`tuning on ${gpu.adapterName}${values.quick ? ' (quick)' : ''}`);

const sides = values.quick ? [256, 512] : software ? [512, 1024, 2048] : [512, 1024, 2048, 4096];
const plain = { transposeA: false, transposeB: false };
for (const n of sides) {
  const key = matmulKey(n, n, n, 1, false, false);
  if (!wanted(key)) continue;
  delete table.entries[key];
  const [a, b] = [randn([n, n]).keep(), randn([n, n]).keep()];
  const untuned = matmulPlanFor([n, n], [n, n], plain).path;
  const won = await tune(key, untuned, gemm(software ? ['tiled', 'simd'] : ['tiled']), (choice) => runMatmul(a, b, plain, choice as MatmulOptions), iterations);
  if (won) table.entries[key] = won;
  a.dispose();
  b.dispose();
}

// ResNet-18's CIFAR 3×3 layers at the bench's batch (32 here, 128 on a GPU as the issue's target).
const batch = software ? 32 : 128;
const layers: [number, number][] = values.quick ? [[64, 32], [256, 8]] : [[64, 32], [128, 16], [256, 8], [512, 4]];
for (const [c, side] of layers) {
  const xs = [batch, c, side, side];
  const g: ConvGeometry = conv2dGeometry(xs, [c, c, 3, 3], null, { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 });
  const [x, dy, w] = [randn(xs).keep(), randn(xs).keep(), randn([c, c, 3, 3]).keep()];
  const passes: [ConvPass, (o: ConvOptions) => Tensor][] = [
    ['forward', (o) => conv2dForward(x, w, null, g, o)],
    ['backward_input', (o) => conv2dBackwardInput(dy, w, g, null, o)],
    ['backward_weight', (o) => conv2dBackwardWeight(x, dy, g, o)],
  ];
  for (const [pass, run] of passes) {
    const key = convKey(pass, g);
    if (!wanted(key)) continue;
    delete table.entries[key];
    const untuned = convKernelFor(pass, g).split(' ')[0]!;
    const won = await tune(key, untuned, gemm(software ? ['direct', 'simd'] : ['direct']), (choice) => run(choice as ConvOptions), iterations);
    if (won) table.entries[key] = won;
  }
  for (const t of [x, dy, w]) t.dispose();
}

console.log(`wrote ${saveTuning(table)} (${Object.keys(table.entries).length} tuned shapes)`);
shutdown();
process.exit(0);
