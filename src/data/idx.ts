// The IDX format of MNIST and Fashion-MNIST (gzipped or not): a magic number giving the element
// type and rank, big-endian dimensions, then the data. Images (N, H, W) uint8 and labels (N) uint8
// load into memory, resized or given channels as asked.
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { MemoryDataset } from './dataset.js';
import { convertSamples, type Channels } from './decode.js';
import { DataError } from './errors.js';
import { checkImageSize } from './files.js';

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/** Reads an IDX file of unsigned bytes (type 0x08), gzipped or not. */
export function readIdx(path: string): IdxArray {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch {
    throw new DataError(`IDX file not found: ${path}`);
  }
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes);
    } catch (err) {
      throw new DataError(`${path}: corrupt gzip data (${err instanceof Error ? err.message : String(err)})`);
    }
  }
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) throw new DataError(`${path} is not an IDX file (bad magic number)`);
  if (bytes[2] !== 0x08) throw new DataError(`${path}: only unsigned-byte IDX data (type 0x08) is supported, not 0x${bytes[2]!.toString(16)}`);
  const rank = bytes[3]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 4 + 4 * rank) throw new DataError(`${path}: truncated IDX header`);
  const dims = Array.from({ length: rank }, (_, d) => view.getUint32(4 + 4 * d, false));
  const count = dims.reduce((p, d) => p * d, 1);
  const start = 4 + 4 * rank;
  if (bytes.length - start < count) throw new DataError(`${path}: truncated IDX data (${bytes.length - start} of ${count} bytes)`);
  return { dims, data: bytes.subarray(start, start + count) };
}

export interface IdxOptions {
  images: string;
  labels: string;
  /** Class names by label; "0"…"K−1" by default. */
  classes?: readonly string[];
  /** Default: the files' own size (28 for MNIST). */
  imageSize?: number;
  /** Default 1 (the files are grayscale); 3 repeats the plane. */
  channels?: Channels;
}

/** An IDX image file and its label file, in memory. */
export function idxDataset(options: IdxOptions): MemoryDataset {
  const images = readIdx(options.images);
  const labels = readIdx(options.labels);
  if (images.dims.length !== 3) throw new DataError(`${options.images}: expected images of shape (N, H, W), got (${images.dims.join(', ')})`);
  if (labels.dims.length !== 1) throw new DataError(`${options.labels}: expected labels of shape (N), got (${labels.dims.join(', ')})`);
  const [n, h, w] = images.dims as [number, number, number];
  if (labels.dims[0] !== n) throw new DataError(`${options.labels} has ${labels.dims[0]} labels for ${n} images in ${options.images}`);
  const imageSize = options.imageSize ?? h;
  checkImageSize(imageSize);
  const channels = options.channels ?? 1;
  const label = Int32Array.from(labels.data);
  const classCount = label.reduce((m, v) => Math.max(m, v + 1), 0);
  const classes = options.classes ?? Array.from({ length: classCount }, (_, k) => String(k));
  if (classCount > classes.length) throw new DataError(`${options.labels}: label ${classCount - 1} has no class name (${classes.length} given)`);
  const pixels = convertSamples(images.data, n, 1, h, w, imageSize, channels);
  return new MemoryDataset(pixels, label, classes, channels, imageSize, basename(options.images));
}

/** The image and label files of a split in an MNIST-style folder (each gzipped or not), or null. */
export function findIdxFiles(dir: string, split: 'train' | 'test'): { images: string; labels: string } | null {
  const prefix = split === 'train' ? 'train' : 't10k';
  const find = (kind: string): string | undefined =>
    [`${prefix}-${kind}.gz`, `${prefix}-${kind}`].map((name) => join(dir, name)).find((p) => existsSync(p));
  const images = find('images-idx3-ubyte');
  const labels = find('labels-idx1-ubyte');
  return images && labels ? { images, labels } : null;
}
