// One entry point from a --dataroot to a Dataset: the built-in set, Fashion-MNIST by name, a
// pack, an IDX or CIFAR folder, an image folder or unlabeled folders. Image folders go through
// the packed cache: decoded once into a pack (rebuilt when the files' list, sizes or mtimes
// change) so that no epoch waits on decoding. Every layout problem is a DataError raised here,
// before any training work starts.
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { removeStaleTemps } from '../atomic-file.js';
import { BUILTIN_NAME, builtinRoot, fashionMnist } from './builtin.js';
import { findCifar, cifarDataset } from './cifar.js';
import type { Dataset } from './dataset.js';
import type { Channels } from './decode.js';
import { DataError, stderrWarning, type WarningHandler } from './errors.js';
import { checkImageSize, chooseChannels, FileDataset, type FolderListing } from './files.js';
import { listImageFolder } from './image-folder.js';
import { findIdxFiles, idxDataset } from './idx.js';
import { openPack, packMatches, readPackIndex, writePack, type Fingerprint, type PackIndex, type SourceSpec } from './pack.js';
import { listUnlabeledFolders } from './unlabeled-folder.js';
import type { DecodePool } from './workers.js';

export interface OpenOptions {
  /**
   * Output images are imageSize × imageSize. Default: the data's own size for the built-in set,
   * IDX, CIFAR and packs; required for image folders.
   */
  imageSize?: number;
  /** 1 or 3; 'auto' (default) keeps the data's own (image folders: RGB unless every image is grayscale, logged). */
  channels?: Channels | 'auto';
  /** Which split of the built-in set, Fashion-MNIST, IDX or CIFAR folders. Default 'train'. */
  split?: 'train' | 'test';
  /** Read the folder(s) as unlabeled: every image at any depth, labels −1. */
  unlabeled?: boolean;
  /**
   * The packed cache for image folders: true (default) keeps packs under DAWNET_CACHE or
   * ~/.cache/dawnet/packs; a string is the folder to keep them in; false decodes on every read.
   */
  cache?: boolean | string;
  /** Called while a pack is being built. */
  onProgress?: (done: number, total: number) => void;
  onWarning?: WarningHandler;
  /** Informational lines (building a cache); stderr by default. */
  onInfo?: (message: string) => void;
  /** Decoding threads for folders; the shared pool by default. */
  pool?: DecodePool;
}

/** Where packs are kept by default. */
export function defaultCacheRoot(): string {
  if (process.env.DAWNET_CACHE) return process.env.DAWNET_CACHE;
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'dawnet', 'packs');
}

function fileFingerprint(paths: string[]): Fingerprint {
  return paths.map((p) => {
    const s = statSync(p);
    return [p, s.size, s.mtimeMs];
  });
}

function listingFingerprint(listing: FolderListing): Fingerprint {
  return listing.files.map((f) => [f.path, f.size, f.mtimeMs]);
}

function listSource(spec: SourceSpec & { kind: 'image-folder' | 'unlabeled-folder' }, warn: WarningHandler): FolderListing {
  return spec.kind === 'image-folder' ? listImageFolder(spec.root, { onWarning: warn }) : listUnlabeledFolders(spec.roots, { onWarning: warn });
}

function channelsOf(requested: Channels | 'auto' | undefined, fallback: Channels): Channels {
  return requested === undefined || requested === 'auto' ? fallback : requested;
}

/** The cache folder for a source at a size and channel count. */
function cacheDirFor(root: string, spec: SourceSpec, imageSize: number, channels: Channels): string {
  const key = createHash('sha1').update(JSON.stringify(spec)).digest('hex').slice(0, 12);
  const name = spec.kind === 'image-folder' ? spec.root : spec.kind === 'unlabeled-folder' ? spec.roots[0]! : 'data';
  return join(root, `${basename(name) || 'root'}-${imageSize}px-${channels}c-${key}`);
}

/** Opens a folder source through the cache (building or rebuilding it as needed) or directly. */
async function openFolder(spec: SourceSpec & { kind: 'image-folder' | 'unlabeled-folder' }, options: OpenOptions): Promise<Dataset> {
  const warn = options.onWarning ?? stderrWarning;
  const listing = listSource(spec, warn);
  if (options.imageSize === undefined) {
    throw new DataError(`--imageSize is needed to read the image folder ${listing.roots.join(', ')} (images are resized to imageSize × imageSize)`);
  }
  checkImageSize(options.imageSize);
  const info = options.onInfo ?? ((m: string) => process.stderr.write(`${m}\n`));
  let channels: Channels;
  if (options.channels === undefined || options.channels === 'auto') {
    const chosen = chooseChannels(listing.files);
    channels = chosen.channels;
    info(`${listing.roots.join(', ')}: ${channels} channel(s), ${chosen.reason}; --channels ${channels === 1 ? 3 : 1} changes it`);
  } else channels = options.channels;
  const folderOptions = { imageSize: options.imageSize, channels, onWarning: warn, pool: options.pool };
  if (options.cache === false) return new FileDataset(listing, folderOptions);
  const root = typeof options.cache === 'string' ? resolve(options.cache) : defaultCacheRoot();
  // Half-written packs of killed processes are large: cleared at every open, not only at a rebuild.
  removeStaleTemps(root);
  const dir = cacheDirFor(root, spec, options.imageSize, channels);
  const fingerprint = listingFingerprint(listing);
  const index = readPackIndex(dir);
  const build = (why: string) => {
    info(`${why} the packed cache of ${listing.roots.join(', ')} (${listing.files.length} images, ${options.imageSize}px) in ${dir}`);
    return writePack(new FileDataset(listing, folderOptions), dir, { source: spec, fingerprint, onProgress: options.onProgress, onWarning: warn });
  };
  if (!index || !packMatches(index, fingerprint, options.imageSize, channels)) await build(index ? 'rebuilding' : 'building');
  try {
    return openPack(dir, { onWarning: warn });
  } catch (err) {
    // The cache is dawnet's own: a damaged one (a truncated shard) is rebuilt, not reported.
    if (!(err instanceof DataError)) throw err;
    warn(`${err.message.replace(/;.*$/, '')}`);
    await build('rebuilding the damaged');
    return openPack(dir, { onWarning: warn });
  }
}

/** A pack given as the dataroot: rebuilt in place when its source still exists and has changed. */
async function openPackDir(dir: string, index: PackIndex, options: OpenOptions): Promise<Dataset> {
  const warn = options.onWarning ?? stderrWarning;
  if (options.imageSize !== undefined && options.imageSize !== index.imageSize) {
    throw new DataError(`the pack at ${dir} holds ${index.imageSize}px images, not ${options.imageSize}px; make another with npm run pack-data -- --imageSize ${options.imageSize}`);
  }
  const channels = channelsOf(options.channels, index.channels);
  if (channels !== index.channels) throw new DataError(`the pack at ${dir} holds ${index.channels}-channel images, not ${channels}`);
  const spec = index.source;
  const rebuild = async (dataset: Dataset, fingerprint: Fingerprint): Promise<void> => {
    if (!packMatches(index, fingerprint, index.imageSize, index.channels)) {
      (options.onInfo ?? ((m: string) => process.stderr.write(`${m}\n`)))(`the source of the pack at ${dir} changed: rebuilding it`);
      await writePack(dataset, dir, { source: spec, fingerprint, onProgress: options.onProgress, onWarning: warn });
    }
    await dataset.close();
  };
  try {
    if (spec?.kind === 'image-folder' || spec?.kind === 'unlabeled-folder') {
      const exists = spec.kind === 'image-folder' ? existsSync(spec.root) : spec.roots.every((r) => existsSync(r));
      if (exists) {
        const listing = listSource(spec, warn);
        await rebuild(new FileDataset(listing, { imageSize: index.imageSize, channels: index.channels, onWarning: warn, pool: options.pool }), listingFingerprint(listing));
      }
    } else if (spec?.kind === 'idx' && existsSync(spec.images) && existsSync(spec.labels)) {
      await rebuild(idxDataset({ ...spec, imageSize: index.imageSize, channels: index.channels }), fileFingerprint([spec.images, spec.labels]));
    } else if (spec?.kind === 'cifar' && findCifar(spec.dir)) {
      const dataset = cifarDataset(spec.dir, { ...spec, imageSize: index.imageSize, channels: index.channels });
      await rebuild(dataset, fileFingerprint(cifarFiles(spec)));
    }
  } catch (err) {
    // A source that is now unusable leaves the pack as the data.
    if (!(err instanceof DataError)) throw err;
    warn(`the source of the pack at ${dir} cannot be read (${err.message}); using the pack as it is`);
  }
  return openPack(dir, { onWarning: warn });
}

/** The files a CIFAR split is read from (for fingerprints). */
export function cifarFiles(spec: SourceSpec & { kind: 'cifar' }): string[] {
  const layout = findCifar(spec.dir);
  if (!layout) return [];
  const names =
    layout.version === 10 ? (spec.split === 'train' ? [1, 2, 3, 4, 5].map((k) => `data_batch_${k}.bin`) : ['test_batch.bin']) : [`${spec.split}.bin`];
  return names.map((n) => join(layout.dir, n)).filter((p) => existsSync(p));
}

/** How a dataroot will be read, without reading it. */
export function describeSource(dataroot: string | undefined, options: Pick<OpenOptions, 'split' | 'unlabeled'> = {}): SourceSpec | { kind: 'pack'; dir: string } | { kind: 'fashion-mnist' } {
  const split = options.split ?? 'train';
  if (dataroot === undefined || dataroot === '' || dataroot === 'builtin' || dataroot === BUILTIN_NAME) {
    return { kind: 'image-folder', root: builtinRoot(split) };
  }
  if (dataroot === 'fashion-mnist') return { kind: 'fashion-mnist' };
  const dir = resolve(dataroot);
  if (readPackIndex(dir)) return { kind: 'pack', dir };
  // IDX and CIFAR files are recognised before a folder is taken as loose images: read unlabeled,
  // they serve as images whose labels go unused.
  const idx = existsSync(dir) ? findIdxFiles(dir, split) : null;
  if (idx) return { kind: 'idx', ...idx };
  if (existsSync(dir) && findCifar(dir)) return { kind: 'cifar', dir, split, labelKind: 'fine' };
  return options.unlabeled ? { kind: 'unlabeled-folder', roots: [dir] } : { kind: 'image-folder', root: dir };
}

/**
 * Opens the data at `dataroot` (see describeSource): undefined or 'builtin' is the built-in
 * Fashion-MNIST subset, 'fashion-mnist' the Debian package's IDX files; several roots are read as
 * unlabeled folders concatenated. Throws DataError for anything unusable.
 */
export async function openDataset(dataroot: string | readonly string[] | undefined, options: OpenOptions = {}): Promise<Dataset> {
  if (Array.isArray(dataroot) && dataroot.length > 1) {
    return openFolder({ kind: 'unlabeled-folder', roots: dataroot.map((r: string) => resolve(r)) }, options);
  }
  const root = Array.isArray(dataroot) ? (dataroot[0] as string | undefined) : (dataroot as string | undefined);
  const spec = describeSource(root, options);
  const split = options.split ?? 'train';
  switch (spec.kind) {
    case 'fashion-mnist':
      return fashionMnist({ split, imageSize: options.imageSize, channels: channelsOf(options.channels, 1) });
    case 'pack':
      return openPackDir(spec.dir, readPackIndex(spec.dir)!, options);
    case 'idx':
      return idxDataset({ images: spec.images, labels: spec.labels, imageSize: options.imageSize, channels: channelsOf(options.channels, 1) });
    case 'cifar':
      return cifarDataset(spec.dir, { split, imageSize: options.imageSize, channels: channelsOf(options.channels, 3) });
    case 'image-folder':
    case 'unlabeled-folder': {
      const builtin = root === undefined || root === '' || root === 'builtin' || root === BUILTIN_NAME;
      if (builtin && !existsSync(spec.kind === 'image-folder' ? spec.root : '')) {
        throw new DataError(`the built-in data set is missing from ${spec.kind === 'image-folder' ? spec.root : ''}; restore data/ from the repository`);
      }
      const imageSize = options.imageSize ?? (builtin ? 28 : undefined);
      return openFolder(spec, { ...options, imageSize });
    }
  }
}
