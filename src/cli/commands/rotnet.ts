// train:rotnet — self-supervised RotNet pretraining (Gidaris et al., 2018): every image is shown
// at 0°, 90°, 180° and 270° in the same batch and the network learns to tell which. No labels are
// used; rotation accuracy on held-out images is measured after each epoch.
import { writeFileSync } from 'node:fs';
import { buildModel } from '../../../models/registry.js';
import { DataLoader } from '../../data/loader.js';
import { rotateBatch } from '../../data/rotate.js';
import type { Tensor } from '../../tensor.js';
import * as F from '../../functional.js';
import { defaultGenerator, Generator } from '../../random.js';
import { channelStats, openSplits } from '../../train/splits.js';
import { evaluate } from '../../train/evaluate.js';
import { imageGridPng } from '../../train/png.js';
import { Run } from '../../train/run.js';
import { requireClassifierStepFits } from '../../train/step-memory.js';
import { loopSettings, trainLoop } from '../../train/loop.js';
import { asAccuracy, asLoss } from '../../train/trainer.js';
import { augmentOf, defineCommand, describeAugment, modelSpecOf, optimizerOf, outfOf, scheduleOf, selectKey, transformOf } from '../common.js';
import { augmentFlags, machineFlags, optimizerFlags, requestedChannels, dataFlags, modelFlags, runFlags, scheduleFlags, selectFlags } from '../flags.js';

export interface RotnetResult {
  outf: string;
  epochs: number;
  steps: number;
  /** Held-out rotation accuracy after the last epoch. */
  rotationAccuracy: number;
  losses: number[];
}

export const rotnet = defineCommand(
  {
    name: 'train:rotnet',
    summary: 'RotNet pretraining: predict which of 0°, 90°, 180°, 270° each image was rotated by. Labels are not used.',
    flags: {
      ...dataFlags,
      ...modelFlags,
      ...optimizerFlags,
      ...scheduleFlags,
      ...augmentFlags,
      augment: { ...augmentFlags.augment, help: `${augmentFlags.augment.help} (RotNet's CIFAR pretraining crops and flips; the NYU solution flips)` },
      ...selectFlags,
      ...runFlags,
      ...machineFlags,
      rotations: { type: 'int', default: 4, help: '4: all four rotations of each image in one batch (RotNet); 3 (or 2): 0°, 120°, 240° resampled on the GPU (the flowers tutorial); 1: one random quarter turn per image' },
      epochSize: { type: 'int', help: 'images per epoch, drawn in order with repetition (default: the data set once)' },
    },
    epilog: 'Example: npm run train:rotnet -- --dataroot ~/photos --imageSize 32 --model resnet18 --epochs 100',
  },
  async (a): Promise<RotnetResult> => {
    // 2 or 3: K rotations by 360°/K resampled by kernels/rotate.wgsl, after the loader.
    const resampled = a.rotations === 2 || a.rotations === 3;
    const outf = outfOf('train:rotnet', a);
    const splits = await openSplits(a.dataroot, { imageSize: a.imageSize, channels: requestedChannels(a.channels), unlabeled: true });
    const { train, test, testFrom } = splits;
    const normalize = await channelStats(train);
    const classes = resampled ? a.rotations : 4;
    const spec = modelSpecOf(a, train, classes, normalize);
    spec.classNames = Array.from({ length: classes }, (_, k) => String((360 * k) / classes));
    // Corners turned in from outside the image are black, normalised as the image.
    const black = normalize.mean.map((m, c) => -m / normalize.std[c]!);
    const pretext = (b: { images: Tensor; rotationLabels: Tensor | null }) => (resampled ? rotateBatch(b.images, a.rotations, black) : { images: b.images, labels: b.rotationLabels! });
    // Held-out rotation prediction: top-1 or the loss (recorded as testAccuracy, testLoss).
    const selectBy = selectKey(a.selectBy, 'test', classes) === 'testTop1' ? 'testAccuracy' : 'testLoss';
    const augment = augmentOf(a, spec.imageSize);
    defaultGenerator.manualSeed(a.manualSeed);
    const data = new Generator(a.manualSeed + 1);
    const loader = new DataLoader(train, {
      batchSize: a.batchSize,
      shuffle: true,
      generator: data,
      ...(a.epochSize ? { epochSize: a.epochSize } : {}),
      transform: transformOf(normalize, { ...augment, ...(resampled ? {} : { rotation: a.rotations === 4 ? 'all' : 'random' }) }),
    });
    const heldOut = new DataLoader(test, { batchSize: a.batchSize, generator: new Generator(a.manualSeed + 2), transform: transformOf(normalize, resampled ? {} : { rotation: 'all' }) });
    requireClassifierStepFits(spec, [train.channels, train.imageSize, train.imageSize], a.batchSize, a.rotations);
    // The run folder before any GPU memory, so that a refused folder leaves none behind.
    const run = new Run(outf, 'train:rotnet', a);
    const model = buildModel(spec, a.manualSeed);
    const optimizer = optimizerOf(a, model.parameters());
    let rotationAccuracy = Number.NaN;
    try {
      run.log(`train:rotnet: ${spec.model} on ${train.length} images (${train.channels}×${train.imageSize}×${train.imageSize}), held out: ${test.length} (${testFrom}); ${loader.length} steps per epoch; ${a.optimizer}, ${describeAugment(augment)}; output in ${outf}`);
      const result = await trainLoop({
        ...loopSettings(a),
        run,
        loader,
        optimizers: [optimizer],
        schedule: scheduleOf(a, loader.length),
        save: [{ model, optimizer, generators: { data, augment: loader.augmentGenerator, global: defaultGenerator }, args: { ...a, modelSpec: spec }, classNames: spec.classNames }],
        selectBy,
        patience: a.patience,
        train: () => model.train(),
        firstBatch: async (batch) => {
          const { images } = pretext(batch);
          writeFileSync(run.path('rotations.png'), imageGridPng((await images.toArray()) as Float32Array, images.shape, { nrow: 8 }));
        },
        step: (batch) => {
          const { images, labels } = pretext(batch);
          const logits = model.forward(images);
          const loss = F.crossEntropy(logits, labels);
          loss.backward();
          return { loss: asLoss(loss), accuracy: asAccuracy(F.topkAccuracy(logits, labels, 1)) };
        },
        evaluate: async () => {
          model.eval();
          const acc = await evaluate(heldOut, (x) => model.forward(resampled ? rotateBatch(x, a.rotations, black).images : x), (b) => (resampled ? rotateBatch(b.images, a.rotations, black).labels : b.rotationLabels!));
          rotationAccuracy = acc.top1;
          return { testLoss: asLoss(acc.loss), testAccuracy: asAccuracy(acc.top1) };
        },
      });
      return { outf, epochs: result.history.length, steps: result.steps, rotationAccuracy, losses: result.ran.map((r) => r.loss ?? Number.NaN) };
    } finally {
      run.close();
      await splits.close();
      optimizer.dispose();
      model.dispose();
    }
  },
);
