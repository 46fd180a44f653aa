// npm run pack-data: decodes a data set once into a dawnet pack (uint8 shards + a JSON index) that
// --dataroot can then point at. Image folders are packed on the fly by the loader too (in the
// cache folder); this command puts a pack where you choose, e.g. next to the images.
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseCommand, UsageError, type Command, type Flags } from '../src/cli/args.js';
import { runMain } from '../src/cli/errors.js';
import type { Dataset } from '../src/data/dataset.js';
import { FileDataset } from '../src/data/files.js';
import { findIdxFiles, idxDataset } from '../src/data/idx.js';
import { cifarDataset } from '../src/data/cifar.js';
import { FASHION_MNIST_CLASSES, FASHION_MNIST_DIR, fashionMnist } from '../src/data/builtin.js';
import { cifarFiles, describeSource } from '../src/data/open.js';
import { listImageFolder } from '../src/data/image-folder.js';
import { listUnlabeledFolders } from '../src/data/unlabeled-folder.js';
import { writePack, type Fingerprint, type SourceSpec } from '../src/data/pack.js';
import { DecodePool, defaultWorkerCount } from '../src/data/workers.js';

const flags = {
  dataroot: {
    type: 'string',
    multiple: true,
    help: 'image folder (<class>/<image>.png|jpg), IDX or CIFAR folder, or fashion-mnist; give it several times with --unlabeled',
  },
  imageSize: { type: 'int', help: 'resize (shorter side) and centre-crop images to this size; default: the data set\'s own for IDX/CIFAR' },
  out: { type: 'string', help: 'folder to write the pack into (created; an existing pack there is replaced)' },
  channels: { type: 'string', choices: ['auto', '1', '3'], default: 'auto', help: '1 = grayscale, 3 = RGB, auto = as the first image' },
  unlabeled: { type: 'boolean', help: 'read the folders as unlabeled images at any depth' },
  split: { type: 'string', choices: ['train', 'test'], default: 'train', help: 'split of IDX, CIFAR or fashion-mnist data' },
  workers: { type: 'int', default: defaultWorkerCount(), help: 'decoding threads' },
} as const satisfies Flags;

const command: Command<typeof flags> = {
  name: 'pack-data',
  summary: 'Decode a data set once into uint8 shards plus a JSON index (a dawnet pack) for fast loading.',
  flags,
  epilog: 'Example:\n  npm run pack-data -- --dataroot ~/data/pets --imageSize 64 --out ~/data/pets-64',
};

function stats(paths: string[]): Fingerprint {
  return paths.map((p) => {
    const s = statSync(p);
    return [p, s.size, s.mtimeMs];
  });
}

async function main(): Promise<void> {
  const args = parseCommand(command);
  if (!args) return;
  if (!args.out) throw new UsageError('pack-data: --out is required (see --help)');
  if (args.dataroot.length === 0) throw new UsageError('pack-data: --dataroot is required (see --help)');
  const channels = args.channels === 'auto' ? 'auto' : (Number(args.channels) as 1 | 3);
  const out = resolve(args.out);
  const split = args.split as 'train' | 'test';
  const pool = new DecodePool(args.workers);
  let dataset: Dataset;
  let source: SourceSpec | null;
  let fingerprint: Fingerprint;
  const described = args.unlabeled || args.dataroot.length > 1
    ? ({ kind: 'unlabeled-folder', roots: args.dataroot.map((r) => resolve(r)) } as const)
    : describeSource(args.dataroot[0], { split });
  const numeric = channels === 'auto' ? undefined : channels;
  switch (described.kind) {
    case 'pack':
      throw new UsageError(`pack-data: ${described.dir} is already a pack`);
    case 'fashion-mnist': {
      dataset = fashionMnist({ split, imageSize: args.imageSize, channels: numeric });
      const files = findIdxFiles(FASHION_MNIST_DIR, split)!;
      source = { kind: 'idx', ...files, classes: FASHION_MNIST_CLASSES };
      fingerprint = stats([files.images, files.labels]);
      break;
    }
    case 'idx':
      dataset = idxDataset({ images: described.images, labels: described.labels, imageSize: args.imageSize, channels: numeric });
      source = described;
      fingerprint = stats([described.images, described.labels]);
      break;
    case 'cifar':
      dataset = cifarDataset(described.dir, { split, imageSize: args.imageSize, channels: numeric });
      source = described;
      fingerprint = stats(cifarFiles(described));
      break;
    case 'image-folder':
    case 'unlabeled-folder': {
      const listing = described.kind === 'image-folder' ? listImageFolder(described.root) : listUnlabeledFolders(described.roots);
      if (args.imageSize === undefined) throw new UsageError('pack-data: --imageSize is required for image folders');
      dataset = new FileDataset(listing, { imageSize: args.imageSize, channels, pool });
      source = described;
      fingerprint = listing.files.map((f) => [f.path, f.size, f.mtimeMs]);
      break;
    }
  }
  const started = performance.now();
  let last = 0;
  const index = await writePack(dataset, out, {
    source,
    fingerprint,
    onProgress(done, total) {
      const now = performance.now();
      if (now - last > 1000 || done === total) {
        last = now;
        // A line that rewrites itself on a terminal, one line per second in a log.
        process.stderr.write(`${process.stderr.isTTY ? '\r' : ''}packed ${done}/${total} images${process.stderr.isTTY && done < total ? '' : '\n'}`);
      }
    },
  });
  await pool.close();
  const seconds = (performance.now() - started) / 1000;
  const mib = (index.count * index.channels * index.imageSize ** 2) / 2 ** 20;
  console.log(
    `wrote ${index.count} images (${index.channels}×${index.imageSize}×${index.imageSize}, ${mib.toFixed(1)} MiB in ${index.shards.length} shard(s)` +
      `${index.classes.length ? `, ${index.classes.length} classes` : ''}) to ${out} in ${seconds.toFixed(1)} s` +
      `${index.skipped.length ? `; skipped ${index.skipped.length} unreadable image(s)` : ''}`,
  );
}

await runMain(main);
