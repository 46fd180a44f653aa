// train:sesemi — SESEMI (Tran, 2019): one network, two heads, trained jointly. Each step takes
// a labeled batch (cross-entropy on the classes) and an unlabeled batch of rotated images
// (cross-entropy on the rotation, weighted), with SESEMI's polynomial rate and linear warm-up.
// An epoch is one pass over the unlabeled images; the labeled ones cycle beside them.
import { buildModel } from '../../../models/registry.js';
import { noGrad } from '../../autograd/tape.js';
import { zeros } from '../../creation.js';
import { DataLoader, JointLoader } from '../../data/loader.js';
import * as F from '../../functional.js';
import type { FeatureNet } from '../../nn/feature-net.js';
import { Linear } from '../../nn/linear.js';
import { Module } from '../../nn/module.js';
import { defaultGenerator, Generator } from '../../random.js';
import { scope } from '../../scope.js';
import type { Tensor } from '../../tensor.js';
import { channelStats, labeledSplit, openSplits } from '../../train/splits.js';
import { evaluate, type Accuracy } from '../../train/evaluate.js';
import { Run } from '../../train/run.js';
import { anyLabelsLoss, requireStepFits, sgdStep } from '../../train/step-memory.js';
import { loopSettings, trainLoop } from '../../train/loop.js';
import { asAccuracy, asLoss } from '../../train/trainer.js';
import { UsageError } from '../args.js';
import { defineCommand, modelSpecOf, optimizerOf, outfOf, scheduleOf } from '../common.js';
import { requestedChannels, scheduleFlags, trainingFlags, unlabeledFlags } from '../flags.js';

/** The classifier with a rotation head beside it; its state dict is the classifier's plus rotation_head.*. */
class SesemiNet extends Module {
  readonly rotationHead: Linear;
  private readonly shared: string;

  constructor(readonly net: FeatureNet, featureShape: readonly number[], seed: number) {
    super();
    for (const [name, child] of net.namedChildren()) this.registerModule(name, child);
    this.shared = net.stageNames[net.stageNames.length - 2]!;
    this.rotationHead = this.registerModule('rotation_head', new Linear(featureShape[0]!, 4, { generator: new Generator(seed) }));
  }

  /** Rotation logits from the shared features (globally average-pooled when they are maps). */
  rotationLogits(x: Tensor): Tensor {
    const f = this.net.features(x, [this.shared])[this.shared]!;
    return this.rotationHead.forward(f.ndim === 4 ? F.mean(F.flatten(f, 2), 2) : f);
  }
}

export interface SesemiResult {
  outf: string;
  test: Accuracy;
  steps: number;
}

export const sesemi = defineCommand(
  {
    name: 'train:sesemi',
    summary: 'SESEMI: supervised cross-entropy on K labels per class plus rotation prediction on all images, jointly.',
    flags: {
      ...trainingFlags,
      ...unlabeledFlags,
      schedule: { ...scheduleFlags.schedule, default: 'poly' },
      lr: { type: 'number', default: 0.05, help: 'peak learning rate' },
      warmupEpochs: { type: 'number', default: 3, help: 'epochs of linear warm-up from warmupLr' },
      epochs: { type: 'int', default: 30, aliases: ['niter'], help: 'epochs (passes over the unlabeled images)' },
      batchSize: { type: 'int', default: 32, help: 'labeled images per step' },
      unlabeledBatchSize: { type: 'int', help: 'unlabeled images per step (default: --batchSize)' },
      rotationWeight: { type: 'number', default: 1, help: 'weight of the rotation loss' },
      augment: { type: 'boolean', default: true, help: 'random crop and horizontal flip on the labeled batch' },
    },
    epilog: 'Example: npm run train:sesemi -- --trainSamples 100 --model resnet18 --epochs 30',
  },
  async (a): Promise<SesemiResult> => {
    const outf = outfOf('train:sesemi', a);
    const splits = await openSplits(a.dataroot, { imageSize: a.imageSize, channels: requestedChannels(a.channels) });
    const extra = a.unlabeledRoot ? await openSplits(a.unlabeledRoot, { imageSize: splits.train.imageSize, channels: splits.train.channels, unlabeled: true }) : null;
    try {
      const { labeled } = labeledSplit(splits.train, a.trainSamples);
      const unlabeled = extra ? extra.train : splits.train;
      const normalize = await channelStats(unlabeled);
      const spec = modelSpecOf(a, splits.train, labeled.classes.length, normalize);
      const image = [spec.inChannels, spec.imageSize, spec.imageSize];
      const sesemiNet = () => {
        const net = buildModel(spec, a.manualSeed);
        const shared = net.stageNames[net.stageNames.length - 2]!;
        const shape = noGrad(() => scope(() => net.features(zeros([1, ...image]), [shared])[shared]!.shape.slice(1)));
        return new SesemiNet(net, shape, a.manualSeed + 20);
      };
      // The step: n labeled images through the classifier and the unlabeled batch beside them
      // (in the same ratio as the loaders') through the rotation head.
      const unlabeledPerLabeled = (a.unlabeledBatchSize ?? a.batchSize) / a.batchSize;
      requireStepFits(
        sgdStep(sesemiNet, (fresh, n) => {
          const u = Math.max(1, Math.round(n * unlabeledPerLabeled));
          F.add(anyLabelsLoss(fresh.net.forward(zeros([n, ...image]))), anyLabelsLoss(fresh.rotationLogits(zeros([u, ...image])))).backward();
        }),
        a.batchSize,
      );
      defaultGenerator.manualSeed(a.manualSeed);
      const order = new Generator(a.manualSeed + 1);
      const crop = a.augment ? { crop: { padding: Math.max(1, Math.round(spec.imageSize / 8)) }, hflip: 0.5 } : {};
      const main = new DataLoader(unlabeled, { batchSize: a.unlabeledBatchSize ?? a.batchSize, shuffle: true, generator: order, dropLast: true, transform: { rotation: 'random', normalize } });
      const beside = new DataLoader(labeled, { batchSize: a.batchSize, shuffle: true, generator: new Generator(a.manualSeed + 3), transform: { ...crop, normalize } });
      if (main.length === 0) throw new UsageError(`train:sesemi: ${unlabeled.length} unlabeled images are fewer than one batch of ${a.unlabeledBatchSize ?? a.batchSize}`);
      const joint = new JointLoader(main, beside);
      const testLoader = new DataLoader(splits.test, { batchSize: a.batchSize * 2, generator: new Generator(a.manualSeed + 2), transform: { normalize } });
      // The run folder before any GPU memory, so that a refused folder leaves none behind.
      const run = new Run(outf, 'train:sesemi', a);
      const model = sesemiNet();
      const net = model.net;
      const optimizer = optimizerOf(a, model.parameters());
      // One step: an unlabeled batch u (rotated) and a labeled batch l beside it.
      const pairs = {
        length: joint.length,
        async *[Symbol.asyncIterator]() {
          for await (const { main: u, beside: l } of joint) yield { u, l, size: u.size + l.size, dispose: () => (u.dispose(), l.dispose()) };
        },
      };
      let test: Accuracy | null = null;
      try {
        run.log(`train:sesemi: ${spec.model}, ${labeled.length} labeled + ${unlabeled.length} unlabeled images, ${splits.test.length} held out; output in ${outf}`);
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
          selectBy: 'testTop1',
          train: () => model.train(),
          step: ({ u, l }) => {
            const logits = net.forward(l.images);
            const supervisedLoss = F.crossEntropy(logits, l.labels);
            const rotationLoss = F.crossEntropy(model.rotationLogits(u.images), u.rotationLabels!);
            const loss = F.add(supervisedLoss, F.mul(rotationLoss, a.rotationWeight));
            loss.backward();
            return { loss: asLoss(loss), loss_supervised: asLoss(supervisedLoss), loss_rotation: asLoss(rotationLoss), top1: asAccuracy(F.topkAccuracy(logits, l.labels, 1)) };
          },
          evaluate: async () => {
            model.eval();
            test = await evaluate(testLoader, (x) => net.forward(x));
            return { testTop1: asAccuracy(test.top1), testTop5: test.top5 === undefined ? undefined : asAccuracy(test.top5) };
          },
        });
        model.eval();
        test ??= await evaluate(testLoader, (x) => net.forward(x));
        run.log(`train:sesemi: test top-1 ${(100 * test.top1).toFixed(2)} %`);
        run.metric({ kind: 'result', testTop1: test.top1, testTop5: test.top5, labeledPerClass: a.trainSamples });
        return { outf, test, steps: result.steps };
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
