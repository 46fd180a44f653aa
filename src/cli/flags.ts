// Flags that several commands share, declared once. Names are those of the PyTorch scripts the
// commands come from (RotNet, SESEMI, the DCGAN example).
import { MODEL_NAMES } from '../../models/registry.js';
import type { Flags } from './args.js';

export const dataFlags = {
  dataroot: {
    type: 'string',
    help: 'an image folder (root/<class>/*.png|jpg), an IDX or CIFAR folder, a pack, or fashion-mnist; the built-in Fashion-MNIST subset when left out',
  },
  imageSize: { type: 'int', help: 'resize images to imageSize × imageSize (default: the data’s own size; required for image folders)' },
  batchSize: { type: 'int', default: 128, help: 'images per step (before the rotation batch multiplies them by 4)' },
} as const satisfies Flags;

export const modelFlags = {
  model: { type: 'string', default: 'nin', choices: MODEL_NAMES, help: 'the network' },
  ninStages: { type: 'int', default: 4, help: 'stages of NIN (3 to 5)' },
} as const satisfies Flags;

export const sgdFlags = {
  lr: { type: 'number', default: 0.1, help: 'learning rate' },
  momentum: { type: 'number', default: 0.9, help: 'SGD momentum' },
  nesterov: { type: 'boolean', default: true, help: 'Nesterov momentum' },
  weightDecay: { type: 'number', default: 5e-4, help: 'L2 weight decay' },
} as const satisfies Flags;

export const scheduleFlags = {
  schedule: {
    type: 'string',
    default: 'lut',
    choices: ['lut', 'step', 'poly', 'cosine', 'constant'],
    help: "lut: RotNet's table (lr, ×0.2, ×0.04, ×0.008 from 30 %, 60 %, 80 % of the epochs: 60/120/160 of 200); step: ×gamma every lrStep epochs; poly: SESEMI's warm-up then (1 − t/T)^lrPower per iteration; cosine",
  },
  lrStep: { type: 'int', default: 30, help: 'epochs between decays (--schedule step)' },
  gamma: { type: 'number', default: 0.1, help: 'decay factor (--schedule step)' },
  warmupEpochs: { type: 'number', default: 0, help: 'epochs of linear warm-up from warmupLr (--schedule poly)' },
  warmupLr: { type: 'number', default: 0.001, help: 'rate that warm-up starts from (--schedule poly)' },
  lrPower: { type: 'number', default: 0.5, help: 'power of the polynomial decay (--schedule poly)' },
} as const satisfies Flags;

export const runFlags = {
  epochs: { type: 'int', default: 200, aliases: ['niter'], help: 'epochs to train' },
  outf: { type: 'string', help: 'output folder: checkpoints, metrics.jsonl, curves.png, args.json' },
  manualSeed: { type: 'int', default: 0, help: 'seed of every random choice (initialisation, data order, augmentation)' },
  resume: { type: 'string', help: 'a checkpoint (or a run folder: its latest epoch) to continue from, exactly' },
  verbIter: { type: 'int', default: 50, help: 'report the loss every verbIter steps' },
  maxIters: { type: 'int', default: 0, help: 'stop after this many steps in all (smoke runs; 0: no limit)' },
} as const satisfies Flags;

export const labelFlags = {
  trainSamples: { type: 'int', default: 0, help: 'labeled images per class, the first K of each class as RotNet takes them (0: all)' },
} as const satisfies Flags;

/** Unlabeled images beside the labeled ones (SESEMI, the student). */
export const unlabeledFlags = {
  unlabeledRoot: { type: 'string', help: 'unlabeled images (folders, any depth); default: every training image of --dataroot, labels unused' },
} as const satisfies Flags;

/** What every classifier-training command takes. */
export const trainingFlags = { ...dataFlags, ...labelFlags, ...modelFlags, ...sgdFlags, ...scheduleFlags, ...runFlags } as const satisfies Flags;
