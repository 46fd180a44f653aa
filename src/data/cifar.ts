// CIFAR-10 and CIFAR-100 binary batches (the "binary version" archives): each record is the
// label byte(s) then 3072 bytes of a 32 × 32 RGB image, plane by plane (R, G, B), i.e. already
// CHW. CIFAR-10: data_batch_1…5.bin (train), test_batch.bin (test), batches.meta.txt; CIFAR-100:
// train.bin, test.bin with a coarse and a fine label byte, fine_label_names.txt.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { MemoryDataset } from './dataset.js';
import { convertSamples, type Channels } from './decode.js';
import { DataError } from './errors.js';
import { checkImageSize } from './files.js';

const IMAGE_BYTES = 3 * 32 * 32;

/** torchvision's CIFAR10.classes, used when batches.meta.txt is absent. */
export const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

export interface CifarOptions {
  split?: 'train' | 'test';
  /** CIFAR-100's label: the 100 fine classes (default) or the 20 coarse superclasses. */
  labelKind?: 'fine' | 'coarse';
  /** Default 32. */
  imageSize?: number;
  /** Default 3; 1 converts to grayscale as PIL's convert('L'). */
  channels?: Channels;
}

type Layout = { version: 10 | 100; dir: string };

/** Finds a CIFAR binary folder at dir or in its usual sub-folder; null when there is none. */
export function findCifar(dir: string): Layout | null {
  for (const d of [dir, join(dir, 'cifar-10-batches-bin'), join(dir, 'cifar-100-binary')]) {
    if (existsSync(join(d, 'data_batch_1.bin')) || existsSync(join(d, 'test_batch.bin'))) return { version: 10, dir: d };
    if (existsSync(join(d, 'train.bin')) && existsSync(join(d, 'test.bin'))) return { version: 100, dir: d };
  }
  return null;
}

function names(path: string): string[] | null {
  if (!existsSync(path)) return null;
  return readFileSync(path, 'utf8').split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
}

/** A CIFAR-10 or CIFAR-100 split in memory. */
export function cifarDataset(dir: string, options: CifarOptions = {}): MemoryDataset {
  const layout = findCifar(dir);
  if (!layout) throw new DataError(`no CIFAR binary batches in ${dir} (expected data_batch_1.bin… or train.bin and test.bin)`);
  const split = options.split ?? 'train';
  const fine = (options.labelKind ?? 'fine') === 'fine';
  const labelBytes = layout.version === 10 ? 1 : 2;
  const files =
    layout.version === 10
      ? split === 'train'
        ? [1, 2, 3, 4, 5].map((k) => join(layout.dir, `data_batch_${k}.bin`)).filter((p) => existsSync(p))
        : [join(layout.dir, 'test_batch.bin')]
      : [join(layout.dir, `${split}.bin`)];
  const record = labelBytes + IMAGE_BYTES;
  let total = 0;
  for (const f of files) {
    if (!existsSync(f)) throw new DataError(`CIFAR ${split} batch not found: ${f}`);
    const size = statSync(f).size;
    if (size === 0 || size % record !== 0) throw new DataError(`${f}: ${size} bytes is not a whole number of ${record}-byte CIFAR-${layout.version} records`);
    total += size / record;
  }
  const pixels = new Uint8Array(total * IMAGE_BYTES);
  const labels = new Int32Array(total);
  let n = 0;
  for (const f of files) {
    const bytes = readFileSync(f);
    for (let at = 0; at < bytes.length; at += record, n++) {
      // CIFAR-100 records hold the coarse label then the fine one.
      labels[n] = labelBytes === 1 ? bytes[at]! : bytes[at + (fine ? 1 : 0)]!;
      pixels.set(bytes.subarray(at + labelBytes, at + record), n * IMAGE_BYTES);
    }
  }
  const classes =
    layout.version === 10
      ? (names(join(layout.dir, 'batches.meta.txt')) ?? CIFAR10_CLASSES)
      : (names(join(layout.dir, fine ? 'fine_label_names.txt' : 'coarse_label_names.txt')) ?? Array.from({ length: fine ? 100 : 20 }, (_, k) => String(k)));
  const maxLabel = labels.reduce((m, v) => Math.max(m, v), 0);
  if (maxLabel >= classes.length) throw new DataError(`${layout.dir}: label ${maxLabel} has no class name (${classes.length} known)`);
  const imageSize = options.imageSize ?? 32;
  checkImageSize(imageSize);
  const channels = options.channels ?? 3;
  const out = convertSamples(pixels, total, 3, 32, 32, imageSize, channels);
  return new MemoryDataset(out, labels, classes, channels, imageSize, `${layout.dir} (${split})`);
}
