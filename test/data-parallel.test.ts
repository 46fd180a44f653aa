// Data-parallel training (--devices, src/train/data-parallel.ts) on lavapipe, where one adapter
// holds several devices: a toy convolutional recipe (conv, batch norm, linear; SGD with Nesterov
// momentum and weight decay) gives after 5 steps the parameters of one device at the same global
// batch, batches that do not split evenly included; two runs on 2 devices are bit-identical; bad
// --devices values are one clear error.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError, parseCommand, type Flags } from '../src/cli/args.js';
import type { SesemiResult } from '../src/cli/commands/sesemi.js';
import { COMMANDS, runCommand } from '../src/cli/main.js';
import { readSafetensors } from '../src/checkpoint/safetensors.js';
import { BUILTIN_ROOT } from '../src/data/builtin.js';
import { backend } from '../src/runtime.js';
import { F, Generator, manualSeed, randn, tensor, type Tensor } from '../src/index.js';
import { BatchNorm2d, Conv2d, Flatten, Linear, ReLU, Sequential } from '../src/nn/index.js';
import { constant } from '../src/optim/schedules.js';
import { SGD } from '../src/optim/sgd.js';
import { DataParallel, parseDevices, shardBounds } from '../src/train/data-parallel.js';
import { trainLoop, type LoopBatch } from '../src/train/loop.js';
import { Run } from '../src/train/run.js';
import { asAccuracy, asLoss } from '../src/train/trainer.js';

const root = mkdtempSync(join(tmpdir(), 'dawnet-data-parallel-'));
const previousCache = process.env.DAWNET_CACHE;
afterAll(() => {
  if (previousCache === undefined) delete process.env.DAWNET_CACHE;
  else process.env.DAWNET_CACHE = previousCache;
  rmSync(root, { recursive: true, force: true });
});

/** 3 classes, 6 training and 2 test images each, from the built-in Fashion-MNIST subset. */
function tinyFolder(): string {
  const data = join(root, 'data');
  process.env.DAWNET_CACHE = join(root, 'cache');
  for (const [split, count] of [['train', 6], ['test', 2]] as const) {
    for (const cls of ['0-tshirt-top', '1-trouser', '7-sneaker']) {
      const to = join(data, split, cls);
      mkdirSync(to, { recursive: true });
      for (const f of readdirSync(join(BUILTIN_ROOT, split, cls)).sort().slice(0, count)) copyFileSync(join(BUILTIN_ROOT, split, cls, f), join(to, f));
    }
  }
  return data;
}

interface Toy extends LoopBatch {
  images: Tensor;
  labels: Tensor;
  hostLabels: Int32Array;
}

/** 5 steps per epoch of n images (1×6×6) each: by default 5, 3 + 2 on two devices, so the shares' weights matter. */
function toyLoader(n = 5): AsyncIterable<Toy> & { length: number } {
  return {
    length: 5,
    async *[Symbol.asyncIterator]() {
      for (let i = 0; i < 5; i++) {
        const images = randn([n, 1, 6, 6], { generator: new Generator(10 + i) }).keep();
        const hostLabels = Int32Array.from({ length: n }, (_, j) => (i + j) % 3);
        const labels = tensor(hostLabels, [n]).keep();
        yield { images, labels, hostLabels, size: n, dispose: () => (images.dispose(), labels.dispose()) };
      }
    },
  };
}

interface ToyResult {
  initial: Float32Array[];
  params: Float32Array[];
  /** Batch norm's running mean and variance. */
  buffers: Float32Array[];
  losses: number[];
}

/** Trains the toy recipe one epoch (5 steps) on `devices`; BN in eval style (running statistics) unless `bnTrain`. */
async function toyRun(name: string, devices: string, { bnTrain = false, syncBN = false, epochs = 1, resume = false, batch = 5 } = {}): Promise<ToyResult> {
  manualSeed(3);
  const model = new Sequential(new Conv2d(1, 4, 3, { padding: 1 }), new BatchNorm2d(4), new ReLU(), new Flatten(), new Linear(4 * 36, 3));
  const optimizer = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 5e-4 });
  const outf = join(root, name);
  const run = new Run(outf, 'test', resume ? { resume: outf } : {});
  const read = () => Promise.all(model.parameters().map(async (p) => (await p.toArray()) as Float32Array));
  try {
    const initial = await read();
    await trainLoop({
      run,
      epochs,
      verbIter: 1,
      devices,
      ...(resume ? { resume: outf } : {}),
      syncBN,
      loader: toyLoader(batch),
      optimizers: [optimizer],
      schedule: { schedule: constant(), perIteration: false },
      save: [{ model, optimizer, generators: {}, args: {} }],
      train: () => model.train(bnTrain),
      step: ({ images, labels }) => {
        const logits = model.forward(images);
        const loss = F.crossEntropy(logits, labels);
        loss.backward();
        return { loss: asLoss(loss), accuracy: asAccuracy(F.topkAccuracy(logits, labels, 1)) };
      },
    });
    const params = await read();
    const bn = model.at(1) as BatchNorm2d;
    const buffers = await Promise.all([bn.runningMean, bn.runningVar].map(async (t) => (await t.toArray()) as Float32Array));
    const losses = readFileSync(join(root, name, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { kind: string; loss: number })
      .filter((r) => r.kind === 'step')
      .map((r) => r.loss);
    return { initial, params, buffers, losses };
  } finally {
    run.close();
    optimizer.dispose();
    model.dispose();
  }
}

/** The largest |a − b| over every parameter. */
function maxDifference(a: Float32Array[], b: Float32Array[]): number {
  let worst = 0;
  a.forEach((p, i) => p.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - b[i]![j]!)))));
  return worst;
}

const once = <T>(fn: () => Promise<T>): (() => Promise<T>) => {
  let memo: Promise<T> | null = null;
  return () => (memo ??= fn());
};
const oneDevice = once(() => toyRun('one', '1'));
const twoDevices = once(() => toyRun('two', '2'));

describe('data-parallel training', () => {
  it('--devices 2 gives the parameters and losses of --devices 1 at the same global batch after 5 steps', async () => {
    const [one, two] = [await oneDevice(), await twoDevices()];
    expect(one.losses).toHaveLength(5);
    expect(two.losses).toHaveLength(5);
    expect(maxDifference(one.params, two.params)).toBeLessThan(1e-5);
    // The steps moved the parameters: the comparison is not between two untouched models.
    expect(maxDifference(one.initial, one.params)).toBeGreaterThan(1e-3);
    two.losses.forEach((l, i) => expect(Math.abs(l - one.losses[i]!)).toBeLessThan(1e-5));
  });

  it('two --devices 2 runs are bit-identical, batch norm on each device’s own share included', async () => {
    const a = await toyRun('bn-a', '2', { bnTrain: true });
    const b = await toyRun('bn-b', '2', { bnTrain: true });
    expect(maxDifference(a.params, b.params)).toBe(0);
    expect(a.losses).toEqual(b.losses);
    // With statistics per share, the result differs from one device's (as PyTorch's DataParallel).
    const one = await toyRun('bn-one', '1', { bnTrain: true });
    expect(maxDifference(a.params, one.params)).toBeGreaterThan(0);
  });

  it('--devices 2 --syncBN gives the parameters, running statistics and losses of --devices 1 with batch norm training, shares of 3 and 2', async () => {
    const one = await toyRun('sync-one', '1', { bnTrain: true });
    const two = await toyRun('sync-two', '2', { bnTrain: true, syncBN: true });
    expect(two.losses).toHaveLength(5);
    expect(maxDifference(one.params, two.params)).toBeLessThan(1e-5);
    expect(maxDifference(one.buffers, two.buffers)).toBeLessThan(1e-5);
    expect(maxDifference(one.initial, one.params)).toBeGreaterThan(1e-3);
    two.losses.forEach((l, i) => expect(Math.abs(l - one.losses[i]!)).toBeLessThan(1e-5));
    // Without --syncBN the shares' own statistics give another result: the comparison can fail.
    const local = await toyRun('sync-local', '2', { bnTrain: true });
    expect(maxDifference(one.params, local.params)).toBeGreaterThan(1e-4);
    // And two --syncBN runs are bit-identical.
    const again = await toyRun('sync-again', '2', { bnTrain: true, syncBN: true });
    expect(maxDifference(two.params, again.params)).toBe(0);
    expect(again.losses).toEqual(two.losses);
  });

  it('--devices 2 --syncBN with batch norm inputs bound in windows still gives one device’s parameters', async () => {
    const one = await toyRun('sync-window-one', '1', { bnTrain: true, batch: 8 });
    const previous = process.env.DAWNET_MAX_BINDING;
    // Replicas open with DAWNET_MAX_BINDING; device 0 is lowered here. A share of 4 samples of
    // batch norm input is 2,304 bytes, over 1,792; the linear layer's weight (1,728) fits.
    process.env.DAWNET_MAX_BINDING = '1792';
    backend().setBindingLimit('1792');
    const windowsBefore = backend().windowed;
    try {
      const two = await toyRun('sync-window-two', '2', { bnTrain: true, syncBN: true, batch: 8 });
      expect(backend().windowed).toBeGreaterThan(windowsBefore);
      expect(maxDifference(one.params, two.params)).toBeLessThan(1e-5);
      expect(maxDifference(one.buffers, two.buffers)).toBeLessThan(1e-5);
    } finally {
      if (previous === undefined) delete process.env.DAWNET_MAX_BINDING;
      else process.env.DAWNET_MAX_BINDING = previous;
      backend().setBindingLimit(previous);
    }
  });

  it('--resume with 2 devices continues bit for bit: 1 epoch, then a resumed second, equals 2 epochs at once', async () => {
    const whole = await toyRun('whole', '2', { bnTrain: true, epochs: 2 });
    await toyRun('halves', '2', { bnTrain: true, epochs: 1 });
    const resumed = await toyRun('halves', '2', { bnTrain: true, epochs: 2, resume: true });
    expect(whole.losses).toHaveLength(10);
    expect(resumed.losses).toEqual(whole.losses);
    expect(maxDifference(resumed.params, whole.params)).toBe(0);
  });

  it('a batch of fewer images than devices runs whole on device 0, the replicas updated alike', async () => {
    const one = await toyRun('single-one', '1', { batch: 1, bnTrain: true });
    const two = await toyRun('single-two', '2', { batch: 1, bnTrain: true });
    // Bit for bit: the same step on the same device, the replica kept equal (checked each epoch by the loop).
    expect(maxDifference(one.params, two.params)).toBe(0);
    expect(two.losses).toEqual(one.losses);
  });

  it('replicas that drift are caught: a parameter changed on device 0 alone fails the check', async () => {
    manualSeed(5);
    const model = new Linear(3, 2);
    const optimizer = new SGD(model.parameters(), { lr: 0.1 });
    const parallel = await DataParallel.open('2', [model], [optimizer]);
    try {
      await parallel!.checkInSync();
      backend().write(model.weight.view, new Float32Array(6).fill(0.5));
      await expect(parallel!.checkInSync()).rejects.toThrow(/device 1's parameter 0 differs from device 0's at element 0 .* the replicas drifted/);
    } finally {
      parallel?.close();
      optimizer.dispose();
      model.dispose();
    }
  });

  it('train:sesemi --devices 2 trains through the command: rotated unlabeled and labeled batches shared between the devices', async () => {
    const data = tinyFolder();
    const outf = join(root, 'sesemi');
    const r = (await runCommand('train:sesemi', ['--dataroot', data, '--imageSize', '16', '--model', 'nin', '--ninStages', '3', '--trainSamples', '2', '--batchSize', '3', '--epochs', '1', '--verbIter', '1', '--devices', '2', '--outf', outf])) as SesemiResult;
    expect(r.steps).toBeGreaterThan(0);
    const lines = readFileSync(join(outf, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
    const steps = lines.filter((l) => (l.kind as unknown) === 'step');
    expect(steps).toHaveLength(r.steps);
    for (const s of steps) for (const k of ['loss', 'loss_supervised', 'loss_rotation']) expect(Number.isFinite(s[k])).toBe(true);
    expect(existsSync(join(outf, 'net_epoch_1.safetensors'))).toBe(true);
  });

  it('train:dcgan --devices 2 --syncBN, its optimizers stepped inside the step, gives the networks of --devices 1', async () => {
    const data = tinyFolder();
    // SGD: Adam's first steps move every weight by ±lr whatever the gradient's size, so rounding
    // in a near-zero gradient could flip one; SGD's steps follow the gradients' values.
    const gan = ['--dataroot', data, '--imageSize', '32', '--nz', '8', '--ngf', '8', '--ndf', '8', '--batchSize', '6', '--epochs', '1', '--verbIter', '1', '--optimizer', 'sgd', '--lr', '0.05'];
    const weights = async (outf: string): Promise<Map<string, Float32Array>> => {
      const all = new Map<string, Float32Array>();
      for (const net of ['netG', 'netD']) {
        for (const [name, t] of (await readSafetensors(join(outf, `${net}_epoch_1.safetensors`))).tensors) if (t.dtype === 'F32') all.set(`${net}.${name}`, t.data as Float32Array);
      }
      return all;
    };
    const losses = (outf: string) => readFileSync(join(outf, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).filter((r) => r.kind === 'step').map((r) => [r.loss_D, r.loss_G] as number[]);
    await runCommand('train:dcgan', [...gan, '--outf', join(root, 'gan-one')]);
    await runCommand('train:dcgan', [...gan, '--devices', '2', '--syncBN', '--outf', join(root, 'gan-two')]);
    const [one, two] = [await weights(join(root, 'gan-one')), await weights(join(root, 'gan-two'))];
    expect([...two.keys()]).toEqual([...one.keys()]);
    expect(one.size).toBeGreaterThan(10);
    // Within float32 rounding carried through 3 steps of two networks (torch.allclose's rule; the
    // running variances and momentum buffers reach magnitudes of 10 and more).
    let worst = 0;
    for (const [name, a] of one) a.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - two.get(name)![i]!) / (1e-5 + 1e-4 * Math.abs(v)))));
    expect(worst).toBeLessThan(1);
    const [l1, l2] = [losses(join(root, 'gan-one')), losses(join(root, 'gan-two'))];
    expect(l1).toHaveLength(3);
    l2.forEach(([d, g], i) => (expect(Math.abs(d! - l1[i]![0]!)).toBeLessThan(1e-4), expect(Math.abs(g! - l1[i]![1]!)).toBeLessThan(1e-4)));
    // Without --syncBN each device normalises its own share: the comparison above can fail.
    await runCommand('train:dcgan', [...gan, '--devices', '2', '--outf', join(root, 'gan-local')]);
    const local = await weights(join(root, 'gan-local'));
    let apart = 0;
    for (const [name, a] of one) a.forEach((v, i) => (apart = Math.max(apart, Math.abs(v - local.get(name)![i]!) / (1e-5 + 1e-4 * Math.abs(v)))));
    expect(apart).toBeGreaterThan(1);
  });

  it('cuts a batch into shares with the remainder on the first devices', () => {
    expect(shardBounds(5, 2)).toEqual([0, 3, 5]);
    expect(shardBounds(1, 2)).toEqual([0, 1, 1]);
    expect(shardBounds(8, 4)).toEqual([0, 2, 4, 6, 8]);
  });

  it('bad --devices values are one clear error', async () => {
    const parse = (argv: string[]) => parseCommand(COMMANDS['train:rotnet']!.spec as { name: string; summary: string; flags: Flags }, argv);
    expect(parseDevices('2')).toEqual({ count: 2 });
    expect(parseDevices('all')).toEqual({ all: true });
    expect(parseDevices('NVIDIA, AMD')).toEqual({ names: ['NVIDIA', 'AMD'] });
    for (const [value, message] of [
      ['0', /--devices 0: a count must be 1 to 64/],
      ['-2', /--devices -2: a count must be 1 to 64/],
      ['a,,b', /--devices 'a,,b': expected a count \(2\), all, or adapter names/],
    ] as const) {
      expect(() => parse([`--devices=${value}`])).toThrow(UsageError);
      expect(() => parse([`--devices=${value}`])).toThrow(message);
    }
    await expect(DataParallel.open('no-such-gpu', [], [])).rejects.toThrow(/--devices: no adapter named 'no-such-gpu' \(this machine's adapters: '/);
    // A step that uses a tensor outside the replicated modules names the problem instead of crashing the device.
    manualSeed(3);
    const model = new Linear(36, 3);
    const optimizer = new SGD(model.parameters(), { lr: 0.1 });
    const scale = tensor(Float32Array.of(2), []).keep();
    const stray = new Run(join(root, 'stray'), 'test', {});
    const straySync = new Run(join(root, 'stray-sync'), 'test', {});
    try {
      const loop = trainLoop({
        run: stray, epochs: 1, verbIter: 1, devices: '2', loader: toyLoader(), optimizers: [optimizer], save: [{ model, optimizer, generators: {}, args: {} }], train: () => {},
        step: ({ images, labels }) => {
          const loss = F.mul(F.crossEntropy(model.forward(images.reshape([-1, 36])), labels), scale);
          loss.backward();
          return { loss: asLoss(loss) };
        },
      });
      await expect(loop).rejects.toThrow(/is a tensor of another device; in data-parallel training \(--devices\) a step may use only tensors of the modules the loop replicates/);
      // The same under --syncBN, whose steps are held back: the held work is dropped and device 0 works on.
      const held = trainLoop({
        run: straySync, epochs: 1, verbIter: 1, devices: '2', syncBN: true, loader: toyLoader(), optimizers: [optimizer], save: [{ model, optimizer, generators: {}, args: {} }], train: () => {},
        step: ({ images, labels }) => {
          const loss = F.mul(F.crossEntropy(model.forward(images.reshape([-1, 36])), labels), scale);
          loss.backward();
          return { loss: asLoss(loss) };
        },
      });
      await expect(held).rejects.toThrow(/is a tensor of another device/);
      expect([...(await F.add(scale, scale).toArray())]).toEqual([4]);
    } finally {
      stray.close();
      straySync.close();
      scale.dispose();
      optimizer.dispose();
      model.dispose();
    }
    // A recipe that steps optimizers it does not name is refused before any step.
    const run = new Run(join(root, 'gan'), 'test', {});
    try {
      const loop = trainLoop({ run, epochs: 1, verbIter: 1, devices: '2', loader: toyLoader(), save: [], train: () => {}, step: () => ({}) });
      await expect(loop).rejects.toThrow(/--devices 2: this recipe names no optimizers for the loop to replicate; it trains on one device/);
    } finally {
      run.close();
    }
  });
});
