// Data pipeline throughput: the DataLoader in images/s from a packed cache and from raw PNG and
// JPEG folders at 32 and 96 px (host side alone, and with the upload and GPU conversion), the
// packing (decoding) rate, and the augmentation kernels in GB/s beside a plain float32 copy on
// the same device. Synthetic RGB image folders are made under os.tmpdir() and removed after.
//   npm run bench:data [-- --quick]
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { Bench } from 'tinybench';
import { backend, F, init, shutdown, sync, tensor, type Tensor } from '../src/index.js';
import { Generator } from '../src/random.js';
import { Tensor as TensorClass } from '../src/tensor.js';
import { Augment, type AugmentOptions } from '../src/data/augment.js';
import type { Dataset } from '../src/data/dataset.js';
import { builtinRoot } from '../src/data/builtin.js';
import { imageFolder } from '../src/data/image-folder.js';
import { DataLoader } from '../src/data/loader.js';
import { openPack, writePack } from '../src/data/pack.js';
import { DecodePool, defaultWorkerCount } from '../src/data/workers.js';

const quick = process.argv.includes('--quick');
const BATCH = 256;
const CLASSES = 10;

/** Smooth gradients with noise: compresses like a photo, not like noise or a flat colour. */
function syntheticRgba(size: number, g: Generator): Buffer {
  const data = Buffer.alloc(size * size * 4);
  const [a, b, c] = [g.uniform() * 6, g.uniform() * 6, g.integer(256)];
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const p = 4 * (y * size + x);
      const base = (a * x + b * y) * (32 / size) + c;
      for (let ch = 0; ch < 3; ch++) data[p + ch] = (base + ch * 60 + g.integer(24)) & 255;
      data[p + 3] = 255;
    }
  }
  return data;
}

function makeFolders(dir: string, size: number, count: number): { png: string; jpeg: string } {
  const g = new Generator(size);
  const png = join(dir, `png-${size}`);
  const jpg = join(dir, `jpeg-${size}`);
  for (let i = 0; i < count; i++) {
    const cls = `class${i % CLASSES}`;
    mkdirSync(join(png, cls), { recursive: true });
    mkdirSync(join(jpg, cls), { recursive: true });
    const rgba = syntheticRgba(size, g);
    const image = new PNG({ width: size, height: size, colorType: 2, inputColorType: 6 });
    image.data = rgba;
    writeFileSync(join(png, cls, `${i}.png`), PNG.sync.write(image, { colorType: 2, inputColorType: 6 }));
    writeFileSync(join(jpg, cls, `${i}.jpg`), jpeg.encode({ width: size, height: size, data: rgba }, 90).data);
  }
  return { png, jpeg: jpg };
}

interface Row {
  name: string;
  ms: number;
  figure: string;
}
const rows: Row[] = [];

async function measure(name: string, fn: () => Promise<void>, figure: (ms: number) => string, iterations: number): Promise<number> {
  const bench = new Bench({ iterations, time: 0, warmupIterations: 1, warmupTime: 0, throws: true });
  bench.add(name, fn);
  await bench.run();
  const result = bench.tasks[0]!.result;
  if (result.state !== 'completed') throw new Error(`${name}: ${result.state}`);
  rows.push({ name, ms: result.latency.p50, figure: figure(result.latency.p50) });
  process.stderr.write(`  ${name}: ${figure(result.latency.p50)}\n`);
  return result.latency.p50;
}

const perSecond = (images: number) => (ms: number) => `${Math.round((images / ms) * 1000).toLocaleString('en-US')} images/s`;
const gbPerSecond = (bytes: number) => (ms: number) => `${(bytes / ms / 1e6).toFixed(2)} GB/s`;

async function loaderEpoch(loader: DataLoader, gpu: boolean): Promise<void> {
  if (!gpu) {
    for await (const host of loader.hostBatches()) void host;
    return;
  }
  for await (const batch of loader) batch.dispose();
  await sync();
}

async function benchLoaders(dir: string, size: number, count: number, pool: DecodePool): Promise<void> {
  const folders = makeFolders(dir, size, count);
  const sources: [string, Dataset][] = [];
  for (const [kind, root] of [['png', folders.png], ['jpeg', folders.jpeg]] as const) {
    const files = imageFolder(root, { imageSize: size, channels: 3, pool });
    sources.push([`raw ${kind.toUpperCase()} folder`, files]);
    const out = join(dir, `pack-${kind}-${size}`);
    const started = performance.now();
    await writePack(files, out, {});
    const ms = performance.now() - started;
    rows.push({ name: `pack-data ${kind.toUpperCase()} ${size}px`, ms, figure: perSecond(count)(ms) });
    process.stderr.write(`  pack-data ${kind} ${size}px: ${perSecond(count)(ms)}\n`);
    if (kind === 'png') sources.unshift(['packed cache', openPack(out)]);
  }
  for (const [label, dataset] of sources) {
    const iterations = label === 'packed cache' ? (quick ? 3 : 10) : quick ? 1 : 3;
    for (const gpu of [false, true]) {
      const loader = new DataLoader(dataset, { batchSize: BATCH, shuffle: true, generator: new Generator(1), prefetch: 4 });
      await measure(`loader ${label} ${size}px ${gpu ? 'to GPU float32' : 'host uint8'}`, () => loaderEpoch(loader, gpu), perSecond(dataset.length), iterations);
    }
  }
}

/** The built-in Fashion-MNIST subset (grayscale) packed at 32 px: the data a fresh clone trains on. */
async function benchBuiltin(dir: string, pool: DecodePool): Promise<void> {
  const out = join(dir, 'pack-builtin-32');
  await writePack(imageFolder(builtinRoot('train'), { imageSize: 32, channels: 1, pool }), out, {});
  const dataset = openPack(out);
  for (const gpu of [false, true]) {
    const loader = new DataLoader(dataset, { batchSize: BATCH, shuffle: true, generator: new Generator(1), prefetch: 4 });
    await measure(`loader packed cache 32px grayscale (built-in) ${gpu ? 'to GPU float32' : 'host uint8'}`, () => loaderEpoch(loader, gpu), perSecond(dataset.length), quick ? 3 : 10);
  }
}

async function benchKernels(size: number): Promise<void> {
  const n = BATCH;
  const pixels = n * 3 * size * size;
  const g = new Generator(5);
  const bytes = Uint8Array.from({ length: Math.ceil(pixels / 4) * 4 }, () => g.integer(256));
  const words = TensorClass.empty([bytes.length / 4], 'int32').keep();
  backend().write(words.view, bytes);
  const floats = tensor(Float32Array.from(bytes.subarray(0, pixels), (b) => b / 255), [n, 3, size, size]).keep();
  const iterations = quick ? 10 : 40;
  const copyMs = await measure(`copy float32 (F.copy, the reference) ${size}px`, async () => {
    F.copy(floats).dispose();
    await sync();
  }, gbPerSecond(8 * pixels), iterations);
  const copyRate = (8 * pixels) / copyMs;
  const cases: [string, AugmentOptions, 'u8' | 'f32'][] = [
    ['uint8 → float32 conversion', {}, 'u8'],
    ['rotation batch ×4 (float32 in)', { rotation: 'all' }, 'f32'],
    ['rotation batch ×4 fused with the upload', { rotation: 'all' }, 'u8'],
    ['random crop (pad 4) + hflip', { crop: { size, padding: 4 }, hflip: 0.5 }, 'u8'],
    ['random-resized-crop (0.08–1) + hflip', { resizedCrop: { size, scale: [0.08, 1] }, hflip: 0.5 }, 'u8'],
    ['gamma (0.7–1.5) + normalize', { gamma: [0.7, 1.5], normalize: { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] } }, 'u8'],
    ['crop + flip + gamma + normalize + rotation ×4', { crop: { size, padding: 4 }, hflip: 0.5, gamma: [0.7, 1.5], normalize: { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] }, rotation: 'all' }, 'u8'],
  ];
  for (const [label, options, kind] of cases) {
    const aug = new Augment(options);
    const layout = aug.layout(3, size, size);
    const samples = aug.draw(n, size, size, g);
    const moved = pixels * (kind === 'u8' ? 1 : 4) + 4 * pixels * aug.copies;
    await measure(`augment ${label} ${size}px`, async () => {
      const r = aug.run(kind === 'u8' ? words : floats, kind, layout, samples);
      r.images.dispose();
      r.rotationLabels?.dispose();
      await sync();
    }, (ms) => `${gbPerSecond(moved)(ms)} (${Math.round((100 * moved) / ms / copyRate)}% of the copy's rate)`, iterations);
  }
  for (const t of [words, floats] as Tensor[]) t.dispose();
}

async function main(): Promise<void> {
  const gpu = await init();
  const dir = mkdtempSync(join(tmpdir(), 'dawnet-data-bench-'));
  const pool = new DecodePool(defaultWorkerCount());
  process.stderr.write(`adapter: ${gpu.adapterName}; ${defaultWorkerCount()} decoding thread(s); batch ${BATCH}\n`);
  try {
    await benchBuiltin(dir, pool);
    await benchLoaders(dir, 32, quick ? 1024 : 4096, pool);
    await benchLoaders(dir, 96, quick ? 256 : 1024, pool);
    await benchKernels(32);
    await benchKernels(96);
  } finally {
    await pool.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const width = Math.max(...rows.map((r) => r.name.length));
  console.log(`\ndata pipeline on ${gpu.adapterName} (${defaultWorkerCount()} decoding thread(s), batch ${BATCH}; median of the runs)\n`);
  for (const r of rows) console.log(`${r.name.padEnd(width)}  ${r.ms.toFixed(2).padStart(9)} ms  ${r.figure}`);
  shutdown();
}

await main();
