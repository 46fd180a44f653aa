// Data that needs no --dataroot: the small Fashion-MNIST subset shipped in data/ (PNG files in
// an image-folder layout, made by scripts/make-builtin-data.ts), and the full Fashion-MNIST by
// name when Debian's dataset-fashion-mnist package has put its IDX files in /usr/share/datasets.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MemoryDataset } from './dataset.js';
import type { Channels } from './decode.js';
import { DataError } from './errors.js';
import { findIdxFiles, idxDataset } from './idx.js';

/** The repository's data/ folder. */
export const DATA_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'data');

/** The built-in set: data/fashion-mnist-mini/{train,test}/<k>-<class>/NNNNN.png, 28 × 28 grayscale. */
export const BUILTIN_NAME = 'fashion-mnist-mini';
export const BUILTIN_ROOT = join(DATA_DIR, BUILTIN_NAME);

export function builtinRoot(split: 'train' | 'test' = 'train'): string {
  return join(BUILTIN_ROOT, split);
}

/** Where Debian's dataset-fashion-mnist package installs the IDX files. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** torchvision's FashionMNIST.classes, by label. */
export const FASHION_MNIST_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

export interface FashionMnistOptions {
  split?: 'train' | 'test';
  /** Default 28. */
  imageSize?: number;
  /** Default 1. */
  channels?: Channels;
  /** Default FASHION_MNIST_DIR. */
  dir?: string;
}

/** Fashion-MNIST (60,000 train / 10,000 test) from its IDX files; a DataError says how to install it. */
export function fashionMnist(options: FashionMnistOptions = {}): MemoryDataset {
  const dir = options.dir ?? FASHION_MNIST_DIR;
  const split = options.split ?? 'train';
  const files = findIdxFiles(dir, split);
  if (!files) {
    throw new DataError(
      `Fashion-MNIST is not installed (no ${split} IDX files in ${dir}). Install it with ` +
        '`sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or leave out --dataroot to use the small built-in set.',
    );
  }
  return idxDataset({ ...files, classes: FASHION_MNIST_CLASSES, imageSize: options.imageSize, channels: options.channels });
}
