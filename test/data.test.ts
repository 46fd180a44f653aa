// The data pipeline on small synthetic data sets made under os.tmpdir(): decoding and resizing
// (against bytes from Pillow), the folder, IDX and CIFAR readers, bad input, the packed cache and
// its rebuilds, the DataLoader's sampling, batching and GPU upload, and the built-in data.
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { afterAll, describe, expect, it } from 'vitest';
import { memory } from '../src/index.js';
import { Generator } from '../src/random.js';
import { INV255 } from '../src/data/augment.js';
import { BUILTIN_ROOT, fashionMnist, FASHION_MNIST_DIR } from '../src/data/builtin.js';
import { cifarDataset } from '../src/data/cifar.js';
import { MemoryDataset, Subset, type Dataset } from '../src/data/dataset.js';
import { decodeImage, headerChannels, writeSample, type Channels } from '../src/data/decode.js';
import { DataError } from '../src/data/errors.js';
import { idxDataset } from '../src/data/idx.js';
import { imageFolder } from '../src/data/image-folder.js';
import { DataLoader, JointLoader, labeledSubset } from '../src/data/loader.js';
import { openDataset } from '../src/data/open.js';
import { openPack, writePack } from '../src/data/pack.js';
import { unlabeledFolder } from '../src/data/unlabeled-folder.js';

const root = mkdtempSync(join(tmpdir(), 'dawnet-data-test-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let folders = 0;
const fresh = (name: string): string => {
  const dir = join(root, `${name}-${folders++}`);
  mkdirSync(dir, { recursive: true });
  return dir;
};

/** A w × h image whose pixels encode (seed, x, y, c), so that any mix-up shows. */
function pixels(w: number, h: number, channels: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: w * h * channels }, (_, i) => (seed * 41 + i * 7 + ((i / channels) | 0) * 3) & 255);
}

function pngBytes(w: number, h: number, channels: 1 | 3 | 4, seed: number): Buffer {
  const colorType = ({ 1: 0, 3: 2, 4: 6 } as const)[channels];
  const png = new PNG({ width: w, height: h, colorType, inputColorType: colorType, inputHasAlpha: channels === 4 });
  png.data = Buffer.from(pixels(w, h, channels, seed));
  return PNG.sync.write(png, { colorType, inputColorType: colorType, inputHasAlpha: channels === 4 });
}

function writePng(path: string, w: number, h: number, channels: 1 | 3 | 4, seed: number): void {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, pngBytes(w, h, channels, seed));
}

function writeJpeg(path: string, w: number, h: number, seed: number): void {
  const rgba = Buffer.alloc(w * h * 4);
  const rgb = pixels(w, h, 3, seed);
  for (let p = 0; p < w * h; p++) rgba.set([rgb[3 * p]!, rgb[3 * p + 1]!, rgb[3 * p + 2]!, 255], 4 * p);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, jpeg.encode({ width: w, height: h, data: rgba }, 95).data);
}

/** root/<class>/<k>.png for each class, `per` images of side `size`, grayscale. */
function makeFolder(classes: string[], per: number, size = 6, channels: 1 | 3 = 1): string {
  const dir = fresh('folder');
  classes.forEach((name, c) => {
    for (let k = 0; k < per; k++) writePng(join(dir, name, `${String(k).padStart(3, '0')}.png`), size, size, channels, 100 * c + k);
  });
  return dir;
}

/** Captures warnings instead of printing them. */
function collector(): { warnings: string[]; onWarning: (m: string) => void } {
  const warnings: string[] = [];
  return { warnings, onWarning: (m) => warnings.push(m) };
}

async function readAll(d: Dataset): Promise<Uint8Array> {
  const out = new Uint8Array(d.length * d.channels * d.imageSize ** 2);
  const failures = await d.read(Array.from({ length: d.length }, (_, i) => i), out);
  expect(failures).toEqual([]);
  return out;
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const x of it) all.push(x);
  return all;
}

const quiet = { onInfo: () => undefined };

describe('decoding and resizing', () => {
  it('PNG grayscale, RGB and RGBA (alpha dropped), JPEG RGB', () => {
    const gray = decodeImage(pngBytes(3, 2, 1, 1));
    expect([gray.width, gray.height, gray.channels]).toEqual([3, 2, 1]);
    expect([...gray.data]).toEqual([...pixels(3, 2, 1, 1)]);
    const rgb = decodeImage(pngBytes(3, 2, 3, 2));
    expect(rgb.channels).toBe(3);
    expect([...rgb.data]).toEqual([...pixels(3, 2, 3, 2)]);
    const rgba = decodeImage(pngBytes(2, 2, 4, 3));
    const source = pixels(2, 2, 4, 3);
    expect([...rgba.data]).toEqual([...source].filter((_, i) => i % 4 !== 3));
    const dir = fresh('jpeg');
    writeJpeg(join(dir, 'a.jpg'), 8, 8, 4);
    const j = decodeImage(readFileSync(join(dir, 'a.jpg')));
    expect([j.width, j.height, j.channels]).toEqual([8, 8, 3]);
    expect(headerChannels(readFileSync(join(dir, 'a.jpg')))).toBe(3);
    expect(headerChannels(pngBytes(2, 2, 1, 0))).toBe(1);
    expect(() => decodeImage(new TextEncoder().encode('not an image'))).toThrow(/not a PNG or JPEG/);
    // A one-component (grayscale) JPEG frame header: SOI, then SOF0 with Nf = 1.
    expect(headerChannels(Uint8Array.from([0xff, 0xd8, 0xff, 0xc0, 0, 11, 8, 0, 16, 0, 16, 1, 1, 0x11, 0]))).toBe(1);
  });

  // Bytes from Pillow 9.4: Image.resize((w', h'), BILINEAR) to the shorter side, then the centre
  // crop (torchvision Resize(s) + CenterCrop(s)); grayscale through convert('L') first.
  const pil = (w: number, h: number): Uint8Array => {
    const data = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) data.set([(x * 37 + y * 91 + x * y * 7) % 256, (x * 11 + y * 201 + x * y * 3 + 50) % 256, (x * x * 5 + y * 17 + 120) % 256], 3 * (y * w + x));
    }
    return data;
  };
  const cases: { w: number; h: number; s: number; c: Channels; expected: number[] }[] = [
    { w: 9, h: 7, s: 4, c: 3, expected: [70, 125, 114, 137, 138, 119, 135, 140, 112, 145, 145, 147, 96, 113, 128, 158, 95, 60, 74, 95, 176, 177, 107, 59, 103, 139, 181, 175, 88, 63, 115, 166, 133, 154, 182, 90, 159, 180, 177, 74, 191, 212, 111, 106, 217, 196, 68, 132] },
    { w: 9, h: 7, s: 4, c: 1, expected: [92, 90, 98, 107, 162, 160, 124, 85, 115, 149, 162, 159, 105, 93, 113, 160] },
    { w: 5, h: 6, s: 8, c: 1, expected: [43, 51, 62, 74, 87, 100, 113, 122, 117, 93, 63, 76, 90, 104, 97, 90, 189, 145, 88, 95, 106, 122, 87, 60, 188, 187, 185, 162, 159, 175, 116, 68, 147, 159, 175, 169, 175, 194, 171, 152, 106, 120, 139, 159, 175, 187, 205, 217, 105, 119, 140, 160, 163, 146, 150, 155, 103, 102, 102, 125, 137, 137, 142, 146] },
  ];
  for (const { w, h, s, c, expected } of cases) {
    it(`resizes ${w}×${h} to ${s}×${s} (${c} channel) exactly as Pillow + torchvision`, () => {
      const out = new Uint8Array(c * s * s);
      writeSample({ width: w, height: h, channels: 3, data: pil(w, h) }, s, c, out);
      expect([...out]).toEqual(expected);
    });
  }

  it('a same-size image is copied into CHW order unchanged; gray becomes RGB by repetition', () => {
    const out = new Uint8Array(3 * 4);
    writeSample({ width: 2, height: 2, channels: 1, data: Uint8Array.from([1, 2, 3, 4]) }, 2, 3, out);
    expect([...out]).toEqual([1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4]);
  });
});

describe('folder readers', () => {
  it('ImageFolder: class names sorted into labels, nested images, PNG and JPEG, resized', async () => {
    const dir = fresh('imagefolder');
    writePng(join(dir, 'zebra', 'a.png'), 8, 8, 3, 1);
    writePng(join(dir, 'zebra', 'sub', 'b.png'), 8, 12, 3, 2);
    writeJpeg(join(dir, 'ant', 'c.JPG'), 8, 8, 3);
    writePng(join(dir, 'ant', 'd.png'), 8, 8, 1, 4);
    writeFileSync(join(dir, 'ant', 'notes.txt'), 'not an image');
    writeFileSync(join(dir, 'ant', '.DS_Store'), 'hidden');
    const { warnings, onWarning } = collector();
    const d = imageFolder(dir, { imageSize: 4, channels: 3, onWarning });
    expect(d.classes).toEqual(['ant', 'zebra']);
    expect([...d.labels]).toEqual([0, 0, 1, 1]);
    expect(d.source(0)).toMatch(/ant\/c\.JPG$/);
    expect(d.source(3)).toMatch(/zebra\/sub\/b\.png$/);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/ignored 1 file.*notes\.txt/);
    const all = await readAll(d);
    expect(all.length).toBe(4 * 3 * 16);
    // The grayscale PNG (sample 1) is expanded to three equal planes.
    const s1 = all.subarray(48, 96);
    expect([...s1.subarray(0, 16)]).toEqual([...s1.subarray(16, 32)]);
    // channels 'auto' follows the first image (a JPEG: RGB).
    expect(imageFolder(dir, { imageSize: 4, onWarning }).channels).toBe(3);
  });

  it('unlabeled folders: every image at any depth, several roots concatenated, labels −1', async () => {
    const a = fresh('unlabeled');
    const b = fresh('unlabeled');
    writePng(join(a, '0', 'img_1.png'), 5, 5, 1, 1);
    writePng(join(a, '0', 'deep', 'img_2.png'), 5, 5, 1, 2);
    writePng(join(b, 'img_3.png'), 5, 5, 1, 3);
    const d = unlabeledFolder([a, b], { imageSize: 5, channels: 1 });
    expect(d.length).toBe(3);
    expect([...d.labels]).toEqual([-1, -1, -1]);
    expect(d.classes).toEqual([]);
    expect(d.source(2)).toMatch(/img_3\.png$/);
    const all = await readAll(d);
    expect([...all.subarray(50, 75)]).toEqual([...pixels(5, 5, 1, 3)]);
    const cached = await openDataset([a, b], { imageSize: 5, cache: fresh('cache'), ...quiet });
    expect([cached.length, cached.labels[2]]).toEqual([3, -1]);
    expect(await readAll(cached)).toEqual(all);
  });

  it('missing, non-folder and empty roots, empty class folders and no images are DataErrors naming the path', async () => {
    const missing = join(root, 'does-not-exist');
    expect(() => imageFolder(missing, { imageSize: 8 })).toThrow(DataError);
    expect(() => imageFolder(missing, { imageSize: 8 })).toThrow(missing);
    const file = join(fresh('file'), 'x.png');
    writeFileSync(file, 'x');
    expect(() => imageFolder(file, { imageSize: 8 })).toThrow(/not a folder/);
    const empty = fresh('empty');
    expect(() => imageFolder(empty, { imageSize: 8 })).toThrow(/no class folders in .*empty/);
    const loose = fresh('loose');
    writePng(join(loose, 'a.png'), 4, 4, 1, 0);
    expect(() => imageFolder(loose, { imageSize: 8 })).toThrow(/outside class folders.*unlabeled/);
    const emptyClass = makeFolder(['cat'], 2);
    mkdirSync(join(emptyClass, 'dog'));
    writeFileSync(join(emptyClass, 'dog', 'readme.txt'), 'no images here');
    expect(() => imageFolder(emptyClass, { imageSize: 8, onWarning: () => undefined })).toThrow(new RegExp(`class folder ${join(emptyClass, 'dog')} has no`));
    expect(() => unlabeledFolder([empty], { imageSize: 8 })).toThrow(/no .png\/.jpg\/.jpeg images under/);
    expect(() => unlabeledFolder([], { imageSize: 8 })).toThrow(DataError);
    expect(() => imageFolder(makeFolder(['a'], 1), { imageSize: 0 })).toThrow(/imageSize/);
    await expect(openDataset(missing, { imageSize: 8 })).rejects.toThrow(DataError);
    await expect(openDataset(makeFolder(['a'], 1))).rejects.toThrow(/--imageSize is needed/);
  });

  it('the pack-data command prints a DataError as one line, without a stack, and exits 1', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/pack-data.ts', '--dataroot', join(root, 'nowhere'), '--imageSize', '8', '--out', join(root, 'out')], { encoding: 'utf8' });
    expect(run.status).toBe(1);
    expect(run.stderr.trim()).toBe(`error: image folder not found: ${join(root, 'nowhere')}`);
  });
});

describe('bad images', () => {
  /** 2 classes × 6 good images, plus a corrupt, a truncated and a non-image file. */
  function makeDamaged(): { dir: string; bad: string[] } {
    const dir = makeFolder(['a', 'b'], 6, 6);
    const corrupt = join(dir, 'a', '100-corrupt.png');
    const bytes = pngBytes(6, 6, 1, 9);
    bytes.fill(7, 40);
    writeFileSync(corrupt, bytes);
    const truncated = join(dir, 'b', '100-truncated.png');
    writeFileSync(truncated, pngBytes(6, 6, 1, 10).subarray(0, 45));
    const text = join(dir, 'b', '101-text.jpg');
    writeFileSync(text, 'this is not a JPEG');
    return { dir, bad: [corrupt, truncated, text] };
  }

  it('are skipped with one warning listing them, and an epoch carries on without them', async () => {
    const { dir, bad } = makeDamaged();
    const { warnings, onWarning } = collector();
    const d = imageFolder(dir, { imageSize: 6, channels: 1, onWarning });
    expect(d.length).toBe(15);
    const loader = new DataLoader(d, { batchSize: 4, shuffle: true, generator: new Generator(1) });
    const batches = await collect(loader);
    const seen = batches.flatMap((b) => [...b.indices]);
    expect(seen).toHaveLength(12);
    expect(new Set(seen.map((i) => d.source(i)))).not.toContain(bad[0]);
    for (const b of batches) {
      expect(b.images.shape[0]).toBe(b.size);
      b.dispose();
    }
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/skipped 3 unreadable image\(s\)/);
    for (const path of bad) expect(warnings[0]).toContain(path);
    expect(d.skips.count).toBe(3);
    // A second epoch neither re-decodes them nor warns again.
    const again = await collect(loader);
    expect(again.reduce((n, b) => n + b.size, 0)).toBe(12);
    again.forEach((b) => b.dispose());
    expect(warnings).toHaveLength(1);
  });

  it('are left out of a pack, listed in its index, and reported when it opens', async () => {
    const { dir, bad } = makeDamaged();
    const { warnings, onWarning } = collector();
    const cache = fresh('cache');
    const d = await openDataset(dir, { imageSize: 6, channels: 1, cache, onWarning, ...quiet });
    expect(d.length).toBe(12);
    expect(warnings.some((w) => /skipped 3 unreadable/.test(w))).toBe(true);
    const again = collector();
    const reopened = await openDataset(dir, { imageSize: 6, channels: 1, cache, onWarning: again.onWarning, ...quiet });
    expect(reopened.length).toBe(12);
    expect(again.warnings.join('\n')).toContain(bad[1]);
  });

  it('a folder of nothing but unreadable images is a DataError', async () => {
    const dir = fresh('allbad');
    mkdirSync(join(dir, 'x'));
    writeFileSync(join(dir, 'x', 'a.png'), 'garbage');
    await expect(openDataset(dir, { imageSize: 4, channels: 1, cache: fresh('cache'), onWarning: () => undefined, ...quiet })).rejects.toThrow(/none of the 1 images could be read/);
  });
});

describe('IDX and CIFAR', () => {
  function idx(type: number, dims: number[], data: Uint8Array): Uint8Array {
    const header = new DataView(new ArrayBuffer(4 + 4 * dims.length));
    header.setUint8(2, type);
    header.setUint8(3, dims.length);
    dims.forEach((d, i) => header.setUint32(4 + 4 * i, d, false));
    return Buffer.concat([new Uint8Array(header.buffer), data]);
  }

  it('reads MNIST-style IDX, gzipped or not, resized and with channels on request', async () => {
    const dir = fresh('idx');
    const images = pixels(4, 4, 5, 1);
    const labels = Uint8Array.from([3, 1, 4, 1, 0]);
    writeFileSync(join(dir, 'train-images-idx3-ubyte.gz'), gzipSync(idx(8, [5, 4, 4], images)));
    writeFileSync(join(dir, 'train-labels-idx1-ubyte'), idx(8, [5], labels));
    const d = idxDataset({ images: join(dir, 'train-images-idx3-ubyte.gz'), labels: join(dir, 'train-labels-idx1-ubyte') });
    expect([d.length, d.imageSize, d.channels]).toEqual([5, 4, 1]);
    expect([...d.labels]).toEqual([3, 1, 4, 1, 0]);
    expect(d.classes).toEqual(['0', '1', '2', '3', '4']);
    expect([...(await readAll(d))]).toEqual([...images]);
    // A folder holding IDX files opens by path.
    const byPath = await openDataset(dir, { imageSize: 8, channels: 3 });
    expect([byPath.imageSize, byPath.channels]).toEqual([8, 3]);
    writeFileSync(join(dir, 'bad-images'), Uint8Array.from([1, 2, 3, 4, 5]));
    expect(() => idxDataset({ images: join(dir, 'bad-images'), labels: join(dir, 'train-labels-idx1-ubyte') })).toThrow(/not an IDX file/);
    writeFileSync(join(dir, 'short-images'), idx(8, [5, 4, 4], images.subarray(0, 20)));
    expect(() => idxDataset({ images: join(dir, 'short-images'), labels: join(dir, 'train-labels-idx1-ubyte') })).toThrow(/truncated/);
  });

  it('reads CIFAR-10 and CIFAR-100 binary batches (CHW planes), rejects a truncated batch', async () => {
    const ten = fresh('cifar10');
    const record = (label: number[], seed: number): Uint8Array => Buffer.concat([Uint8Array.from(label), pixels(32, 32, 3, seed)]);
    writeFileSync(join(ten, 'data_batch_1.bin'), Buffer.concat([record([2], 1), record([9], 2)]));
    writeFileSync(join(ten, 'data_batch_2.bin'), record([0], 3));
    writeFileSync(join(ten, 'test_batch.bin'), record([5], 4));
    const train = cifarDataset(ten);
    expect([...train.labels]).toEqual([2, 9, 0]);
    expect(train.classes[9]).toBe('truck');
    expect([...(await readAll(train)).subarray(3072, 6144)]).toEqual([...pixels(32, 32, 3, 2)]);
    const test = await openDataset(ten, { split: 'test', imageSize: 16, channels: 1 });
    expect([test.length, test.imageSize, test.channels, test.labels[0]]).toEqual([1, 16, 1, 5]);
    const hundred = fresh('cifar100');
    writeFileSync(join(hundred, 'train.bin'), Buffer.concat([record([1, 42], 5), record([3, 7], 6)]));
    writeFileSync(join(hundred, 'test.bin'), record([0, 0], 7));
    expect([...cifarDataset(hundred).labels]).toEqual([42, 7]);
    expect([...cifarDataset(hundred, { labelKind: 'coarse' }).labels]).toEqual([1, 3]);
    appendFileSync(join(ten, 'data_batch_2.bin'), Uint8Array.from([1, 2, 3]));
    expect(() => cifarDataset(ten)).toThrow(/not a whole number/);
  });
});

describe('packed cache', () => {
  it('a pack holds exactly what decoding gives, in memory or read per sample', async () => {
    const dir = makeFolder(['x', 'y', 'z'], 5, 7, 3);
    const files = imageFolder(dir, { imageSize: 5, channels: 3 });
    const expected = await readAll(files);
    const out = join(fresh('packs'), 'p');
    const index = await writePack(files, out, { shardBytes: 4 * 75 });
    expect(index.shards.map((s) => s.count)).toEqual([4, 4, 4, 3]);
    expect(index.sizes[0]).toEqual([7, 7]);
    expect(index.paths[14]).toBe(files.source(14));
    const pack = openPack(out);
    expect(pack.classes).toEqual(['x', 'y', 'z']);
    expect([...pack.labels]).toEqual([...files.labels]);
    expect(await readAll(pack)).toEqual(expected);
    const onDisk = openPack(out, { memoryLimit: 0 });
    expect(await readAll(onDisk)).toEqual(expected);
    await onDisk.close();
    truncateSync(join(out, 'shard-00001.bin'), 10);
    expect(() => openPack(out)).toThrow(/truncated/);
    expect(() => openPack(fresh('nopack'))).toThrow(/no dawnet pack/);
  });

  it('the loader builds the cache once and rebuilds it when files change, are added or removed', async () => {
    const dir = makeFolder(['a', 'b'], 3, 6);
    const cache = fresh('cache');
    const infos: string[] = [];
    // Cache messages only: the channel decision is logged on every open.
    const open = () => openDataset(dir, { imageSize: 6, cache, onInfo: (m) => /packed cache/.test(m) && infos.push(m) });
    const first = await open();
    expect(first.length).toBe(6);
    expect(infos).toHaveLength(1);
    expect(infos[0]).toMatch(/building the packed cache/);
    await open();
    expect(infos).toHaveLength(1);
    // Same size, new contents and mtime.
    const target = join(dir, 'a', '000.png');
    writePng(target, 6, 6, 1, 77);
    utimesSync(target, new Date(), new Date(Date.now() + 5000));
    const changed = await open();
    expect(infos).toHaveLength(2);
    expect(infos[1]).toMatch(/rebuilding/);
    const first6 = new Uint8Array(36);
    await changed.read([0], first6);
    expect([...first6]).toEqual([...pixels(6, 6, 1, 77)]);
    writePng(join(dir, 'b', '999.png'), 6, 6, 1, 5);
    expect((await open()).length).toBe(7);
    rmSync(join(dir, 'a', '001.png'));
    expect((await open()).length).toBe(6);
    expect(infos).toHaveLength(4);
    // Another size is another pack.
    expect((await openDataset(dir, { imageSize: 3, cache, ...quiet })).imageSize).toBe(3);
  });

  it('a pack given as the dataroot is rebuilt in place when its source changes', async () => {
    const dir = makeFolder(['a'], 2, 4);
    const out = join(fresh('packs'), 'p');
    const files = imageFolder(dir, { imageSize: 4, channels: 1 });
    const listing = files.listing.files.map((f): [string, number, number] => [f.path, f.size, f.mtimeMs]);
    await writePack(files, out, { source: { kind: 'image-folder', root: dir }, fingerprint: listing });
    expect((await openDataset(out, quiet)).length).toBe(2);
    writePng(join(dir, 'a', 'new.png'), 4, 4, 1, 3);
    expect((await openDataset(out, quiet)).length).toBe(3);
    await expect(openDataset(out, { imageSize: 8 })).rejects.toThrow(/holds 4px images/);
  });
});

describe('DataLoader', () => {
  /** 10 images of 2×2 grayscale whose pixels are their index, labels i % 3. */
  function tiny(n = 10): MemoryDataset {
    const px = Uint8Array.from({ length: n * 4 }, (_, i) => Math.floor(i / 4));
    return new MemoryDataset(px, Int32Array.from({ length: n }, (_, i) => i % 3), ['a', 'b', 'c'], 1, 2, 'tiny');
  }

  it('batches in order, with and without drop_last (len() as PyTorch)', async () => {
    const plain = new DataLoader(tiny(), { batchSize: 4 });
    expect(plain.length).toBe(3);
    const batches = await collect(plain.hostBatches());
    expect(batches.map((b) => [...b.indices])).toEqual([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
    const dropped = new DataLoader(tiny(), { batchSize: 4, dropLast: true });
    expect(dropped.length).toBe(2);
    expect((await collect(dropped.hostBatches())).map((b) => b.count)).toEqual([4, 4]);
  });

  it('a seeded shuffle is a permutation, new every epoch, the same for the same seed', async () => {
    const order = async (seed: number, epochs: number) => {
      const loader = new DataLoader(tiny(), { batchSize: 3, shuffle: true, generator: new Generator(seed) });
      const out: number[][] = [];
      for (let e = 0; e < epochs; e++) out.push((await collect(loader.hostBatches())).flatMap((b) => [...b.indices]));
      return out;
    };
    const [e1, e2] = await order(5, 2);
    expect([...e1!].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(e1).not.toEqual(e2);
    expect(await order(5, 2)).toEqual([e1, e2]);
    expect((await order(6, 1))[0]).not.toEqual(e1);
  });

  it('a fixed epoch size repeats images evenly (RotNet) or draws with replacement', async () => {
    const even = new DataLoader(tiny(), { batchSize: 8, epochSize: 25, shuffle: true, generator: new Generator(1) });
    expect(even.length).toBe(4);
    const seen = (await collect(even.hostBatches())).flatMap((b) => [...b.indices]);
    expect(seen).toHaveLength(25);
    const counts = Array.from({ length: 10 }, (_, i) => seen.filter((s) => s === i).length);
    expect(counts.every((c) => c === 2 || c === 3)).toBe(true);
    const drawn = new DataLoader(tiny(), { batchSize: 8, epochSize: 40, replacement: true, generator: new Generator(2) });
    const picks = (await collect(drawn.hostBatches())).flatMap((b) => [...b.indices]);
    expect(picks).toHaveLength(40);
    expect(picks.every((i) => i >= 0 && i < 10)).toBe(true);
    expect(new Set(picks).size).toBeLessThan(40);
  });

  it('an epoch shorter than the data set draws its images afresh each epoch (a class-sorted set loses no class)', async () => {
    const loader = new DataLoader(tiny(), { batchSize: 4, epochSize: 4, shuffle: true, generator: new Generator(3) });
    const seen = new Set<number>();
    for (let e = 0; e < 12; e++) for (const b of await collect(loader.hostBatches())) for (const i of b.indices) seen.add(i);
    expect(seen.size).toBe(10);
    const inOrder = new DataLoader(tiny(), { batchSize: 4, epochSize: 4, generator: new Generator(3) });
    expect((await collect(inOrder.hostBatches())).flatMap((b) => [...b.indices])).toEqual([0, 1, 2, 3]);
  });

  it('labeled subsets: the first K per class, or K drawn per class', () => {
    const d = tiny(30);
    const first = labeledSubset(d, 2);
    expect([...first.indices]).toEqual([0, 1, 2, 3, 4, 5]);
    const drawn = labeledSubset(d, 3, { mode: 'random', generator: new Generator(4) });
    expect(drawn.length).toBe(9);
    expect([0, 1, 2].map((c) => drawn.labels.filter((l) => l === c).length)).toEqual([3, 3, 3]);
    expect([...drawn.indices]).toEqual([...drawn.indices].sort((a, b) => a - b));
    expect(labeledSubset(d, 3, { mode: 'random', generator: new Generator(4) }).indices).toEqual(drawn.indices);
    expect(() => labeledSubset(d, 11)).toThrow(/fewer than the 11 per class/);
  });

  it('uploads uint8 batches and converts them on the GPU: exactly byte · f32(1/255), labels int32', async () => {
    const d = tiny();
    const loader = new DataLoader(d, { batchSize: 4, shuffle: true, generator: new Generator(3) });
    for await (const batch of loader) {
      expect(batch.images.shape).toEqual([batch.size, 1, 2, 2]);
      const images = await batch.images.toArray();
      const expected = [...batch.indices].flatMap((i) => [i, i, i, i].map((v) => Math.fround(v * INV255)));
      expect([...images]).toEqual(expected);
      expect([...(await batch.labels.toArray())]).toEqual([...batch.indices].map((i) => i % 3));
      expect([...batch.hostLabels]).toEqual([...batch.indices].map((i) => i % 3));
      batch.dispose();
    }
  });

  it('fuses the rotation batch into the upload: class labels repeated, rotation labels 0…3', async () => {
    const loader = new DataLoader(tiny(), { batchSize: 3, transform: { rotation: 'all' } });
    const iterator = loader[Symbol.asyncIterator]();
    const { value: batch } = await iterator.next();
    await iterator.return(undefined);
    expect(batch!.images.shape).toEqual([12, 1, 2, 2]);
    expect([...batch!.hostLabels]).toEqual([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]);
    expect([...(await batch!.rotationLabels!.toArray())]).toEqual([0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3]);
    expect([...batch!.indices]).toEqual([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]);
    batch!.dispose();
  });

  it('shuffles and augmentations do not depend on how far ahead batches are read', async () => {
    const run = async (prefetch: number) => {
      const loader = new DataLoader(tiny(), { batchSize: 4, shuffle: true, prefetch, generator: new Generator(8), transform: { crop: { size: 2, padding: 1 }, hflip: 0.5 } });
      const seen: number[] = [];
      for (let epoch = 0; epoch < 2; epoch++) {
        for await (const b of loader) {
          seen.push(...b.indices, ...(await b.images.toArray()));
          b.dispose();
        }
      }
      return seen;
    };
    expect(await run(1)).toEqual(await run(4));
  });

  it('disposing every batch returns the memory it used', async () => {
    const loader = new DataLoader(tiny(), { batchSize: 4, transform: { crop: { size: 2, padding: 1 }, hflip: 0.5 } });
    for await (const b of loader) b.dispose();
    const before = memory().bytesInUse;
    for await (const b of loader) b.dispose();
    expect(memory().bytesInUse).toBe(before);
  });

  it('a cycling loader beside the main one: one epoch of main, the other carried across epochs', async () => {
    const main = new DataLoader(tiny(10), { batchSize: 4 });
    const beside = new DataLoader(new Subset(tiny(10), [7, 8, 9]), { batchSize: 2, shuffle: true, generator: new Generator(9) });
    const joint = new JointLoader(main, beside);
    expect(joint.length).toBe(3);
    const picks: number[][] = [];
    for (let epoch = 0; epoch < 2; epoch++) {
      for await (const { main: m, beside: b } of joint) {
        expect(m.size).toBeGreaterThan(0);
        picks.push([...b.indices]);
        m.dispose();
        b.dispose();
      }
    }
    await joint.close();
    expect(picks).toHaveLength(6);
    // Indices are the subset's own (0…2); each cycle of 2 batches covers all of it.
    expect(picks.flat().every((i) => i >= 0 && i <= 2)).toBe(true);
    expect(new Set(picks.slice(0, 2).flat())).toEqual(new Set([0, 1, 2]));
    expect(new Set(picks.slice(2, 4).flat())).toEqual(new Set([0, 1, 2]));
    expect(beside.epoch).toBeGreaterThanOrEqual(3);
  });

  it('reads folders through decoding threads with prefetch, in order', async () => {
    const dir = makeFolder(['a', 'b', 'c'], 7, 5);
    const d = imageFolder(dir, { imageSize: 5, channels: 1 });
    const loader = new DataLoader(d, { batchSize: 5, prefetch: 3 });
    const batches = await collect(loader.hostBatches());
    expect(batches.map((b) => b.count)).toEqual([5, 5, 5, 5, 1]);
    expect([...batches[1]!.pixels.subarray(0, 25)]).toEqual([...pixels(5, 5, 1, 5)]);
  });
});

describe('built-in data', () => {
  it('a fresh clone trains with no --dataroot: the Fashion-MNIST subset in data/', async () => {
    const train = await openDataset(undefined, { cache: fresh('cache'), ...quiet });
    expect([train.length, train.imageSize, train.channels]).toEqual([3000, 28, 1]);
    expect(train.classes).toHaveLength(10);
    expect(train.classes[0]).toBe('0-tshirt-top');
    expect(train.source(0).startsWith(BUILTIN_ROOT)).toBe(true);
    const test = await openDataset('builtin', { split: 'test', cache: fresh('cache'), imageSize: 32, ...quiet });
    expect([test.length, test.imageSize]).toEqual([1000, 32]);
  });

  it('Fashion-MNIST by name, with a DataError saying how to install it when absent', async () => {
    expect(() => fashionMnist({ dir: join(root, 'no-fashion-mnist') })).toThrow(/apt-get install dataset-fashion-mnist/);
    let installed = true;
    try {
      readFileSync(join(FASHION_MNIST_DIR, 't10k-labels-idx1-ubyte.gz'));
    } catch {
      installed = false;
    }
    if (installed) {
      const test = await openDataset('fashion-mnist', { split: 'test' });
      expect([test.length, test.imageSize, test.classes[9]]).toEqual([10000, 28, 'Ankle boot']);
    }
  });
});
