// train:sesemi as open_sesemi.py runs it: the unlabeled batch is the four rotations of each image
// (labels 0–3), the unlabeled set is the training, validation and extra images, Dropout(0.5) acts
// on the supervised head in training only, --evaluate scores a checkpoint, and SESEMI's own
// command line reaches the trainer with its values. Tiny data: 3 classes of 16 px images.
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildModel, type ModelSpec } from '../models/registry.js';
import { parseCommand, UsageError } from '../src/cli/args.js';
import { sesemi, sesemiLoaders, SesemiNet, sesemiOptimizerArgs, unlabeledSet, type SesemiResult } from '../src/cli/commands/sesemi.js';
import type { EvaluateResult } from '../src/cli/commands/evaluate.js';
import { augmentOf, outfOf, scheduleOf } from '../src/cli/common.js';
import { runCommand } from '../src/cli/main.js';
import { BUILTIN_ROOT } from '../src/data/builtin.js';
import { sampleBytes } from '../src/data/dataset.js';
import { openDataset } from '../src/data/open.js';
import { noGrad } from '../src/autograd/tape.js';
import { Generator } from '../src/random.js';
import { randn } from '../src/creation.js';
import { scope } from '../src/scope.js';
import type { Tensor } from '../src/tensor.js';
import { labeledSplit, openSplits } from '../src/train/splits.js';

const root = mkdtempSync(join(tmpdir(), 'dawnet-sesemi-test-'));
const data = join(root, 'data');
const extra = join(root, 'extra');
const out = (name: string) => join(root, 'runs', name);
const previousCache = process.env.DAWNET_CACHE;
const classes = ['0-tshirt-top', '1-trouser', '7-sneaker'];

beforeAll(() => {
  process.env.DAWNET_CACHE = join(root, 'cache');
  // 3 classes, 8 training and 4 validation images each; 5 extra unlabeled images one folder down.
  for (const [split, count] of [['train', 8], ['test', 4]] as const) {
    for (const cls of classes) {
      const from = join(BUILTIN_ROOT, split, cls);
      mkdirSync(join(data, split, cls), { recursive: true });
      for (const f of readdirSync(from).sort().slice(0, count)) copyFileSync(join(from, f), join(data, split, cls, f));
    }
  }
  const from = join(BUILTIN_ROOT, 'test', '9-ankle-boot');
  mkdirSync(join(extra, 'boots'), { recursive: true });
  for (const f of readdirSync(from).sort().slice(0, 5)) copyFileSync(join(from, f), join(extra, 'boots', f));
});

afterAll(() => {
  if (previousCache === undefined) delete process.env.DAWNET_CACHE;
  else process.env.DAWNET_CACHE = previousCache;
  rmSync(root, { recursive: true, force: true });
});

const tiny = ['--dataroot', data, '--imageSize', '16', '--verbIter', '1', '--model', 'nin', '--ninStages', '3'];
let made: Promise<SesemiResult> | undefined;
/** One epoch with the extra folder, trained on first use. */
const sesemiRun = () =>
  (made ??= runCommand('train:sesemi', [...tiny, '--unlabeled-dir', extra, '--trainSamples', '2', '--epochs', '1', '--batchSize', '4', '--outf', out('sesemi')]) as Promise<SesemiResult>);

/** torch.rot90(x, k, dims=(0, 1)) of an s × s plane: counter-clockwise. */
function rot90(plane: Float32Array, s: number, k: number): Float32Array {
  let p = plane;
  for (let t = 0; t < k; t++) {
    const q = new Float32Array(s * s);
    for (let y = 0; y < s; y++) for (let x = 0; x < s; x++) q[y * s + x] = p[x * s + (s - 1 - y)]!;
    p = q;
  }
  return p;
}

describe('train:sesemi', () => {
  it('the unlabeled batch holds the four rotations of each image, labels 0–3 (pixels against a CPU rotation)', async () => {
    const splits = await openSplits(data, { imageSize: 16 });
    try {
      const unlabeled = unlabeledSet(splits, null, false).dataset;
      const identity = { mean: [0], std: [1] };
      // SESEMI's own (--augment sesemi, the default): crop padded by 2, flip, gamma.
      const sesemiAugment = augmentOf({ augment: 'sesemi' }, 16);
      expect(sesemiAugment).toEqual({ crop: { padding: 2 }, hflip: 0.5, gamma: [0.5, 1.5] });
      expect(augmentOf({ augment: 'sesemi' }, 224)).toEqual({ resizedCrop: { scale: [0.2, 1] }, hflip: 0.5, gamma: [0.5, 1.5] });
      for (const augment of [{}, sesemiAugment]) {
        const { main } = sesemiLoaders(splits.train, unlabeled, { batchSize: 3, unlabeledBatch: 5, augment, normalize: identity, seed: 7 });
        const it = main[Symbol.asyncIterator]();
        const batch = (await it.next()).value!;
        await it.return(undefined);
        expect(batch.images.shape).toEqual([20, 1, 16, 16]);
        expect(Array.from(await batch.rotationLabels!.toArray())).toEqual(Array.from({ length: 20 }, (_, i) => i % 4));
        const pixels = (await batch.images.toArray()) as Float32Array;
        const plane = (i: number) => pixels.subarray(i * 256, (i + 1) * 256);
        for (let img = 0; img < 5; img++) {
          expect(new Set(batch.indices.subarray(4 * img, 4 * img + 4)).size).toBe(1);
          // Without augmentation the first copy is the image itself; with it, the four copies
          // share one crop, flip and gamma, so each is a rotation of the first.
          const raw = new Uint8Array(sampleBytes(unlabeled));
          await unlabeled.read([batch.indices[4 * img]!], raw);
          const upright = augment.crop ? Float32Array.from(plane(4 * img)) : Float32Array.from(raw, (v) => Math.fround(v * Math.fround(1 / 255)));
          for (let k = 0; k < 4; k++) expect(plane(4 * img + k)).toBeAllClose(rot90(upright, 16, k), { rtol: 0, atol: 1e-6 });
        }
        batch.dispose();
      }
    } finally {
      await splits.close();
    }
  });

  it('the unlabeled set is training + validation + extra images, or training + extra with --excludeVal', async () => {
    const r = await sesemiRun();
    expect(r.unlabeled).toBe(24 + 12 + 5);
    expect(r.labeled).toBe(6);
    // One epoch: one pass over the unlabeled images, 4 per step (the last partial batch dropped).
    expect(r.steps).toBe(Math.floor(41 / 4));
    const log = readFileSync(join(out('sesemi'), 'metrics.jsonl'), 'utf8');
    expect(log).toContain('"unlabeled":41');
    const splits = await openSplits(data, { imageSize: 16 });
    const more = await openDataset([extra], { imageSize: 16, channels: 1, unlabeled: true });
    try {
      const excluded = unlabeledSet(splits, more, true);
      expect(excluded.dataset.length).toBe(24 + 5);
      expect(excluded.parts).toEqual(['24 training', '5 extra']);
      expect(unlabeledSet(splits, more, false).parts).toEqual(['24 training', `12 validation (${join(data, 'test')})`, '5 extra']);
      expect(Array.from(excluded.dataset.labels).every((l) => l === -1)).toBe(true);
    } finally {
      await splits.close();
      await more.close();
    }
  });

  it('Dropout(0.5) acts on the supervised head in training mode only', async () => {
    const spec: ModelSpec = { model: 'nin', ninStages: 3, numClasses: 3, inChannels: 1, imageSize: 16, normalize: { mean: [0], std: [1] }, classNames: classes };
    const net = buildModel(spec, 1);
    const model = new SesemiNet(net, [192, 4, 4], 5);
    const x = randn([2, 1, 16, 16], { generator: new Generator(3) }).keep();
    const logits = (f: () => Tensor) => noGrad(() => scope(() => f().keep()));
    try {
      expect(model.dropout.p).toBe(0.5);
      // Batch norm in training mode gives the same output for the same batch: any difference is dropout's.
      model.train();
      const train = [logits(() => model.classLogits(x)), logits(() => model.classLogits(x))];
      model.eval();
      const evaluated = [logits(() => model.classLogits(x)), logits(() => model.classLogits(x)), logits(() => net.forward(x))];
      const [a, b] = await Promise.all(train.map(async (t) => Array.from(await t.toArray())));
      const [c, d, plain] = await Promise.all(evaluated.map(async (t) => Array.from(await t.toArray())));
      expect(a).not.toEqual(b);
      expect(c).toEqual(plain);
      expect(d).toEqual(plain);
      for (const t of [...train, ...evaluated]) t.dispose();
    } finally {
      x.dispose();
      model.dispose();
    }
  });

  it('--evaluate scores a checkpoint on the validation split: top-1 as the run reported it', async () => {
    const r = await sesemiRun();
    const e = (await runCommand('train:sesemi', ['--data-dir', data, '--imageSize', '16', '--evaluate-only', '--checkpoint-path', out('sesemi')])) as EvaluateResult;
    expect(e.count).toBe(12);
    expect(e.top1).toBeCloseTo(r.test.top1, 6);
    await expect(runCommand('train:sesemi', ['--data-dir', data, '--evaluate-only'])).rejects.toThrow(UsageError);
    await expect(runCommand('train:sesemi', ['--data-dir', data, '--evaluate', extra])).rejects.toThrow(/holds neither net_best\.safetensors nor net_last/);
  });

  it("SESEMI's own command lines reach the trainer with their values", () => {
    const imagewoof = '--data-dir data/imagewoof2 --lr 0.1 --optimizer sgd --batch-size 32 --epochs 80 --warmup-lr 0.001 --warmup-epochs 10 --backbone resnet50 --run-id imagewoof_run01';
    const a = parseCommand(sesemi.spec, imagewoof.split(' '))!;
    expect(a).toMatchObject({ dataroot: 'data/imagewoof2', lr: 0.1, optimizer: 'sgd', batchSize: 32, epochs: 80, warmupLr: 0.001, warmupEpochs: 10, model: 'resnet50', runId: 'imagewoof_run01', schedule: 'poly', lrPower: 0.5, selectBy: 'top1', augment: 'sesemi' });
    expect(outfOf('train:sesemi', { outf: join('runs', a.runId!) })).toBe(join('runs', 'imagewoof_run01'));
    // The rate per iteration at 100 steps per epoch: warmupLr at 0, the peak after 10 epochs, then polynomial decay (power 0.5) to 0 at 80.
    const { schedule, perIteration } = scheduleOf(a, 100);
    expect(perIteration).toBe(true);
    expect(schedule(0, a.lr)).toBeCloseTo(0.001, 12);
    expect(schedule(1000, a.lr)).toBeCloseTo(0.1, 12);
    expect(schedule(4000, a.lr)).toBeCloseTo(0.1 * Math.sqrt(1 - 3000 / 7000), 12);
    const imagewang = parseCommand(sesemi.spec, ['--data-dir', 'imagewang', '--unlabeled-dir', 'imagewang/unsup', '--optimizer', 'adam', '--momentum', '0.9', '--lr-pow', '0.9'])!;
    expect(imagewang).toMatchObject({ dataroot: 'imagewang', unlabeledRoot: ['imagewang/unsup'], optimizer: 'adam', lrPower: 0.9, excludeVal: false, augment: 'sesemi' });
    // What the optimizer is built from: SGD with Nesterov, momentum 0.9 and decay 5e-4; Adam with β1 = --momentum and no decay.
    expect(sesemiOptimizerArgs(a)).toMatchObject({ optimizer: 'sgd', lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 5e-4 });
    expect(sesemiOptimizerArgs({ ...imagewang, momentum: 0.5 })).toMatchObject({ optimizer: 'adam', beta1: 0.5, beta2: 0.999, weightDecay: 0 });
  });
});
