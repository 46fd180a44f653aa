// Data pipeline throughput: the DataLoader in images/s from a packed cache (and, alone or with
// --full, from raw PNG and JPEG folders and at 96 px; host side alone, and with the upload and GPU
// conversion), the packing (decoding) rate, and the augmentation kernels, RotNet's rotation batch
// among them, in GB/s. Synthetic RGB image folders are made under os.tmpdir() and removed after.
//   npm run bench:data [-- --quick]   (npm run bench: every family, the data family without its long tail)
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { backend, sync, tensor, type Tensor } from '../src/index.js';
import { Generator } from '../src/random.js';
import { Tensor as TensorClass } from '../src/tensor.js';
import { Augment, type AugmentOptions } from '../src/data/augment.js';
import type { Dataset } from '../src/data/dataset.js';
import { builtinRoot } from '../src/data/builtin.js';
import { imageFolder } from '../src/data/image-folder.js';
import { DataLoader } from '../src/data/loader.js';
import { openPack, writePack } from '../src/data/pack.js';
import { DecodePool, defaultWorkerCount } from '../src/data/workers.js';
import { runIfMain, type Family, type Session } from './harness.js';

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

function makeFolders(dir: string, size: number, count: number, withJpeg: boolean): { png: string; jpeg: string } {
  const g = new Generator(size);
  const png = join(dir, `png-${size}`);
  const jpg = join(dir, `jpeg-${size}`);
  for (let i = 0; i < count; i++) {
    const cls = `class${i % CLASSES}`;
    mkdirSync(join(png, cls), { recursive: true });
    if (withJpeg) mkdirSync(join(jpg, cls), { recursive: true });
    const rgba = syntheticRgba(size, g);
    const image = new PNG({ width: size, height: size, colorType: 2, inputColorType: 6 });
    image.data = rgba;
    writeFileSync(join(png, cls, `${i}.png`), PNG.sync.write(image, { colorType: 2, inputColorType: 6 }));
    if (withJpeg) writeFileSync(join(jpg, cls, `${i}.jpg`), jpeg.encode({ width: size, height: size, data: rgba }, 90).data);
  }
  return { png, jpeg: jpg };
}

async function loaderEpoch(loader: DataLoader, gpu: boolean): Promise<void> {
  if (!gpu) {
    for await (const host of loader.hostBatches()) void host;
    return;
  }
  for await (const batch of loader) batch.dispose();
  await sync();
}

/** Both sides of a loader: host uint8 batches alone, and with the upload and GPU conversion. */
async function loaderRows(session: Session, label: string, dataset: Dataset, iterations: number): Promise<void> {
  const side = dataset.imageSize;
  for (const gpu of [false, true]) {
    const loader = new DataLoader(dataset, { batchSize: BATCH, shuffle: true, generator: new Generator(1), prefetch: 4 });
    const spec = { name: `loader ${label} ${gpu ? 'to GPU float32' : 'host uint8'}`, shape: `${dataset.length} x ${dataset.channels}x${side}x${side}, batch ${BATCH}`, images: dataset.length };
    await session.host(spec, () => loaderEpoch(loader, gpu), iterations);
  }
}

async function benchLoaders(session: Session, dir: string, size: number, count: number, pool: DecodePool): Promise<void> {
  const { full } = session.options;
  const folders = makeFolders(dir, size, count, full);
  const sources: [string, Dataset][] = [];
  for (const [kind, root] of full ? [['png', folders.png], ['jpeg', folders.jpeg]] as const : [['png', folders.png]] as const) {
    const files = imageFolder(root, { imageSize: size, channels: 3, pool });
    sources.push([`raw ${kind.toUpperCase()} folder`, files]);
    const out = join(dir, `pack-${kind}-${size}`);
    await session.once({ name: `pack-data ${kind.toUpperCase()} ${size}px`, shape: `${count} x 3x${size}x${size}`, images: count }, () => writePack(files, out, {}));
    if (kind === 'png') sources.unshift(['packed cache', openPack(out)]);
  }
  for (const [label, dataset] of full ? sources : sources.slice(0, 1)) {
    await loaderRows(session, `${label} ${size}px`, dataset, label === 'packed cache' ? 10 : 3);
  }
}

/** The built-in Fashion-MNIST subset (grayscale) packed at 32 px: the data a fresh clone trains on. */
async function benchBuiltin(session: Session, dir: string, pool: DecodePool): Promise<void> {
  const out = join(dir, 'pack-builtin-32');
  await writePack(imageFolder(builtinRoot('train'), { imageSize: 32, channels: 1, pool }), out, {});
  await loaderRows(session, 'packed cache 32px grayscale (built-in)', openPack(out), 10);
}

async function benchKernels(session: Session, size: number): Promise<void> {
  const n = BATCH;
  const pixels = n * 3 * size * size;
  const g = new Generator(5);
  const bytes = Uint8Array.from({ length: Math.ceil(pixels / 4) * 4 }, () => g.integer(256));
  const words = TensorClass.empty([bytes.length / 4], 'int32').keep();
  backend().write(words.view, bytes);
  const floats = tensor(Float32Array.from(bytes.subarray(0, pixels), (b) => b / 255), [n, 3, size, size]).keep();
  const normalize = { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };
  const cases: [string, AugmentOptions, 'u8' | 'f32'][] = [
    ['uint8 → float32 conversion', {}, 'u8'],
    ['rotation batch x4 (float32 in)', { rotation: 'all' }, 'f32'],
    ['rotation batch x4 fused with the upload', { rotation: 'all' }, 'u8'],
    ['random crop (pad 4) + hflip', { crop: { size, padding: 4 }, hflip: 0.5 }, 'u8'],
    ['random-resized-crop (0.08–1) + hflip', { resizedCrop: { size, scale: [0.08, 1] }, hflip: 0.5 }, 'u8'],
    ['gamma (0.7–1.5) + normalize', { gamma: [0.7, 1.5], normalize }, 'u8'],
    ['crop + flip + gamma + normalize + rotation x4', { crop: { size, padding: 4 }, hflip: 0.5, gamma: [0.7, 1.5], normalize, rotation: 'all' }, 'u8'],
  ];
  for (const [label, options, kind] of cases) {
    const aug = new Augment(options);
    const layout = aug.layout(3, size, size);
    const samples = aug.draw(n, size, size, g);
    // Read the batch once (uint8 or float32), write every float32 copy.
    const moved = pixels * (kind === 'u8' ? 1 : 4) + 4 * pixels * aug.copies;
    const spec = { name: `augment ${label} ${size}px`, shape: `${n}x3x${size}x${size} ${kind === 'u8' ? 'uint8' : 'float32'} → ${aug.copies * n}x3x${size}x${size}`, bytes: moved };
    await session.gpu(spec, () => {
      const r = aug.run(kind === 'u8' ? words : floats, kind, layout, samples);
      r.images.dispose();
      r.rotationLabels?.dispose();
    }, size > 32 ? 10 : 40);
  }
  for (const t of [words, floats] as Tensor[]) t.dispose();
}

export const dataBench: Family = {
  name: 'data',
  async run(session) {
    const { quick, full } = session.options;
    const dir = mkdtempSync(join(tmpdir(), 'dawnet-data-bench-'));
    const pool = new DecodePool(defaultWorkerCount());
    process.stderr.write(`  data: ${defaultWorkerCount()} decoding thread(s), batch ${BATCH}${full ? '' : ' (the long tail: npm run bench:data or --full)'}\n`);
    try {
      await benchBuiltin(session, dir, pool);
      await benchLoaders(session, dir, 32, quick ? 1024 : 4096, pool);
      if (full) await benchLoaders(session, dir, 96, quick ? 256 : 1024, pool);
      await benchKernels(session, 32);
      if (full) await benchKernels(session, 96);
    } finally {
      await pool.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

await runIfMain(import.meta.url, dataBench);
