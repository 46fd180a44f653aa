// The data every training command starts from: a --dataroot opened as a training set and a
// held-out set (the source's own test split where it has one; else train/ and test/ or val/
// subfolders; else every tenth image held out), and the per-channel mean and std that
// normalisation uses, measured on the training images as RotNet's loaders do.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { BUILTIN_NAME } from '../data/builtin.js';
import { describeSource, openDataset, type OpenOptions } from '../data/open.js';
import { Subset, sampleBytes, type Dataset } from '../data/dataset.js';
import { indicesByClass } from '../data/loader.js';
import { DataError } from '../data/errors.js';

export interface Splits {
  train: Dataset;
  test: Dataset;
  /** How the held-out set was found, for the log. */
  testFrom: string;
  /** Closes what was opened (worker threads, files). */
  close(): Promise<void>;
}

const HOLD_OUT_EVERY = 10;

function subfolderSplits(root: string): [string, string] | null {
  const train = join(root, 'train');
  const test = ['test', 'val'].map((n) => join(root, n)).find((p) => existsSync(p));
  return existsSync(train) && test ? [train, test] : null;
}

const closeBoth = (a: Dataset, b: Dataset) => async () => {
  await a.close();
  await b.close();
};

/** Opens `dataroot` as a training set and a held-out set. */
export async function openSplits(dataroot: string | undefined, options: Pick<OpenOptions, 'imageSize' | 'channels' | 'unlabeled'> = {}): Promise<Splits> {
  const spec = describeSource(dataroot, { split: 'test', unlabeled: options.unlabeled });
  const builtin = dataroot === undefined || dataroot === '' || dataroot === 'builtin' || dataroot === BUILTIN_NAME;
  const hasTestSplit = builtin || spec.kind === 'fashion-mnist' || spec.kind === 'idx' || spec.kind === 'cifar';
  if (hasTestSplit) {
    const train = await openDataset(dataroot, { ...options, split: 'train' });
    const test = await openDataset(dataroot, { ...options, imageSize: train.imageSize, channels: train.channels, split: 'test' });
    return { train, test, testFrom: 'the test split', close: closeBoth(train, test) };
  }
  const folders = dataroot && spec.kind !== 'pack' ? subfolderSplits(dataroot) : null;
  if (folders) {
    const train = await openDataset(folders[0], options);
    const test = await openDataset(folders[1], { ...options, imageSize: train.imageSize, channels: train.channels });
    if (test.classes.join('\n') !== train.classes.join('\n') && train.classes.length > 0) {
      throw new DataError(`${folders[1]} has classes [${test.classes.join(', ')}], but ${folders[0]} has [${train.classes.join(', ')}]`);
    }
    return { train, test, testFrom: folders[1], close: closeBoth(train, test) };
  }
  const all = await openDataset(dataroot, options);
  if (all.length < HOLD_OUT_EVERY) throw new DataError(`${dataroot}: ${all.length} image(s) are too few to hold out a test set (need ${HOLD_OUT_EVERY})`);
  const index = Array.from({ length: all.length }, (_, i) => i);
  return {
    train: new Subset(all, index.filter((i) => i % HOLD_OUT_EVERY !== 0)),
    test: new Subset(all, index.filter((i) => i % HOLD_OUT_EVERY === 0)),
    testFrom: `every ${HOLD_OUT_EVERY}th image held out`,
    close: () => all.close(),
  };
}

/** Per-channel mean and std of pixel values in [0, 1], over up to `limit` evenly spaced images. */
export async function channelStats(dataset: Dataset, limit = 2000): Promise<{ mean: number[]; std: number[] }> {
  const count = Math.min(limit, dataset.length);
  const indices = Array.from({ length: count }, (_, k) => Math.floor((k * dataset.length) / count));
  const bytes = sampleBytes(dataset);
  const pixels = new Uint8Array(count * bytes);
  await dataset.read(indices, pixels);
  const plane = dataset.imageSize * dataset.imageSize;
  const sums = new Float64Array(dataset.channels);
  const squares = new Float64Array(dataset.channels);
  for (let k = 0; k < count; k++) {
    for (let c = 0; c < dataset.channels; c++) {
      const base = k * bytes + c * plane;
      for (let p = 0; p < plane; p++) {
        const v = pixels[base + p]! / 255;
        sums[c] = sums[c]! + v;
        squares[c] = squares[c]! + v * v;
      }
    }
  }
  const n = count * plane;
  const mean = [...sums].map((s) => s / n);
  const std = [...squares].map((s, c) => Math.sqrt(Math.max(s / n - mean[c]! ** 2, 1e-12)));
  return { mean, std };
}

/**
 * The first `perClass` images of each class (0: all of them) as the labeled training set, and
 * the next `valPerClass` of each class as a validation set (null when 0), as RotNet takes its
 * K labels per class.
 */
export function labeledSplit(dataset: Dataset, perClass: number, valPerClass = 0): { labeled: Dataset; val: Dataset | null } {
  const byClass = indicesByClass(dataset, 'this command needs labeled data (an image folder root/<class>/…, IDX, CIFAR or the built-in set)');
  if (perClass === 0 && valPerClass === 0) return { labeled: dataset, val: null };
  const labeled: number[] = [];
  const val: number[] = [];
  byClass.forEach((members, label) => {
    const k = perClass === 0 ? members.length - valPerClass : perClass;
    if (members.length < k + valPerClass || k < 1) {
      throw new DataError(`class '${dataset.classes[label]}' has ${members.length} image(s), fewer than the ${perClass || 1} labeled + ${valPerClass} validation per class asked for`);
    }
    labeled.push(...members.slice(0, k));
    val.push(...members.slice(k, k + valPerClass));
  });
  const sorted = (a: number[]) => a.sort((x, y) => x - y);
  return { labeled: new Subset(dataset, sorted(labeled)), val: valPerClass > 0 ? new Subset(dataset, sorted(val)) : null };
}

/** The images of a data set under new labels (pseudo-labels chosen by a teacher). */
export class Relabeled implements Dataset {
  readonly length: number;

  constructor(readonly dataset: Dataset, readonly indices: Int32Array, readonly labels: Int32Array, readonly classes: readonly string[]) {
    if (indices.length !== labels.length) throw new Error('Relabeled: one label per index is needed');
    this.length = indices.length;
  }

  get channels() {
    return this.dataset.channels;
  }
  get imageSize(): number {
    return this.dataset.imageSize;
  }
  source(i: number): string {
    return this.dataset.source(this.indices[i]!);
  }
  read(indices: ArrayLike<number>, out: Uint8Array) {
    return this.dataset.read(Int32Array.from(indices, (i) => this.indices[i]!), out);
  }
  /** The underlying data set belongs to whoever opened it. */
  async close(): Promise<void> {}
}
