// train:sesemi — SESEMI (Tran, 2019; the open_sesemi.py recipe): one network, two heads, trained
// jointly. Each step takes a labeled batch (cross-entropy on the classes, through Dropout(0.5))
// and an unlabeled batch expanded into its four rotations (cross-entropy on the rotation, labels
// 0–3, 4 × the batch), with SESEMI's polynomial rate and linear warm-up. The unlabeled images are
// the training, validation and extra folders together; an epoch is one pass over them, the
// labeled images cycling beside. `--evaluate <checkpoint>` scores a checkpoint on the validation
// split instead of training.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { buildModel } from '../../../models/registry.js';
import { noGrad } from '../../autograd/tape.js';
import { zeros } from '../../creation.js';
import type { AugmentOptions } from '../../data/augment.js';
import { UnlabeledConcat, type Dataset } from '../../data/dataset.js';
import { DataLoader, JointLoader } from '../../data/loader.js';
import { openDataset } from '../../data/open.js';
import * as F from '../../functional.js';
import { Dropout } from '../../nn/dropout.js';
import type { FeatureNet } from '../../nn/feature-net.js';
import { Linear } from '../../nn/linear.js';
import { Module } from '../../nn/module.js';
import { defaultGenerator, Generator } from '../../random.js';
import { scope } from '../../scope.js';
import type { Tensor } from '../../tensor.js';
import { channelStats, labeledSplit, openSplits, type Splits } from '../../train/splits.js';
import { evaluate, type Accuracy } from '../../train/evaluate.js';
import { Run } from '../../train/run.js';
import { anyLabelsLoss, requireStepFits, sgdStep } from '../../train/step-memory.js';
import { loopSettings, trainLoop } from '../../train/loop.js';
import { asAccuracy, asLoss } from '../../train/trainer.js';
import { UsageError } from '../args.js';
import { augmentOf, defineCommand, describeAugment, modelSpecOf, optimizerOf, outfOf, scheduleOf, selectKey, type OptimizerArgs } from '../common.js';
import { augmentFlags, dataFlags, modelFlags, optimizerFlags, requestedChannels, scheduleFlags, selectFlags, trainingFlags } from '../flags.js';
import { evaluateCommand, type EvaluateResult } from './evaluate.js';

/**
 * The classifier with a rotation head beside it, both on the shared features (globally
 * average-pooled when they are maps), as SESEMI's fc_labeled and fc_unlabeled; Dropout(0.5) sits
 * before the supervised head only. Its state dict is the classifier's plus rotation_head.*.
 */
export class SesemiNet extends Module {
  readonly rotationHead: Linear;
  readonly dropout: Dropout;
  private readonly shared: string;
  private readonly sharedMaps: boolean;

  constructor(readonly net: FeatureNet, featureShape: readonly number[], seed: number) {
    super();
    for (const [name, child] of net.namedChildren()) this.registerModule(name, child);
    this.shared = net.stageNames[net.stageNames.length - 2]!;
    this.sharedMaps = featureShape.length === 3;
    this.rotationHead = this.registerModule('rotation_head', new Linear(featureShape[0]!, 4, { generator: new Generator(seed) }));
    this.dropout = this.registerModule('dropout', new Dropout(0.5, new Generator(seed + 1)));
  }

  private pooled(x: Tensor): Tensor {
    const f = this.net.features(x, [this.shared])[this.shared]!;
    return this.sharedMaps ? F.mean(F.flatten(f, 2), 2) : f;
  }

  /**
   * Class logits through Dropout(0.5) (the identity in eval mode, where this is net.forward(x)).
   * A network whose shared features are maps pools them globally in its last stage (NIN), so the
   * pooled, dropped-out features go on as 1 × 1 maps: the same pooling, the dropout after it.
   */
  classLogits(x: Tensor): Tensor {
    const f = this.dropout.forward(this.pooled(x));
    return this.net.forwardFrom(this.shared, this.sharedMaps ? F.reshape(f, [...f.shape, 1, 1]) : f);
  }

  rotationLogits(x: Tensor): Tensor {
    return this.rotationHead.forward(this.pooled(x));
  }
}

/** What the rotation task reads: the parts of the unlabeled set and why each is there. */
export interface UnlabeledSet {
  dataset: Dataset;
  /** One line per part: its name and image count, for the log. */
  parts: string[];
}

/** SESEMI's unlabeled images: the training split, the validation split (unless excluded) and the extra folders. */
export function unlabeledSet(splits: Splits, extra: Dataset | null, excludeVal: boolean): UnlabeledSet {
  const parts: [Dataset, string][] = [[splits.train, `${splits.train.length} training`]];
  if (!excludeVal) parts.push([splits.test, `${splits.test.length} validation (${splits.testFrom})`]);
  if (extra) parts.push([extra, `${extra.length} extra`]);
  return { dataset: new UnlabeledConcat(parts.map(([d]) => d)), parts: parts.map(([, line]) => line) };
}

/**
 * The two loaders of a step: the unlabeled images, augmented, each then expanded into its four
 * rotations ([img0 r0, img0 r1, img0 r2, img0 r3, img1 r0, …], rotation labels 0–3, as SESEMI's
 * RotationTransformer collates them), and the labeled images beside them.
 */
export function sesemiLoaders(
  labeled: Dataset,
  unlabeled: Dataset,
  o: { batchSize: number; unlabeledBatch: number; augment: AugmentOptions; normalize: NonNullable<AugmentOptions['normalize']>; seed: number },
): { main: DataLoader; beside: DataLoader } {
  const main = new DataLoader(unlabeled, { batchSize: o.unlabeledBatch, shuffle: true, generator: new Generator(o.seed + 1), dropLast: true, transform: { ...o.augment, rotation: 'all', normalize: o.normalize } });
  const beside = new DataLoader(labeled, { batchSize: o.batchSize, shuffle: true, generator: new Generator(o.seed + 3), transform: { ...o.augment, normalize: o.normalize } });
  return { main, beside };
}

/**
 * The optimizer flags as open_sesemi.py reads them: with adam, --momentum (when given) is β1 and
 * the weight decay defaults to 0; with sgd, momentum 0.9 and decay 5e-4 (adamw: PyTorch's 1e-2).
 */
export function sesemiOptimizerArgs(a: Omit<OptimizerArgs, 'momentum' | 'weightDecay'> & { momentum?: number; weightDecay?: number }): OptimizerArgs {
  const decay = a.optimizer === 'sgd' ? 5e-4 : a.optimizer === 'adamw' ? 1e-2 : 0;
  return { ...a, momentum: a.momentum ?? 0.9, beta1: a.optimizer === 'sgd' ? a.beta1 : (a.momentum ?? a.beta1), weightDecay: a.weightDecay ?? decay };
}

/** A checkpoint path, or a run folder's net_best (net_last for a run stopped before its first epoch ended). */
function checkpointOf(path: string): string {
  if (!existsSync(path)) throw new UsageError(`--evaluate: ${path} does not exist`);
  if (!statSync(path).isDirectory()) return path;
  const found = ['net_best', 'net_last'].map((n) => join(path, `${n}.safetensors`)).find((f) => existsSync(f));
  if (!found) throw new UsageError(`--evaluate: the folder ${path} holds neither net_best.safetensors nor net_last.safetensors`);
  return found;
}

export interface SesemiResult {
  outf: string;
  test: Accuracy;
  steps: number;
  /** Images of the rotation task, and of the labeled set. */
  unlabeled: number;
  labeled: number;
}

export const sesemi = defineCommand(
  {
    name: 'train:sesemi',
    summary: 'SESEMI: supervised cross-entropy on K labels per class plus rotation prediction (all four rotations) on the training, validation and extra images, jointly.',
    flags: {
      ...trainingFlags,
      dataroot: { ...dataFlags.dataroot, aliases: ['data-dir'] },
      model: { ...modelFlags.model, aliases: ['backbone'] },
      unlabeledRoot: {
        type: 'string',
        multiple: true,
        aliases: ['unlabeled-dir'],
        help: 'extra unlabeled images (folders, any depth, all of them used), beside the training and validation images of --dataroot; repeat for several',
      },
      excludeVal: { type: 'boolean', default: false, help: 'leave the validation images out of the unlabeled set (SESEMI reports both settings)' },
      momentum: { ...optimizerFlags.momentum, default: undefined, help: 'SGD momentum (default 0.9); with adam, given, it is β1, as open_sesemi.py reads it' },
      weightDecay: { ...optimizerFlags.weightDecay, default: undefined, help: 'weight decay (default: 5e-4 with sgd; 0 with adam, as open_sesemi.py; 1e-2 with adamw, PyTorch’s)' },
      schedule: { ...scheduleFlags.schedule, default: 'poly' },
      lr: { type: 'number', default: 0.05, help: 'peak learning rate' },
      warmupEpochs: { type: 'number', default: 3, help: 'epochs of linear warm-up from warmupLr' },
      lrPower: { ...scheduleFlags.lrPower, aliases: ['lr-pow'] },
      epochs: { type: 'int', default: 30, aliases: ['niter'], help: 'epochs (passes over the unlabeled images)' },
      batchSize: { type: 'int', default: 32, help: 'labeled images per step (and unlabeled ones, each then rotated 4 ways)' },
      unlabeledBatchSize: { type: 'int', help: 'unlabeled images per step before their 4 rotations (default: --batchSize)' },
      rotationWeight: { type: 'number', default: 1, help: 'weight of the rotation loss' },
      ...selectFlags,
      ...augmentFlags,
      augment: {
        ...augmentFlags.augment,
        default: 'sesemi',
        choices: [...augmentFlags.augment.choices, 'sesemi'],
        help: `sesemi: SESEMI's augmentation on both batches (random crop padded by an eighth up to 64 px, random-resized-crop with scale 0.2–1 above; flip; gamma 0.5–1.5); ${augmentFlags.augment.help}`,
      },
      runId: { type: 'string', help: 'run name: the output folder is runs/<runId> unless --outf is given' },
      evaluate: { type: 'string', aliases: ['checkpoint-path'], help: 'a checkpoint (or run folder: its net_best, else net_last) to score on the validation split, top-1 and top-5, instead of training' },
      evaluateOnly: { type: 'boolean', default: false, help: 'as open_sesemi.py: evaluate and exit (needs --evaluate or --checkpoint-path)' },
    },
    epilog: [
      'Example: npm run train:sesemi -- --trainSamples 100 --model resnet18 --epochs 30',
      'SESEMI’s own: npm run train:sesemi -- --data-dir data/imagewoof2 --imageSize 224 --lr 0.1 --optimizer sgd --batch-size 32 --epochs 80 --warmup-lr 0.001 --warmup-epochs 10 --backbone resnet50 --run-id imagewoof_run01',
      'Evaluate:     npm run train:sesemi -- --data-dir data/imagewoof2 --evaluate runs/imagewoof_run01',
    ].join('\n'),
  },
  async (a): Promise<SesemiResult | EvaluateResult> => {
    if (a.evaluateOnly && a.evaluate === undefined) throw new UsageError('train:sesemi: --evaluate-only needs the checkpoint: --evaluate <file> (or --checkpoint-path)');
    if (a.evaluate !== undefined) {
      return evaluateCommand.run({ net: [checkpointOf(a.evaluate)], dataroot: a.dataroot, model: undefined, imageSize: a.imageSize, split: 'test', batchSize: a.batchSize });
    }
    const outf = outfOf('train:sesemi', { ...a, outf: a.outf ?? (a.runId === undefined ? undefined : join('runs', a.runId)) });
    const splits = await openSplits(a.dataroot, { imageSize: a.imageSize, channels: requestedChannels(a.channels) });
    const extra = a.unlabeledRoot.length > 0 ? await openDataset(a.unlabeledRoot, { imageSize: splits.train.imageSize, channels: splits.train.channels, unlabeled: true }) : null;
    try {
      const { labeled } = labeledSplit(splits.train, a.trainSamples);
      const unlabeled = unlabeledSet(splits, extra, a.excludeVal);
      const normalize = await channelStats(unlabeled.dataset);
      const spec = modelSpecOf(a, splits.train, labeled.classes.length, normalize);
      const selectBy = selectKey(a.selectBy, 'test', labeled.classes.length);
      const image = [spec.inChannels, spec.imageSize, spec.imageSize];
      const sesemiNet = () => {
        const net = buildModel(spec, a.manualSeed);
        const shared = net.stageNames[net.stageNames.length - 2]!;
        const shape = noGrad(() => scope(() => net.features(zeros([1, ...image]), [shared])[shared]!.shape.slice(1)));
        return new SesemiNet(net, shape, a.manualSeed + 20);
      };
      // The step: n labeled images through the classifier and the unlabeled images beside them
      // (in the loaders' ratio), four rotations each, through the rotation head.
      const unlabeledBatch = a.unlabeledBatchSize ?? a.batchSize;
      requireStepFits(
        sgdStep(sesemiNet, (fresh, n) => {
          const u = 4 * Math.max(1, Math.round((n * unlabeledBatch) / a.batchSize));
          F.add(anyLabelsLoss(fresh.classLogits(zeros([n, ...image]))), anyLabelsLoss(fresh.rotationLogits(zeros([u, ...image])))).backward();
        }),
        a.batchSize,
      );
      defaultGenerator.manualSeed(a.manualSeed);
      const augment = augmentOf(a, spec.imageSize);
      const { main, beside } = sesemiLoaders(labeled, unlabeled.dataset, { batchSize: a.batchSize, unlabeledBatch, augment, normalize, seed: a.manualSeed });
      const order = main.generator;
      if (main.length === 0) throw new UsageError(`train:sesemi: ${unlabeled.dataset.length} unlabeled images are fewer than one batch of ${unlabeledBatch}`);
      const joint = new JointLoader(main, beside);
      const testLoader = new DataLoader(splits.test, { batchSize: a.batchSize * 2, generator: new Generator(a.manualSeed + 2), transform: { normalize } });
      // The run folder before any GPU memory, so that a refused folder leaves none behind.
      const run = new Run(outf, 'train:sesemi', a);
      const model = sesemiNet();
      const net = model.net;
      const optimizer = optimizerOf(sesemiOptimizerArgs(a), model.parameters());
      // One step: an unlabeled batch u (4 rotations of each image) and a labeled batch l beside it.
      const pairs = {
        length: joint.length,
        async *[Symbol.asyncIterator]() {
          for await (const { main: u, beside: l } of joint) yield { u, l, size: u.size + l.size, dispose: () => (u.dispose(), l.dispose()) };
        },
      };
      let test: Accuracy | null = null;
      try {
        run.log(`train:sesemi: ${spec.model}, ${labeled.length} labeled images (${a.trainSamples || 'all'} per class of the training split)`);
        run.log(`train:sesemi: ${unlabeled.dataset.length} unlabeled images for the rotation task: ${unlabeled.parts.join(' + ')}, ${unlabeledBatch} × 4 rotations per step; augmentation: ${describeAugment(augment)}`);
        run.log(`train:sesemi: held out for evaluation: ${splits.test.length} images (${splits.testFrom})${a.excludeVal ? ', kept out of the unlabeled set (--excludeVal)' : ', also unlabeled images of the rotation task as in SESEMI (--excludeVal keeps them out)'}; output in ${outf}`);
        const result = await trainLoop({
          ...loopSettings(a),
          run,
          loader: pairs,
          optimizers: [optimizer],
          schedule: scheduleOf(a, main.length),
          save: [
            {
              model,
              optimizer,
              generators: { data: order, augment: main.augmentGenerator, labeled: beside.generator, labeledAugment: beside.augmentGenerator, global: defaultGenerator },
              args: { ...a, modelSpec: spec },
              classNames: labeled.classes,
            },
          ],
          selectBy,
          patience: a.patience,
          train: () => model.train(),
          step: ({ u, l }) => {
            const logits = model.classLogits(l.images);
            const supervisedLoss = F.crossEntropy(logits, l.labels);
            const rotationLoss = F.crossEntropy(model.rotationLogits(u.images), u.rotationLabels!);
            const loss = F.add(supervisedLoss, F.mul(rotationLoss, a.rotationWeight));
            loss.backward();
            return { loss: asLoss(loss), loss_supervised: asLoss(supervisedLoss), loss_rotation: asLoss(rotationLoss), top1: asAccuracy(F.topkAccuracy(logits, l.labels, 1)) };
          },
          evaluate: async () => {
            model.eval();
            test = await evaluate(testLoader, (x) => net.forward(x));
            return { testLoss: asLoss(test.loss), testTop1: asAccuracy(test.top1), testTop5: test.top5 === undefined ? undefined : asAccuracy(test.top5) };
          },
        });
        model.eval();
        test ??= await evaluate(testLoader, (x) => net.forward(x));
        run.log(`train:sesemi: test top-1 ${(100 * test.top1).toFixed(2)} %`);
        run.metric({ kind: 'result', testTop1: test.top1, testTop5: test.top5, labeledPerClass: a.trainSamples, unlabeled: unlabeled.dataset.length });
        return { outf, test, steps: result.steps, unlabeled: unlabeled.dataset.length, labeled: labeled.length };
      } finally {
        run.close();
        await joint.close();
        optimizer.dispose();
        model.dispose();
      }
    } finally {
      await splits.close();
      await extra?.close();
    }
  },
);
