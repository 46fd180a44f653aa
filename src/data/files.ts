// Image files on disk: walking folders (sorted, hidden entries skipped, symlinks followed once per
// real folder and file), the channel count a folder decodes to, the fingerprint a packed cache is
// checked against (paths, sizes, modification times), and FileDataset, which decodes its files
// in the DecodePool's threads on every read.
import { closeSync, openSync, readdirSync, readSync, statSync, type Stats } from 'node:fs';
import { join, relative } from 'node:path';
import type { Dataset, ReadFailure } from './dataset.js';
import { sampleBytes } from './dataset.js';
import { headerChannels, IMAGE_EXTENSIONS, isImagePath, type Channels } from './decode.js';
import { DataError, SkipLog, stderrWarning, type WarningHandler } from './errors.js';
import { sharedDecodePool, type DecodePool } from './workers.js';

/** An image file and what the cache fingerprint records of it. */
export interface FileEntry {
  path: string;
  size: number;
  mtimeMs: number;
}

/** Options shared by the folder readers. */
export interface FolderOptions {
  /** Images are resized (shorter side) and centre-cropped to imageSize × imageSize. */
  imageSize: number;
  /** 1 (grayscale) or 3 (RGB); 'auto' (default): RGB unless every image is grayscale (chooseChannels). */
  channels?: Channels | 'auto';
  /** Where warnings go (skipped images, ignored files); stderr by default. */
  onWarning?: WarningHandler;
  /** The decoding threads; the process-wide shared pool by default. */
  pool?: DecodePool;
}

const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function statOrNull(path: string): Stats | null {
  try {
    return statSync(path);
  } catch {
    return null;
  }
}

/** A folder that must exist: DataError naming it otherwise. */
export function requireFolder(path: string, what: string): void {
  const stat = statOrNull(path);
  if (!stat) throw new DataError(`${what} not found: ${path}`);
  if (!stat.isDirectory()) throw new DataError(`${what} is not a folder: ${path}`);
}

/** Sub-folders of dir, sorted, hidden ones skipped. */
export function subfolders(dir: string): string[] {
  return readdirSync(dir)
    .filter((name) => !name.startsWith('.') && statOrNull(join(dir, name))?.isDirectory())
    .sort(byName);
}

/** The real folders and files a listing has already taken, by device and inode. */
export type Visited = Set<string>;

const realId = (stat: Stats): string => `${stat.dev}:${stat.ino}`;

/** Marks `dir` visited (a listing's root and class folders, before walking them). */
export function markVisited(visited: Visited, dir: string): void {
  const stat = statOrNull(dir);
  if (stat) visited.add(realId(stat));
}

/**
 * Every image under dir at any depth (sorted walk), and the other non-hidden files met. Symlinks
 * are followed, but each real folder and file is taken once across everything that shares
 * `visited`: a link to an ancestor (or to another class's folder) adds no image twice and none
 * under the wrong class.
 */
export function walkImages(dir: string, visited: Visited = new Set()): { images: FileEntry[]; others: string[] } {
  const images: FileEntry[] = [];
  const others: string[] = [];
  const visit = (folder: string): void => {
    for (const name of readdirSync(folder).sort(byName)) {
      if (name.startsWith('.')) continue;
      const path = join(folder, name);
      const stat = statOrNull(path);
      if (!stat || !(stat.isDirectory() || stat.isFile())) continue;
      const id = realId(stat);
      if (visited.has(id)) continue;
      visited.add(id);
      if (stat.isDirectory()) visit(path);
      else if (isImagePath(name)) images.push({ path, size: stat.size, mtimeMs: stat.mtimeMs });
      else others.push(path);
    }
  };
  markVisited(visited, dir);
  visit(dir);
  return { images, others };
}

/** Warns once about files under root that are not images by their name (hidden files are not counted). */
export function warnIgnored(root: string, others: string[], warn: WarningHandler): void {
  if (others.length === 0) return;
  const listed = others.slice(0, 5).map((p) => relative(root, p));
  const more = others.length > 5 ? `, … and ${others.length - 5} more` : '';
  warn(`ignored ${others.length} file(s) in ${root} that are not ${IMAGE_EXTENSIONS.join('/')}: ${listed.join(', ')}${more}`);
}

function readHead(path: string, bytes: number): Uint8Array {
  const fd = openSync(path, 'r');
  try {
    const head = new Uint8Array(bytes);
    return head.subarray(0, readSync(fd, head, 0, bytes, 0));
  } finally {
    closeSync(fd);
  }
}

/** The channel count an image file's header declares; null when it cannot be read. */
function fileChannels(path: string): Channels | null {
  try {
    // PNG's colour type is at byte 25; a JPEG frame header can follow a large EXIF block.
    return headerChannels(readHead(path, 4096)) ?? headerChannels(readHead(path, 256 * 1024));
  } catch {
    return null;
  }
}

/**
 * The channels a folder is decoded to when the user does not say: 3 (RGB, as torchvision's
 * loader converts every image) unless every readable image is grayscale. The headers are read
 * until the first colour image, so a photo folder costs a read or two; `reason` says why, for the log.
 */
export function chooseChannels(files: readonly FileEntry[]): { channels: Channels; reason: string } {
  let gray = 0;
  for (const file of files) {
    const channels = fileChannels(file.path);
    if (channels === 3) return { channels: 3, reason: `RGB: ${file.path} is a colour image (grayscale images are converted, as torchvision does)` };
    if (channels === 1) gray++;
  }
  if (gray === 0) return { channels: 3, reason: 'RGB: no image header could be read' };
  return { channels: 1, reason: `grayscale: all ${gray} readable images are grayscale` };
}

export function checkImageSize(imageSize: number): void {
  if (!Number.isInteger(imageSize) || imageSize < 1 || imageSize > 4096) {
    throw new DataError(`imageSize must be an integer from 1 to 4096, got ${imageSize}`);
  }
}

/** What a folder reader found: the files, their labels and class names. */
export interface FolderListing {
  kind: 'image-folder' | 'unlabeled-folder';
  roots: string[];
  files: FileEntry[];
  labels: Int32Array;
  classes: string[];
}

/** Images decoded from their files on every read, in the decoding threads. */
export class FileDataset implements Dataset {
  readonly length: number;
  readonly labels: Int32Array;
  readonly classes: readonly string[];
  readonly channels: Channels;
  readonly imageSize: number;
  readonly skips: SkipLog;
  /** Width and height of each source image, filled in as images are decoded (0 before). */
  readonly sourceSizes: Int32Array;
  private readonly pool: DecodePool;

  constructor(readonly listing: FolderListing, options: FolderOptions) {
    checkImageSize(options.imageSize);
    this.length = listing.files.length;
    this.labels = listing.labels;
    this.classes = listing.classes;
    this.imageSize = options.imageSize;
    this.channels = options.channels === undefined || options.channels === 'auto' ? chooseChannels(listing.files).channels : options.channels;
    this.skips = new SkipLog(listing.roots.join(', '), options.onWarning ?? stderrWarning);
    this.pool = options.pool ?? sharedDecodePool();
    this.sourceSizes = new Int32Array(2 * this.length);
  }

  source(i: number): string {
    return this.listing.files[i]!.path;
  }

  async read(indices: ArrayLike<number>, out: Uint8Array): Promise<ReadFailure[]> {
    const bytes = sampleBytes(this);
    const failures: ReadFailure[] = [];
    const todo: number[] = [];
    for (let k = 0; k < indices.length; k++) {
      const i = indices[k]!;
      if (!Number.isInteger(i) || i < 0 || i >= this.length) throw new RangeError(`index ${i} is out of range for a data set of ${this.length} images`);
      // A file that failed once is not decoded again.
      if (this.skips.has(this.source(i))) failures.push({ position: k });
      else todo.push(k);
    }
    // One task per thread, at least 8 images each: enough to keep every thread busy.
    const tasks = Math.max(1, Math.min(this.pool.size, Math.ceil(todo.length / 8)));
    const per = Math.ceil(todo.length / tasks);
    await Promise.all(
      Array.from({ length: tasks }, async (_, t) => {
        const positions = todo.slice(t * per, (t + 1) * per);
        if (positions.length === 0) return;
        const reply = await this.pool.decode(positions.map((k) => this.source(indices[k]!)), this.imageSize, this.channels);
        const failed = new Map(reply.failures);
        positions.forEach((k, j) => {
          const reason = failed.get(j);
          if (reason !== undefined) {
            this.skips.add(this.source(indices[k]!), reason);
            failures.push({ position: k });
          } else {
            out.set(reply.pixels.subarray(j * bytes, (j + 1) * bytes), k * bytes);
            this.sourceSizes.set(reply.sizes.subarray(2 * j, 2 * j + 2), 2 * indices[k]!);
          }
        });
      }),
    );
    return failures.sort((a, b) => a.position - b.position);
  }

  flushWarnings(): void {
    this.skips.flush();
  }

  /** The shared pool outlives a data set; a pool passed in options is the caller's to close. */
  async close(): Promise<void> {}
}
