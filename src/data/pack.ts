// The packed cache: a data set decoded once into uint8 shards plus a JSON index, so that epochs
// read bytes instead of decoding files.
//
//   <dir>/index.json        PackIndex: labels, class names, source paths and sizes, the shards,
//                           and the fingerprint of the source (file paths, sizes, mtimes)
//   <dir>/shard-00000.bin   imagesPerShard samples back to back, each C·S·S bytes in CHW order
//
// A pack is written into a temporary folder and renamed into place, so a reader never sees half
// of one. Small packs load into memory; larger ones are read per sample with positional reads.
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { checkIndex, MemoryDataset, sampleBytes, type Dataset, type ReadFailure } from './dataset.js';
import type { Channels } from './decode.js';
import { removeStaleTemps } from '../atomic-file.js';
import { DataError, SkipLog, stderrWarning, type WarningHandler } from './errors.js';
import { FileDataset } from './files.js';

export const PACK_FORMAT = 'dawnet-pack';
export const PACK_VERSION = 1;
/** Names the decoder's resizing; a pack made by another one is rebuilt. */
export const RESIZE_METHOD = 'torchvision Resize(s)+CenterCrop(s), Pillow BILINEAR (antialiased, fixed point)';

/** How a pack's source can be opened again to check or rebuild it. */
export type SourceSpec =
  | { kind: 'image-folder'; root: string }
  | { kind: 'unlabeled-folder'; roots: string[] }
  | { kind: 'idx'; images: string; labels: string; classes?: string[] }
  | { kind: 'cifar'; dir: string; split: 'train' | 'test'; labelKind: 'fine' | 'coarse' };

/** [path, size in bytes, mtime in ms] of every file the source was read from. */
export type Fingerprint = [string, number, number][];

export interface PackIndex {
  format: typeof PACK_FORMAT;
  version: number;
  imageSize: number;
  channels: Channels;
  layout: 'NCHW uint8';
  resize: string;
  count: number;
  classes: string[];
  /** −1 for unlabeled samples. */
  labels: number[];
  /** Where each sample came from. */
  paths: string[];
  /** [width, height] of each source image ([0, 0] when unknown). */
  sizes: [number, number][];
  imagesPerShard: number;
  shards: { file: string; count: number }[];
  source: SourceSpec | null;
  fingerprint: Fingerprint;
  /** Source images that could not be decoded and are not in the pack. */
  skipped: { path: string; reason: string }[];
  created: string;
}

export interface WriteOptions {
  source?: SourceSpec | null;
  fingerprint?: Fingerprint;
  /** Shard size limit; 256 MiB by default. */
  shardBytes?: number;
  /** Called after each chunk with the images done and the total. */
  onProgress?: (done: number, total: number) => void;
  onWarning?: WarningHandler;
}

const CHUNK = 64;

function shardName(k: number): string {
  return `shard-${String(k).padStart(5, '0')}.bin`;
}

function isPackDir(dir: string): boolean {
  return existsSync(join(dir, 'index.json'));
}

/**
 * Decodes every sample of `dataset` into a pack at `dir` (replacing a pack there). Samples that
 * cannot be read are left out, listed in the index and reported in one warning.
 */
export async function writePack(dataset: Dataset, dir: string, options: WriteOptions = {}): Promise<PackIndex> {
  if (existsSync(dir) && !isPackDir(dir) && readdirSync(dir).length > 0) {
    throw new DataError(`${dir} exists and is not a dawnet pack; choose an empty or new folder for --out`);
  }
  const bytes = sampleBytes(dataset);
  const imagesPerShard = Math.max(1, Math.floor((options.shardBytes ?? 256 * 2 ** 20) / bytes));
  // Packs that a killed process was writing beside this one are removed first (they can be large).
  removeStaleTemps(dirname(dir));
  const tmp = join(dirname(dir), `.${basename(dir)}.tmp-${process.pid}-${Date.now()}`);
  mkdirSync(tmp, { recursive: true });
  const warn = options.onWarning ?? stderrWarning;
  const skips = dataset instanceof FileDataset ? dataset.skips : new SkipLog(basename(dir), warn);
  const index: PackIndex = {
    format: PACK_FORMAT,
    version: PACK_VERSION,
    imageSize: dataset.imageSize,
    channels: dataset.channels,
    layout: 'NCHW uint8',
    resize: RESIZE_METHOD,
    count: 0,
    classes: [...dataset.classes],
    labels: [],
    paths: [],
    sizes: [],
    imagesPerShard,
    shards: [],
    source: options.source ?? null,
    fingerprint: options.fingerprint ?? [],
    skipped: [],
    created: new Date().toISOString(),
  };
  let fd = -1;
  let inShard = 0;
  try {
    // Keep a few chunks decoding ahead of the one being written.
    const chunks = Math.ceil(dataset.length / CHUNK);
    const reads: Promise<{ pixels: Uint8Array; failures: ReadFailure[] }>[] = [];
    const start = (c: number): void => {
      const indices = Array.from({ length: Math.min(CHUNK, dataset.length - c * CHUNK) }, (_, k) => c * CHUNK + k);
      const pixels = new Uint8Array(indices.length * bytes);
      reads[c] = dataset.read(indices, pixels).then((failures) => ({ pixels, failures }));
    };
    const ahead = 4;
    for (let c = 0; c < Math.min(ahead, chunks); c++) start(c);
    for (let c = 0; c < chunks; c++) {
      const { pixels, failures } = await reads[c]!;
      delete reads[c];
      if (c + ahead < chunks) start(c + ahead);
      const failed = new Set(failures.map((f) => f.position));
      for (let k = 0; k < pixels.length / bytes; k++) {
        const i = c * CHUNK + k;
        if (failed.has(k)) {
          if (!(dataset instanceof FileDataset)) skips.add(dataset.source(i), 'unreadable');
          continue;
        }
        if (fd < 0 || inShard === imagesPerShard) {
          if (fd >= 0) closeSync(fd);
          index.shards.push({ file: shardName(index.shards.length), count: 0 });
          fd = openSync(join(tmp, index.shards[index.shards.length - 1]!.file), 'w');
          inShard = 0;
        }
        writeSync(fd, pixels, k * bytes, bytes);
        index.shards[index.shards.length - 1]!.count += 1;
        inShard += 1;
        index.labels.push(dataset.labels[i]!);
        index.paths.push(dataset.source(i));
        const sizes = dataset instanceof FileDataset ? dataset.sourceSizes : null;
        index.sizes.push(sizes ? [sizes[2 * i]!, sizes[2 * i + 1]!] : [dataset.imageSize, dataset.imageSize]);
      }
      options.onProgress?.(Math.min((c + 1) * CHUNK, dataset.length), dataset.length);
    }
    if (fd >= 0) closeSync(fd);
    fd = -1;
    index.count = index.labels.length;
    index.skipped = skips.skipped;
    skips.flush();
    if (index.count === 0) throw new DataError(`none of the ${dataset.length} images could be read (first: ${dataset.source(0)})`);
    writeFileSync(join(tmp, 'index.json'), `${JSON.stringify(index)}\n`);
    if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
    mkdirSync(dirname(dir), { recursive: true });
    renameSync(tmp, dir);
  } catch (err) {
    if (fd >= 0) closeSync(fd);
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  return index;
}

/** The index of the pack at dir, or null when there is no readable one. */
export function readPackIndex(dir: string): PackIndex | null {
  const path = join(dir, 'index.json');
  if (!existsSync(path)) return null;
  try {
    const index = JSON.parse(readFileSync(path, 'utf8')) as PackIndex;
    return index.format === PACK_FORMAT ? index : null;
  } catch {
    return null;
  }
}

/** Whether a pack was made from exactly these files with these settings. */
export function packMatches(index: PackIndex, fingerprint: Fingerprint, imageSize: number, channels: Channels): boolean {
  if (index.version !== PACK_VERSION || index.resize !== RESIZE_METHOD) return false;
  if (index.imageSize !== imageSize || index.channels !== channels) return false;
  return JSON.stringify(index.fingerprint) === JSON.stringify(fingerprint);
}

export interface OpenPackOptions {
  /** Packs up to this many bytes load into memory; larger ones are read per sample. 2 GiB by default. */
  memoryLimit?: number;
  onWarning?: WarningHandler;
}

/** A pack too large for memory, read sample by sample from its shard files. */
class ShardDataset implements Dataset {
  readonly length: number;
  readonly labels: Int32Array;
  private readonly fds: number[];

  constructor(private readonly index: PackIndex, dir: string) {
    this.length = index.count;
    this.labels = Int32Array.from(index.labels);
    this.fds = index.shards.map((s) => openSync(join(dir, s.file), 'r'));
  }

  get channels(): Channels {
    return this.index.channels;
  }
  get imageSize(): number {
    return this.index.imageSize;
  }
  get classes(): readonly string[] {
    return this.index.classes;
  }

  source(i: number): string {
    return this.index.paths[i]!;
  }

  async read(indices: ArrayLike<number>, out: Uint8Array): Promise<ReadFailure[]> {
    const bytes = sampleBytes(this);
    for (let k = 0; k < indices.length; k++) {
      const i = indices[k]!;
      checkIndex(this, i);
      const shard = Math.floor(i / this.index.imagesPerShard);
      readSync(this.fds[shard]!, out, k * bytes, bytes, (i % this.index.imagesPerShard) * bytes);
    }
    return [];
  }

  async close(): Promise<void> {
    for (const fd of this.fds.splice(0)) closeSync(fd);
  }
}

/** Opens the pack at dir; throws DataError when it is missing or damaged. */
export function openPack(dir: string, options: OpenPackOptions = {}): Dataset {
  const index = readPackIndex(dir);
  if (!index) throw new DataError(`no dawnet pack at ${dir} (index.json is missing or unreadable); make one with npm run pack-data`);
  if (index.version !== PACK_VERSION) throw new DataError(`${dir}: pack format version ${index.version} is not supported (expected ${PACK_VERSION}); rebuild it with npm run pack-data`);
  const bytes = index.channels * index.imageSize * index.imageSize;
  for (const shard of index.shards) {
    const path = join(dir, shard.file);
    const size = existsSync(path) ? statSync(path).size : -1;
    if (size !== shard.count * bytes) throw new DataError(`${path} is missing or truncated (${size} of ${shard.count * bytes} bytes); rebuild the pack with npm run pack-data`);
  }
  if (index.skipped.length > 0) {
    const log = new SkipLog(dir, options.onWarning ?? stderrWarning);
    for (const s of index.skipped) log.add(s.path, s.reason);
    log.flush();
  }
  if (index.count * bytes > (options.memoryLimit ?? 2 * 2 ** 30)) return new ShardDataset(index, dir);
  const pixels = new Uint8Array(index.count * bytes);
  let at = 0;
  for (const shard of index.shards) {
    const fd = openSync(join(dir, shard.file), 'r');
    let done = 0;
    while (done < shard.count * bytes) done += readSync(fd, pixels, at + done, shard.count * bytes - done, done);
    closeSync(fd);
    at += shard.count * bytes;
  }
  return new MemoryDataset(pixels, Int32Array.from(index.labels), index.classes, index.channels, index.imageSize, dir, index.paths);
}
