// Times each candidate kernel and tile for the bench's shapes on the open adapter and stores the
// winners in its tuning table (src/gpu/tuning.ts), which the planners then follow: the bench's
// matmul sizes, ResNet-18's CIFAR layers at the conv bench's batch, and every convolution and
// linear layer of ResNet-18/50, NIN, AlexNet and DCGAN at the train bench's batch (each layer's
// three passes). The untuned choice is always a candidate, and another replaces it only when
// 5 % faster (src/gpu/tuner.ts), so tuning never makes a shape slower than the heuristics.
//   npm run tune [-- --quick] [-- --only <text>] [-- --models resnet50,dcgan]
import { parseArgs } from 'node:util';
import { backend, init, noGrad, randn, scope, shutdown, type Tensor } from '../src/index.js';
import { saveTuning, convKey, matmulKey, type GemmTile } from '../src/gpu/tuning.js';
import { candidates, TUNER_TILES, tuneShape } from '../src/gpu/tuner.js';
import { conv2dBackwardInput, conv2dBackwardWeight, conv2dForward, conv2dGeometry, convKernelFor, convTranspose2dGeometry, type ConvGeometry } from '../src/ops/conv.js';
import type { ConvOptions, ConvPass } from '../src/ops/conv-plan.js';
import { matmulPlanFor, runMatmul, type MatmulAttrs } from '../src/ops/matmul.js';
import { gemmLabel, type MatmulOptions } from '../src/ops/matmul-plan.js';
import { Conv2d, ConvTranspose2d } from '../src/nn/conv.js';
import { Linear } from '../src/nn/linear.js';
import type { Module } from '../src/nn/module.js';
import { AlexNet, DcganDiscriminator, DcganGenerator, NIN, resnet18, resnet50 } from '../models/index.js';

const MODELS = ['resnet18', 'resnet50', 'nin', 'alexnet', 'dcgan'] as const;

const HELP = `npm run tune [-- options]: time the kernels for the bench's shapes on this adapter and keep the fastest.

  --quick          two matmul sizes, two bench layers at batch 8, two layers of each model at batch 2, one GEMM tile,
                   three timed runs (a smoke test)
  --only <text>    only the shapes whose key contains <text>
  --models <list>  the models whose layers are tuned (default: ${MODELS.join(',')}; "none" for the bench's matmul and conv shapes only)

Writes ~/.cache/dawnet/tuning/<adapter>.json (XDG_CACHE_HOME or DAWNET_TUNING_DIR moves it).`;

const { values } = parseArgs({
  options: { quick: { type: 'boolean', default: false }, only: { type: 'string' }, models: { type: 'string' }, help: { type: 'boolean', default: false } },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}
const models = values.models === 'none' ? [] : (values.models?.split(',') ?? [...MODELS]);
const unknown = models.filter((m) => !(MODELS as readonly string[]).includes(m));
if (unknown.length > 0) {
  console.error(`tune: unknown model '${unknown[0]}' in --models (known: ${MODELS.join(', ')}, or none)`);
  process.exit(2);
}

const gpu = await init({ announce: false });
const software = gpu.caps.software;
// The backend's own table: a shape's entry is dropped before timing it, so that `untuned` is.
const table = gpu.tuning;
const iterations = values.quick ? 3 : 7;
const tiles: GemmTile[] = values.quick ? TUNER_TILES.slice(0, 1) : TUNER_TILES;
const log = (line: string): void => console.log(line);
const done = new Set<string>();
const wanted = (key: string): boolean => !done.has(key) && (!values.only || key.includes(values.only));
console.log(`tuning on ${gpu.adapterName}${values.quick ? ' (quick)' : ''}`);

async function tuneMatmul(aShape: number[], bShape: number[], attrs: MatmulAttrs, key: string): Promise<void> {
  if (!wanted(key)) return;
  done.add(key);
  delete table.entries[key];
  const [a, b] = [randn(aShape).keep(), randn(bShape).keep()];
  const untuned = matmulPlanFor(aShape, bShape, attrs).path;
  table.entries[key] = await tuneShape(key, untuned, candidates(['tiled', 'simd'], tiles, gemmLabel), (choice) => runMatmul(a, b, attrs, choice as MatmulOptions), iterations, log);
  a.dispose();
  b.dispose();
}

async function tuneConv(g: ConvGeometry): Promise<void> {
  const [x, dy, w] = [randn([g.N, g.Ci, g.H, g.W]).keep(), randn([g.N, g.Co, g.Ho, g.Wo]).keep(), randn([g.Co, g.Ci / g.groups, g.KH, g.KW]).keep()];
  const passes: [ConvPass, (o: ConvOptions) => Tensor][] = [
    ['forward', (o) => conv2dForward(x, w, null, g, o)],
    ['backward_input', (o) => conv2dBackwardInput(dy, w, g, null, o)],
    ['backward_weight', (o) => conv2dBackwardWeight(x, dy, g, o)],
  ];
  for (const [pass, run] of passes) {
    const key = convKey(pass, g);
    if (!wanted(key)) continue;
    done.add(key);
    delete table.entries[key];
    const untuned = convKernelFor(pass, g).split(' ')[0]!;
    table.entries[key] = await tuneShape(key, untuned, candidates(['direct', 'simd'], tiles, gemmLabel), (choice) => run(choice as ConvOptions), iterations, log);
  }
  for (const t of [x, dy, w]) t.dispose();
}

/** A linear layer's three products at this batch: x·Wᵀ, dy·W and dyᵀ·x (src/ops/matmul.ts's backward). */
async function tuneLinear(batch: number, inFeatures: number, outFeatures: number): Promise<void> {
  await tuneMatmul([batch, inFeatures], [outFeatures, inFeatures], { transposeA: false, transposeB: true }, matmulKey(batch, outFeatures, inFeatures, 1, false, true));
  await tuneMatmul([batch, outFeatures], [outFeatures, inFeatures], { transposeA: false, transposeB: false }, matmulKey(batch, inFeatures, outFeatures, 1, false, false));
  await tuneMatmul([batch, outFeatures], [batch, inFeatures], { transposeA: true, transposeB: false }, matmulKey(outFeatures, inFeatures, batch, 1, true, false));
}

type Layer = { conv: ConvGeometry } | { linear: [inFeatures: number, outFeatures: number] };

/**
 * The convolution and linear layers a model meets on one image of this shape, in order and
 * without repeats, read by wrapping their forwards for one untimed pass.
 */
function layersOf(model: Module, input: number[]): Layer[] {
  const seen = new Map<string, Layer>();
  const modules = model.namedModules().map(([, m]) => m);
  const restore: (() => void)[] = [];
  for (const m of modules) {
    if (!(m instanceof Conv2d || m instanceof ConvTranspose2d || m instanceof Linear)) continue;
    const original = m.forward;
    m.forward = (x: Tensor) => {
      const layer: Layer = m instanceof Linear
        ? { linear: [m.inFeatures, m.outFeatures] }
        : { conv: m instanceof Conv2d
          ? conv2dGeometry(x.shape, m.weight.shape, null, { stride: m.stride, padding: m.padding, dilation: m.dilation, groups: m.groups })
          : convTranspose2dGeometry(x.shape, m.weight.shape, null, { stride: m.stride, padding: m.padding, dilation: [1, 1], groups: 1, outputPadding: m.outputPadding }) };
      seen.set(JSON.stringify(layer), layer);
      return original.call(m, x);
    };
    restore.push(() => (m.forward = original));
  }
  model.eval();
  scope(() => noGrad(() => model.forward(randn(input))));
  for (const r of restore) r();
  model.dispose();
  return [...seen.values()];
}

/** Each model as the train bench (and train:dcgan) builds it, with its input image. */
function modelLayers(name: (typeof MODELS)[number]): Layer[] {
  const alexSide = 4 * 4096 * 256 * 6 * 6 <= gpu.limits.maxStorageBufferBindingSize ? 224 : 128;
  switch (name) {
    case 'resnet18': return layersOf(resnet18({ stem: 'cifar', numClasses: 10 }), [1, 3, 32, 32]);
    case 'resnet50': return layersOf(resnet50({ stem: 'cifar', numClasses: 10 }), [1, 3, 32, 32]);
    case 'nin': return layersOf(new NIN({ stages: 4, numClasses: 4 }), [1, 3, 32, 32]);
    case 'alexnet': return layersOf(new AlexNet({ imageSize: alexSide, numClasses: 4 }), [1, 3, alexSide, alexSide]);
    case 'dcgan': return [...layersOf(new DcganGenerator(), [1, 100, 1, 1]), ...layersOf(new DcganDiscriminator(), [1, 3, 64, 64])];
  }
}

// The matmul bench's sizes.
const sides = values.quick ? [256, 512] : software ? [512, 1024, 2048] : [512, 1024, 2048, 4096];
const plain = { transposeA: false, transposeB: false };
for (const n of sides) await tuneMatmul([n, n], [n, n], plain, matmulKey(n, n, n, 1, false, false));

// The conv bench's ResNet-18 CIFAR 3×3 layers (batch 32 there; 128 on a GPU; 8 for --quick).
const convBatch = values.quick ? 8 : software ? 32 : 128;
const benchLayers: [number, number][] = values.quick ? [[64, 32], [256, 8]] : [[64, 32], [128, 16], [256, 8], [512, 4]];
for (const [c, side] of benchLayers) {
  await tuneConv(conv2dGeometry([convBatch, c, side, side], [c, c, 3, 3], null, { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 }));
}

// The train bench's models, every layer at its batch (8 on a CPU adapter, 128 on a GPU).
const trainBatch = values.quick ? 2 : software ? 8 : 128;
for (const name of models as (typeof MODELS)[number][]) {
  const layers = modelLayers(name);
  console.log(`${name}: ${layers.length} distinct layers${values.quick ? ' (the first two tuned)' : ''} at batch ${trainBatch}`);
  for (const layer of values.quick ? layers.slice(0, 2) : layers) {
    if ('conv' in layer) await tuneConv({ ...layer.conv, N: trainBatch });
    else await tuneLinear(trainBatch, ...layer.linear);
  }
}

console.log(`wrote ${saveTuning(table)} (${Object.keys(table.entries).length} tuned shapes)`);
shutdown();
process.exit(0);
