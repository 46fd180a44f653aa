// Regenerates data/fashion-mnist-mini/ (the built-in data set) from Debian's Fashion-MNIST IDX
// files: the first K train and test images of each class, as 28 × 28 grayscale PNG files named
// by their index in the IDX file, under <label>-<class>/ so that sorted folder names keep the
// Fashion-MNIST label order.
//   npx tsx scripts/make-builtin-data.ts [--train 300] [--test 100] [--source /usr/share/datasets/fashion-mnist]
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { PNG } from 'pngjs';
import { BUILTIN_ROOT, FASHION_MNIST_CLASSES, FASHION_MNIST_DIR } from '../src/data/builtin.js';
import { DataError } from '../src/data/errors.js';
import { findIdxFiles, readIdx } from '../src/data/idx.js';

const HELP = `Usage: npx tsx scripts/make-builtin-data.ts [options]

Writes data/fashion-mnist-mini/{train,test}/<label>-<class>/<index>.png from Fashion-MNIST's IDX files.

Options:
  --train <int>     images per class from the training set (default: 300)
  --test <int>      images per class from the test set (default: 100)
  --source <dir>    folder with the IDX files (default: ${FASHION_MNIST_DIR})
  --help            show this help`;

/** "T-shirt/top" → "0-tshirt-top". */
export function folderName(label: number): string {
  return `${label}-${FASHION_MNIST_CLASSES[label]!.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').replace('t-shirt', 'tshirt')}`;
}

function writeSplit(source: string, split: 'train' | 'test', perClass: number): number {
  const files = findIdxFiles(source, split);
  if (!files) throw new DataError(`no Fashion-MNIST ${split} IDX files in ${source}; install them with \`sudo apt-get install dataset-fashion-mnist\``);
  const images = readIdx(files.images);
  const labels = readIdx(files.labels);
  const [, h, w] = images.dims as [number, number, number];
  const taken = new Array<number>(FASHION_MNIST_CLASSES.length).fill(0);
  let bytes = 0;
  for (let i = 0; i < labels.data.length && taken.some((t) => t < perClass); i++) {
    const label = labels.data[i]!;
    if (taken[label]! >= perClass) continue;
    taken[label]! += 1;
    const png = new PNG({ width: w, height: h, colorType: 0, inputColorType: 0, inputHasAlpha: false });
    png.data = Buffer.from(images.data.subarray(i * h * w, (i + 1) * h * w));
    const encoded = PNG.sync.write(png, { colorType: 0, inputColorType: 0, inputHasAlpha: false, deflateLevel: 9 });
    const dir = join(BUILTIN_ROOT, split, folderName(label));
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${String(i).padStart(5, '0')}.png`), encoded);
    bytes += encoded.length;
  }
  return bytes;
}

function main(): void {
  const { values } = parseArgs({
    options: { train: { type: 'string', default: '300' }, test: { type: 'string', default: '100' }, source: { type: 'string', default: FASHION_MNIST_DIR }, help: { type: 'boolean' } },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const train = Number(values.train);
  const test = Number(values.test);
  rmSync(BUILTIN_ROOT + '/train', { recursive: true, force: true });
  rmSync(BUILTIN_ROOT + '/test', { recursive: true, force: true });
  const bytes = writeSplit(values.source!, 'train', train) + writeSplit(values.source!, 'test', test);
  console.log(`wrote ${10 * (train + test)} PNG files (${(bytes / 2 ** 20).toFixed(2)} MiB) under ${BUILTIN_ROOT}`);
}

try {
  main();
} catch (err) {
  if (!(err instanceof DataError)) throw err;
  process.stderr.write(`error: ${err.message}\n`);
  process.exitCode = 1;
}
