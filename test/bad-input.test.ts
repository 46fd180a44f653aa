// Bad input in, one clear error (or the documented repair) out: flags out of range, file-system
// faults, damaged checkpoints and caches, odd folders (symlink loops, mixed gray and colour
// images), CIFAR and IDX files read as unlabeled data, out-of-range labels, mixed int/float
// arithmetic. Each `kinds` entry counts one kind of bad input these tests cover.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, describe, expect, it } from 'vitest';
import { removeStaleTemps } from '../src/atomic-file.js';
import { checkClassNames } from '../src/checkpoint/classes.js';
import { CheckpointError, loadCheckpoint, saveCheckpoint } from '../src/checkpoint/checkpoint.js';
import { readSafetensors } from '../src/checkpoint/safetensors.js';
import { UsageError, parseCommand, type Flags } from '../src/cli/args.js';
import { explainError, reportError } from '../src/cli/errors.js';
import { FLAG_RANGES } from '../src/cli/flags.js';
import { COMMANDS } from '../src/cli/main.js';
import { BUILTIN_ROOT } from '../src/data/builtin.js';
import { listImageFolder } from '../src/data/image-folder.js';
import { chooseChannels } from '../src/data/files.js';
import { describeSource, openDataset } from '../src/data/open.js';
import { openSplits } from '../src/train/splits.js';
import * as F from '../src/functional.js';
import { Linear } from '../src/nn/linear.js';
import { checkLabels, LabelError } from '../src/ops/losses.js';
import { Generator } from '../src/random.js';
import { Meter } from '../src/train/meter.js';
import { tensor } from '../src/creation.js';

const root = mkdtempSync(join(tmpdir(), 'dawnet-bad-input-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A PNG of w × h, gray (colour type 0) or RGB (2), filled with one value. */
function png(path: string, gray: boolean, value = 128, size = 8): void {
  const image = new PNG({ width: size, height: size });
  image.data = Buffer.alloc(size * size * 4, value);
  for (let i = 3; i < image.data.length; i += 4) image.data[i] = 255;
  writeFileSync(path, PNG.sync.write(image, { colorType: gray ? 0 : 2 }));
}

const parse = (command: string, argv: string[]) => parseCommand(COMMANDS[command]!.spec as { name: string; summary: string; flags: Flags }, argv);

describe('flags', () => {
  const cases: [string, string[], RegExp][] = [
    ['train:rotnet', ['--batchSize', '0'], /^train:rotnet: --batchSize must be at least 1, got 0$/],
    ['train:rotnet', ['--epochSize', '-5'], /--epochSize must be at least 1, got -5/],
    ['train:rotnet', ['--lr=-1'], /^train:rotnet: --lr must be at least 0, got -1$/],
    ['train:rotnet', ['--schedule', 'step', '--lrStep', '0'], /--lrStep must be at least 1, got 0/],
    ['train:rotnet', ['--momentum', '0'], /needs --momentum above 0; pass --no-nesterov for plain SGD/],
    ['train:rotnet', ['--epochs', '0'], /--epochs must be at least 1, got 0/],
    ['train:rotnet', ['--maxIters', '-1'], /--maxIters must be at least 0, got -1/],
    ['train:rotnet', ['--imageSize', '0'], /--imageSize must be at least 1 and at most 4096, got 0/],
    ['train:rotnet', ['--channels', '2'], /--channels must be one of 1, 3, got '2'/],
    ['train:dcgan', ['--beta1', '1'], /--beta1 must be at least 0 and below 1, got 1/],
    ['train:supervised', ['--ninStages', '9'], /--ninStages must be at least 3 and at most 5, got 9/],
    ['evaluate', ['--batchSize', '-3'], /--batchSize must be at least 1, got -3/],
  ];
  it.each(cases)('%s %j is one usage line', (command, argv, message) => {
    expect(() => parse(command, argv)).toThrow(UsageError);
    expect(() => parse(command, argv)).toThrow(message);
  });

  it('a dashed value of a string flag is one line that says how to pass it', () => {
    let text = '';
    try {
      parse('train:rotnet', ['--outf', '-x']);
    } catch (err) {
      text = (err as Error).message;
    }
    expect(text).toMatch(/ambiguous.*'--outf=-XYZ'/);
    expect(text).not.toContain('\n');
    expect(() => parse('train:rotnet', ['--lr', '-1e-3'])).toThrow('train:rotnet: --lr must be at least 0, got -0.001');
  });

  it('every numeric flag of every command has a range', () => {
    const unchecked = Object.values(COMMANDS).flatMap((c) =>
      Object.entries(c.spec.flags as Flags)
        .filter(([name, f]) => (f.type === 'int' || f.type === 'number') && !FLAG_RANGES[name])
        .map(([name]) => `${c.spec.name} --${name}`),
    );
    expect(unchecked).toEqual([]);
    expect(parse('train:rotnet', ['--momentum', '0', '--no-nesterov'])).toMatchObject({ momentum: 0, nesterov: false });
  });
});

describe('errors reaching the CLI', () => {
  const fsError = (code: string, path: string) => Object.assign(new Error(`${code}: raw`), { code, path, syscall: 'open' });

  it('file-system codes name the path and what to do, without a stack trace', () => {
    expect(explainError(fsError('ENOSPC', '/runs/a/net_epoch_3.safetensors'))).toEqual({
      message: 'error: the disk is full (writing /runs/a/net_epoch_3.safetensors); free some space, then continue with --resume (finished checkpoints are intact)',
      status: 1,
    });
    expect(explainError(fsError('EROFS', '/mnt/ro/run')).message).toBe('error: /mnt/ro/run is on a read-only file system; choose a writable --outf');
    expect(explainError(fsError('EACCES', '/root/x')).message).toMatch(/^error: permission denied: \/root\/x; choose a folder you can write to/);
    expect(explainError(fsError('ENOTDIR', '/etc/passwd/x')).message).toBe('error: /etc/passwd/x: part of this path is a file, not a folder');
    const cache = join(process.env.DAWNET_CACHE ?? join(process.env.HOME ?? '', '.cache', 'dawnet', 'packs'), 'x');
    expect(explainError(fsError('EACCES', cache)).message).toMatch(/set DAWNET_CACHE to a writable folder/);
  });

  it('an unwritable cache folder names DAWNET_CACHE', async () => {
    const file = join(root, 'cache-is-a-file');
    writeFileSync(file, '');
    const previous = process.env.DAWNET_CACHE;
    process.env.DAWNET_CACHE = join(file, 'packs');
    let message = '';
    try {
      await openDataset(join(BUILTIN_ROOT, 'test'), { imageSize: 8, onInfo: () => {} }).catch((err: unknown) => (message = explainError(err).message));
    } finally {
      if (previous === undefined) delete process.env.DAWNET_CACHE;
      else process.env.DAWNET_CACHE = previous;
    }
    expect(message).toMatch(/^error: .*cache-is-a-file.*: part of this path is a file, not a folder \(the packed-image cache: set DAWNET_CACHE to a writable folder/);
  });

  it('usage errors exit 2, JSON and library errors 1, bugs say so; none prints a stack', () => {
    expect(explainError(new UsageError('train:rotnet: bad'))).toEqual({ message: 'train:rotnet: bad', status: 2 });
    let syntax: unknown;
    try {
      JSON.parse('{"epoch": 1');
    } catch (err) {
      syntax = err;
    }
    expect(explainError(syntax).message).toMatch(/^error: a JSON file is damaged/);
    expect(explainError(new RangeError('index 9 is out of range')).message).toBe('error: index 9 is out of range');
    expect(explainError(new TypeError('x is undefined')).message).toMatch(/looks like a bug in dawnet; DAWNET_DEBUG=1 prints the stack trace/);
    for (const err of [new Error('a'), new TypeError('b'), fsError('ENOENT', '/x')]) expect(explainError(err).message).not.toMatch(/\n\s+at /);
  });

  it('DAWNET_DEBUG=1 adds the stack trace, and only then', () => {
    const printed = (debug: boolean): string => {
      const lines: string[] = [];
      const write = process.stderr.write.bind(process.stderr);
      const previous = process.env.DAWNET_DEBUG;
      process.stderr.write = ((chunk: string) => lines.push(String(chunk)) > 0) as typeof process.stderr.write;
      if (debug) process.env.DAWNET_DEBUG = '1';
      else delete process.env.DAWNET_DEBUG;
      try {
        expect(reportError(new TypeError('x is undefined'))).toBe(1);
      } finally {
        process.stderr.write = write;
        if (previous === undefined) delete process.env.DAWNET_DEBUG;
        else process.env.DAWNET_DEBUG = previous;
      }
      return lines.join('');
    };
    expect(printed(false)).toBe('error: x is undefined (this looks like a bug in dawnet; DAWNET_DEBUG=1 prints the stack trace)\n');
    expect(printed(true)).toMatch(/^error: x is undefined\nTypeError: x is undefined\n\s+at /);
  });
});

describe('damaged checkpoints', () => {
  it('a text file is "not a safetensors file", not an 8-exabyte header', async () => {
    const path = join(root, 'notes.safetensors');
    writeFileSync(path, 'these are my notes, not a checkpoint\n');
    await expect(readSafetensors(path)).rejects.toThrow(`${path}: not a safetensors file`);
  });

  it('a damaged byte in the metadata JSON is one CheckpointError, before anything is loaded', async () => {
    const model = new Linear(3, 2, { generator: new Generator(1) });
    const path = join(root, 'damaged.safetensors');
    await saveCheckpoint(path, { model, epoch: 1, step: 2, args: { lr: 0.1 } });
    const bytes = readFileSync(path);
    const at = bytes.indexOf('{\\"lr\\"');
    expect(at).toBeGreaterThan(0);
    bytes[at] = '['.charCodeAt(0);
    writeFileSync(path, bytes);
    const before = await model.weight.toArray();
    await expect(loadCheckpoint(path, { model })).rejects.toThrow(CheckpointError);
    await expect(loadCheckpoint(path, { model })).rejects.toThrow(/metadata 'args' is damaged/);
    expect(await model.weight.toArray()).toEqual(before);
    model.dispose();
  });

  it('a checkpoint of another model lists a few mismatches, not hundreds', async () => {
    const small = new Linear(3, 2, { generator: new Generator(1) });
    const path = join(root, 'small.safetensors');
    await saveCheckpoint(path, { model: small });
    // Ten modules' worth of missing names.
    const { Sequential } = await import('../src/nn/container.js');
    const big = new Sequential(...Array.from({ length: 10 }, () => new Linear(2, 2, { generator: new Generator(2) })));
    let message = '';
    await loadCheckpoint(path, { model: big }).catch((err: Error) => (message = err.message));
    expect(message).toMatch(/problems; nothing was loaded/);
    expect(message.split('\n').length).toBeLessThanOrEqual(10);
    expect(message).toMatch(/… and \d+ more$/);
    small.dispose();
    big.dispose();
  });

  it('classifiers compare class names, not only counts', () => {
    const trained = { numClasses: 3, classNames: ['airplane', 'cat', 'ship'] };
    expect(() => checkClassNames('net.safetensors', trained, ['bird', 'dog', 'frog'], 'the test split')).toThrow(
      "net.safetensors was trained on the classes [airplane, cat, ship], but the test split has [bird, dog, frog] (class 0 is 'airplane' there, 'bird' here); use data with the same class folders",
    );
    expect(() => checkClassNames('n', trained, ['airplane', 'cat'], 'd')).toThrow(/class 2 is 'ship' there, 'missing' here/);
    expect(() => checkClassNames('n', trained, [], 'd')).toThrow(/no class names \(unlabeled images\)/);
    expect(() => checkClassNames('n', { numClasses: 2 }, ['a', 'b', 'c'], 'd')).toThrow('n has 2 classes, d has 3');
    checkClassNames('n', trained, ['airplane', 'cat', 'ship'], 'd');
  });
});

describe('labels and dtypes', () => {
  it('crossEntropy and topkAccuracy flag labels outside [0, C), read at the next check', async () => {
    await checkLabels();
    const logits = tensor(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
    for (const bad of [3, -1]) {
      const labels = tensor(Int32Array.of(0, bad), [2]);
      F.crossEntropy(logits, labels).dispose();
      await expect(checkLabels()).rejects.toThrow(LabelError);
      F.topkAccuracy(logits, labels).dispose();
      await expect(checkLabels()).rejects.toThrow(new RegExp(`1 label\\(s\\) outside \\[0, number of classes\\) reached crossEntropy or topkAccuracy \\(e\\.g\\. ${bad}\\)`));
      labels.dispose();
    }
    const good = tensor(Int32Array.of(2, 0), [2]);
    F.crossEntropy(logits, good).dispose();
    await checkLabels();
    // A training loop learns of it at its next report: the meters' readback checks the flag.
    const meter = new Meter();
    const bad = tensor(Int32Array.of(7, 0), [2]);
    const loss = F.crossEntropy(logits, bad);
    meter.add(loss);
    await expect(meter.mean()).rejects.toThrow(/e\.g\. 7/);
    meter.reset();
    for (const t of [good, bad, loss, logits]) t.dispose();
  });

  it('int32 tensors take no float arithmetic (PyTorch would promote; reading the bits as floats is refused)', () => {
    const ints = tensor(Int32Array.of(1, 2, 3), [3]);
    expect(() => F.add(ints, 1.5)).toThrow('affine: input 0 is int32 [3], it must be float32');
    expect(() => F.mul(ints, ints)).toThrow(/mul: input 0 is int32/);
    const labels = tensor(Int32Array.of(0), [1]);
    expect(() => F.crossEntropy(tensor(Int32Array.of(1, 2), [1, 2]), labels)).toThrow(/crossEntropy: input 0 is int32/);
    expect(() => F.crossEntropy(tensor(new Float32Array([1, 2]), [1, 2]), tensor(new Float32Array([0]), [1]))).toThrow(/labels must be int32|input 1 is float32/);
    ints.dispose();
    labels.dispose();
  });
});

describe('folders', () => {
  it('a symlink to an ancestor or to another class adds no image twice and none under the wrong class', () => {
    const dir = join(root, 'linked');
    for (const c of ['cat', 'dog']) {
      mkdirSync(join(dir, c), { recursive: true });
      for (let k = 0; k < 2; k++) png(join(dir, c, `${k}.png`), false);
    }
    symlinkSync(dir, join(dir, 'cat', 'loop'));
    symlinkSync(join(dir, 'dog'), join(dir, 'cat', 'dogs-too'));
    symlinkSync(join(dir, 'cat', '0.png'), join(dir, 'cat', 'again.png'));
    const listing = listImageFolder(dir, { onWarning: () => {} });
    expect(listing.files.length).toBe(4);
    expect([...listing.labels]).toEqual([0, 0, 1, 1]);
    expect(listing.files.map((f) => f.path.slice(dir.length + 1))).toEqual(['cat/0.png', 'cat/1.png', 'dog/0.png', 'dog/1.png']);
  });

  it('one grayscale image among colour ones gives RGB; a gray-only set gives gray; --channels decides otherwise', async () => {
    const mixed = join(root, 'mixed', 'a');
    mkdirSync(mixed, { recursive: true });
    png(join(mixed, '0-gray.png'), true, 10);
    for (let k = 1; k < 4; k++) png(join(mixed, `${k}.png`), false, 200);
    const gray = join(root, 'gray', 'a');
    mkdirSync(gray, { recursive: true });
    for (let k = 0; k < 3; k++) png(join(gray, `${k}.png`), true, 50);
    const files = (dir: string) => readdirSync(dir).sort().map((f) => ({ path: join(dir, f), size: 0, mtimeMs: 0 }));
    expect(chooseChannels(files(mixed))).toEqual({ channels: 3, reason: expect.stringMatching(/^RGB: .*1\.png is a colour image/) });
    expect(chooseChannels(files(gray))).toEqual({ channels: 1, reason: 'grayscale: all 3 readable images are grayscale' });
    const logged: string[] = [];
    const rgb = await openDataset(join(root, 'mixed'), { imageSize: 8, cache: false, onInfo: (m) => logged.push(m) });
    expect(rgb.channels).toBe(3);
    expect(logged[0]).toMatch(/3 channel\(s\), RGB: .* --channels 1 changes it$/);
    // The gray image is converted as PIL's convert('RGB'): three equal planes.
    const pixels = new Uint8Array(3 * 64);
    await rgb.read([0], pixels);
    expect([pixels[0], pixels[64], pixels[128]]).toEqual([10, 10, 10]);
    const asGray = await openDataset(join(root, 'mixed'), { imageSize: 8, cache: false, channels: 1, onInfo: () => {} });
    expect(asGray.channels).toBe(1);
  });

  it('CIFAR-10 and IDX folders are read as unlabeled data, as image folders are', async () => {
    const cifar = join(root, 'cifar');
    mkdirSync(cifar);
    const record = (label: number) => Buffer.concat([Buffer.of(label), Buffer.alloc(3072, 7 * label)]);
    for (const name of ['data_batch_1.bin', 'test_batch.bin']) writeFileSync(join(cifar, name), Buffer.concat(Array.from({ length: 4 }, (_, k) => record(k))));
    expect(describeSource(cifar, { unlabeled: true }).kind).toBe('cifar');
    const splits = await openSplits(cifar, { unlabeled: true });
    expect([splits.train.length, splits.train.channels, splits.train.imageSize]).toEqual([4, 3, 32]);
    await splits.close();

    const idx = join(root, 'idx');
    mkdirSync(idx);
    const be = (values: number[]) => {
      const b = Buffer.alloc(4 * values.length);
      values.forEach((v, i) => b.writeUInt32BE(v, 4 * i));
      return b;
    };
    for (const prefix of ['train', 't10k']) {
      writeFileSync(join(idx, `${prefix}-images-idx3-ubyte`), Buffer.concat([be([0x803, 3, 28, 28]), Buffer.alloc(3 * 784, 9)]));
      writeFileSync(join(idx, `${prefix}-labels-idx1-ubyte`), Buffer.concat([be([0x801, 3]), Buffer.of(0, 1, 2)]));
    }
    expect(describeSource(idx, { unlabeled: true }).kind).toBe('idx');
    const fromIdx = await openSplits(idx, { unlabeled: true });
    expect([fromIdx.train.length, fromIdx.train.channels]).toEqual([3, 1]);
    await fromIdx.close();
  });
});

describe('leftovers of a killed process', () => {
  it('stale temporary files and pack folders are removed; those of live processes are kept', () => {
    const dir = join(root, 'temps');
    mkdirSync(dir);
    const dead = 2 ** 22 + 12345; // above Linux's pid_max default: never a live process
    writeFileSync(join(dir, `net_epoch_2.safetensors.tmp-${dead}`), 'half');
    mkdirSync(join(dir, `.pack.tmp-${dead}-1700000000000`));
    writeFileSync(join(dir, `metrics.jsonl.tmp-${process.pid}`), 'in use');
    writeFileSync(join(dir, 'net_epoch_1.safetensors'), 'kept');
    expect(removeStaleTemps(dir).sort()).toEqual([`.pack.tmp-${dead}-1700000000000`, `net_epoch_2.safetensors.tmp-${dead}`]);
    expect(readdirSync(dir).sort()).toEqual([`metrics.jsonl.tmp-${process.pid}`, 'net_epoch_1.safetensors']);
  });

  it('a truncated shard of the automatic cache is rebuilt, not reported; a killed build’s temporary pack is removed', async () => {
    const src = join(root, 'cached', 'a');
    mkdirSync(src, { recursive: true });
    for (const f of readdirSync(join(BUILTIN_ROOT, 'train', '1-trouser')).sort().slice(0, 3)) copyFileSync(join(BUILTIN_ROOT, 'train', '1-trouser', f), join(src, f));
    const cache = join(root, 'cache');
    const quiet = { imageSize: 8, cache, onInfo: () => {}, onWarning: () => {} };
    (await openDataset(join(root, 'cached'), quiet)).close();
    const packDir = join(cache, readdirSync(cache)[0]!);
    const stale = join(cache, `.${readdirSync(cache)[0]!}.tmp-${2 ** 22 + 99}-1700000000000`);
    mkdirSync(stale);
    const shard = readdirSync(packDir).find((f) => f !== 'index.json')!;
    truncateSync(join(packDir, shard), 10);
    const warnings: string[] = [];
    const reopened = await openDataset(join(root, 'cached'), { ...quiet, onWarning: (m) => warnings.push(m) });
    expect(reopened.length).toBe(3);
    expect(warnings.join('\n')).toMatch(/truncated/);
    expect(existsSync(stale)).toBe(false);
    await reopened.close();
  });
});
