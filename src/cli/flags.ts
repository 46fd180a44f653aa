// Flags that several commands share, declared once. Names are those of the PyTorch scripts the
// commands come from (RotNet, SESEMI, the DCGAN example).
import type { Channels } from '../data/decode.js';
import { MODEL_NAMES } from '../../models/registry.js';
import type { FlagRule, Flags, Range } from './args.js';
import { parseDevices } from '../train/data-parallel.js';

/** --channels: what every image is decoded to. */
export const channelFlags = {
  channels: {
    type: 'string',
    choices: ['1', '3'],
    help: 'decode every image to 1 (grayscale) or 3 (RGB) channels (default: the data’s own; image folders: RGB unless all images are grayscale, as logged)',
  },
} as const satisfies Flags;

/** The channel count --channels asks for, or undefined for the data's own. */
export function requestedChannels(flag: string | undefined): Channels | undefined {
  return flag === undefined ? undefined : flag === '1' ? 1 : 3;
}

export const dataFlags = {
  ...channelFlags,
  dataroot: {
    type: 'string',
    help: 'an image folder (root/<class>/*.png|jpg), an IDX or CIFAR folder, a pack, or fashion-mnist; the built-in Fashion-MNIST subset when left out',
  },
  imageSize: { type: 'int', help: 'resize images to imageSize × imageSize (default: the data’s own size; required for image folders)' },
  batchSize: { type: 'int', default: 128, help: 'images per step (before the rotation batch multiplies them by 4)' },
} as const satisfies Flags;

/** For the commands that read a checkpoint: names the model of a bare state dict. */
export const netModelFlag = {
  model: { type: 'string', choices: MODEL_NAMES, help: "the model in a bare state dict (.pth), when its names and shapes do not tell it; a dawnet checkpoint names its own" },
} as const satisfies Flags;

export const modelFlags = {
  model: { type: 'string', default: 'nin', choices: MODEL_NAMES, help: 'the network' },
  ninStages: { type: 'int', default: 4, help: 'stages of NIN (3 to 5)' },
  useAvgOnConv3: { type: 'boolean', default: false, help: "NIN: average-pool after conv3 (off as RotNet's CIFAR configs: conv3 and conv4 keep conv2's size)" },
} as const satisfies Flags;

/**
 * The optimizer of every training command: torch.optim.SGD (Nesterov by default, as RotNet),
 * Adam or AdamW with PyTorch's formulas (src/optim). optimizerOf (common.ts) builds it.
 */
export const optimizerFlags = {
  optimizer: { type: 'string', default: 'sgd', choices: ['sgd', 'adam', 'adamw'], help: 'sgd: torch.optim.SGD; adam: Adam (L2 decay in the gradient); adamw: AdamW (decoupled decay)' },
  lr: { type: 'number', default: 0.1, help: 'learning rate' },
  momentum: { type: 'number', default: 0.9, help: 'SGD momentum' },
  nesterov: { type: 'boolean', default: true, help: 'Nesterov momentum (SGD)' },
  weightDecay: { type: 'number', default: 5e-4, help: 'weight decay (SGD and Adam: L2 in the gradient; AdamW: decoupled)' },
  beta1: { type: 'number', default: 0.9, help: 'Adam/AdamW β1' },
  beta2: { type: 'number', default: 0.999, help: 'Adam/AdamW β2' },
} as const satisfies Flags;

/** RotNet's learning-rate tables (LUT_lr of its configs): [epoch until which, rate] rows. */
export const SCHEDULE_PRESETS: Readonly<Record<string, readonly (readonly [number, number])[]>> = {
  // config/CIFAR10_RotNet_NIN4blocks.py: 200 epochs of pretraining.
  rotnet: [[60, 0.1], [120, 0.02], [160, 0.004], [200, 0.0008]],
  // config/CIFAR10_ConvClassifier_on_RotNet_NIN4blocks_Conv2_feats.py (and the other CIFAR classifiers): 100 epochs.
  'rotnet-classifier': [[35, 0.1], [70, 0.02], [85, 0.004], [100, 0.0008]],
  // config/ImageNet_RotNet_AlexNet.py: 50 epochs, ×0.1 every 15.
  alexnet: [[15, 0.01], [30, 0.001], [45, 0.0001], [50, 0.00001]],
};

export const scheduleFlags = {
  schedule: {
    type: 'string',
    default: 'lut',
    choices: ['lut', 'rotnet', 'rotnet-classifier', 'alexnet', 'step', 'poly', 'cosine', 'constant'],
    help:
      "lut: RotNet's pretraining table scaled to the run (lr, ×0.2, ×0.04, ×0.008 from 30 %, 60 %, 80 % of the epochs); " +
      'rotnet, rotnet-classifier, alexnet: the reference configs’ tables as written (0.1/0.02/0.004/0.0008 until epochs 60/120/160/200; until 35/70/85/100; 0.01 ×0.1 every 15 of 50); ' +
      "step: ×gamma every lrStep epochs; poly: SESEMI's warm-up then (1 − t/T)^lrPower per iteration; cosine",
  },
  lut: { type: 'string', help: "a table of epoch:rate pairs, each rate from its epoch on, e.g. '0:0.1,60:0.02,120:0.004,160:0.0008' (replaces --schedule)" },
  lrSteps: { type: 'string', help: "epochs at which the rate is multiplied by --gamma, e.g. '30,60,90' (torch MultiStepLR; replaces --schedule)" },
  lrStep: { type: 'int', default: 30, help: 'epochs between decays (--schedule step)' },
  gamma: { type: 'number', default: 0.1, help: 'decay factor (--schedule step, --lrSteps)' },
  warmupEpochs: { type: 'number', default: 0, help: 'epochs of linear warm-up from warmupLr (--schedule poly)' },
  warmupLr: { type: 'number', default: 0.001, help: 'rate that warm-up starts from (--schedule poly)' },
  lrPower: { type: 'number', default: 0.5, help: 'power of the polynomial decay (--schedule poly)' },
} as const satisfies Flags;

/**
 * Training-time augmentation on the GPU (src/data/augment.ts): a preset, then the individual
 * flags, each replacing its part of the preset. augmentOf (common.ts) turns them into the
 * loader's AugmentOptions.
 */
export const augmentFlags = {
  augment: {
    type: 'string',
    default: 'auto',
    choices: ['auto', 'none', 'flip', 'rotnet-cifar', 'imagenet'],
    help:
      "rotnet-cifar: random crop (padding 4) + horizontal flip, RotNet's CIFAR loaders; imagenet: random-resized-crop (scale 0.08–1) + flip; flip: horizontal flip only, the NYU solution's loaders; " +
      'auto: rotnet-cifar up to 64 px, flip above',
  },
  randomCrop: { type: 'int', help: 'random crop of this size (the image size: the test images are not cropped) with --cropPadding zeros; 0: none' },
  cropPadding: { type: 'int', help: 'zero padding of the random crop (rotnet-cifar: 4)' },
  hflip: { type: 'number', help: 'probability of a horizontal flip (presets: 0.5; 0: none)' },
  randomResizedCrop: { type: 'int', help: 'RandomResizedCrop to this size (the image size), bilinear; 0: none' },
  rrcScale: { type: 'string', help: "the area range of --randomResizedCrop, 'lo,hi' (default '0.08,1')" },
  gammaRange: { type: 'string', help: "gamma correction with gamma uniform in 'lo,hi' per image, e.g. '0.8,1.25' (default: none)" },
} as const satisfies Flags;

/** Which epoch's weights are kept (<prefix>_best) and when to stop early, for commands with a held-out split. */
export const selectFlags = {
  selectBy: { type: 'string', default: 'top1', choices: ['top1', 'top5', 'loss'], help: 'the held-out metric that picks the best epoch (validation split when there is one, else the test split)' },
  patience: { type: 'int', default: 0, help: 'early stopping: epochs without a better --selectBy (0: off)' },
} as const satisfies Flags;

/** The seeds' machine flags: accepted so that their command lines run as written, and logged. */
export const machineFlags = {
  workers: { type: 'int', help: 'image-decoding threads (default: one per core but one)' },
  cuda: { type: 'boolean', default: false, help: 'ask for a hardware GPU adapter (dawnet always runs on the GPU adapter it opens; says which, and warns when it is a software one)' },
  ngpu: { type: 'int', help: 'GPUs to use; dawnet trains on one adapter (logged)' },
} as const satisfies Flags;

export const runFlags = {
  epochs: { type: 'int', default: 200, aliases: ['niter'], help: 'epochs to train' },
  outf: { type: 'string', help: 'output folder: checkpoints, metrics.jsonl, curves.png, args.json' },
  manualSeed: { type: 'int', default: 0, help: 'seed of every random choice (initialisation, data order, augmentation)' },
  resume: { type: 'string', help: 'a checkpoint (or a run folder: its latest epoch) to continue from, exactly' },
  verbIter: { type: 'int', default: 50, help: 'report the loss every verbIter steps' },
  maxIters: { type: 'int', default: 0, help: 'stop after this many steps in all (smoke runs; 0: no limit)' },
  devices: {
    type: 'string',
    default: '1',
    help: 'data-parallel training: N devices, all (one per adapter), or adapter names (NVIDIA,AMD); each takes its share of every batch. One adapter holds N devices (testing on lavapipe)',
  },
  syncBN: { type: 'boolean', default: false, help: 'with --devices above 1: batch-norm statistics over the global batch instead of each device’s share (torch.nn.SyncBatchNorm); the devices exchange them through the host at each batch norm' },
} as const satisfies Flags;

export const labelFlags = {
  trainSamples: { type: 'int', default: 0, help: 'labeled images per class, the first K of each class as RotNet takes them (0: all)' },
} as const satisfies Flags;

/** Unlabeled images beside the labeled ones (SESEMI, the student). */
export const unlabeledFlags = {
  unlabeledRoot: { type: 'string', help: 'unlabeled images (folders, any depth); default: every training image of --dataroot, labels unused' },
} as const satisfies Flags;

/** The teacher's scoring step (`score`, and `train:student`, which runs it or reuses its ranking). */
export const scoreFlags = {
  teacher: { type: 'string', help: 'the teacher: a classifier checkpoint (train:finetune, train:supervised, train:sesemi) or a bare state dict' },
  topK: { type: 'int', default: 1000, help: 'images ranked per class (the billion-scale recipe’s K as the seed runs it)' },
  topP: { type: 'int', default: 10, help: 'classes each image may be ranked for: its top P by the teacher (the seed’s P)' },
  shardSize: { type: 'int', default: 4096, help: 'images per shard, a multiple of --batchSize: the unit of work, of --queue jobs and of --resume' },
  queue: { type: 'string', help: 'redis://HOST:PORT: score on the workers of this BullMQ queue (npm run score:worker) instead of in this process' },
  queueName: { type: 'string', default: 'dawnet-score', help: 'the BullMQ queue the shards go to (workers take the same --queueName)' },
  attempts: { type: 'int', default: 3, help: 'runs of a failing shard before it is reported (--queue)' },
} as const satisfies Flags;

/** What every classifier-training command takes. */
export const trainingFlags = { ...dataFlags, ...labelFlags, ...modelFlags, ...optimizerFlags, ...scheduleFlags, ...runFlags, ...machineFlags } as const satisfies Flags;

/**
 * What each numeric flag accepts. A name means the same in every command, so its range is
 * declared once here and parseCommand checks every value against it; a numeric flag without a
 * row fails the test that walks every command's flags. Bounds follow PyTorch's own checks
 * (lr ≥ 0, momentum ≥ 0, 0 ≤ β1 < 1).
 */
export const FLAG_RANGES: Readonly<Record<string, Range>> = {
  batchSize: { min: 1 },
  unlabeledBatchSize: { min: 1 },
  imageSize: { min: 1, max: 4096 },
  epochs: { min: 1 },
  rotnetEpochs: { min: 1 },
  finetuneEpochs: { min: 1 },
  epochSize: { min: 1 },
  verbIter: { min: 1 },
  maxIters: { min: 0 },
  manualSeed: { min: 0, max: Number.MAX_SAFE_INTEGER },
  ninStages: { min: 3, max: 5 },
  trainSamples: { min: 0 },
  valSamples: { min: 0 },
  patience: { min: 0 },
  lrStep: { min: 1 },
  rotations: { min: 1, max: 4 },
  components: { min: 1 },
  rotnetEpochSize: { min: 1 },
  finetuneLr: { min: 0 },
  labelledFraction: { min: 0, max: 1 },
  nz: { min: 1 },
  ngf: { min: 1 },
  ndf: { min: 1 },
  topK: { min: 1 },
  topP: { min: 1 },
  shardSize: { min: 1 },
  attempts: { min: 1 },
  lockDuration: { min: 1000 },
  idle: { min: 0 },
  workers: { min: 1, max: 256 },
  lr: { min: 0 },
  backboneLr: { min: 0 },
  momentum: { min: 0, max: 1 },
  weightDecay: { min: 0 },
  gamma: { min: 0 },
  warmupEpochs: { min: 0 },
  warmupLr: { min: 0 },
  lrPower: { min: 0 },
  beta1: { min: 0, below: 1 },
  beta2: { min: 0, below: 1 },
  randomCrop: { min: 0, max: 4096 },
  cropPadding: { min: 0, max: 4096 },
  hflip: { min: 0, max: 1 },
  randomResizedCrop: { min: 0, max: 4096 },
  ngpu: { min: 0 },
  rotationWeight: { min: 0 },
  latentDim: { min: 1 },
  beta: { min: 0 },
  tripletWeight: { min: 0 },
  margin: { min: 0 },
};

/** --lut 'epoch:rate,…' as RotNet's [until, rate] rows (each rate from its epoch to the next one's), or what is wrong with it. */
export function lutRows(text: string): [number, number][] | string {
  const rows: [number, number][] = [];
  for (const entry of text.split(',').map((p) => p.trim())) {
    const p = entry.split(':');
    const [epoch, rate] = [Number(p[0]), Number(p[1])];
    if (p.length !== 2 || p[0] === '' || p[1] === '' || !Number.isInteger(epoch) || !(rate >= 0 && Number.isFinite(rate))) {
      return `--lut: each entry is epoch:rate (a whole epoch, a rate ≥ 0), got '${entry}' in '${text}'`;
    }
    rows.push([epoch, rate]);
  }
  if (rows[0]![0] !== 0) return `--lut: the first entry must start at epoch 0, got '${text}'`;
  for (let i = 1; i < rows.length; i++) if (!(rows[i]![0] > rows[i - 1]![0])) return `--lut: epochs must increase, got '${text}'`;
  return rows.map(([, rate], i) => [rows[i + 1]?.[0] ?? Number.POSITIVE_INFINITY, rate]);
}

/** --lrSteps '30,60,90' as epochs, or what is wrong with it. */
export function lrStepEpochs(text: string): number[] | string {
  const steps = text.split(',').map((p) => p.trim());
  const epochs = steps.map(Number);
  const bad = steps.findIndex((p, i) => p === '' || !(Number.isInteger(epochs[i]) && epochs[i]! > 0 && (i === 0 || epochs[i]! > epochs[i - 1]!)));
  return bad < 0 ? epochs : `--lrSteps: expected increasing whole epochs such as '30,60,90', got '${text}'`;
}

/** A 'lo,hi' flag value with min ≤ lo ≤ hi, or what is wrong with it. */
export function pairOf(flag: string, text: string, min: number): [number, number] | string {
  const parts = text.split(',').map((p) => p.trim());
  const [lo, hi] = parts.map(Number);
  return parts.length === 2 && parts.every((p) => p !== '') && lo! >= min && hi! >= lo! && Number.isFinite(hi) ? [lo!, hi!] : `${flag}: expected 'lo,hi' with ${min} ≤ lo ≤ hi, got '${text}'`;
}

/** The message of a list flag's parser, when it has one. */
const problem = (value: unknown, parse: (text: string) => unknown): string | null => {
  const parsed = typeof value === 'string' ? parse(value) : null;
  return typeof parsed === 'string' ? parsed : null;
};

/** Checks across flags, run after every value parsed. */
export const FLAG_RULES: readonly FlagRule[] = [
  (v) => (typeof v.devices === 'string' && typeof parseDevices(v.devices) === 'string' ? (parseDevices(v.devices) as string) : null),
  (v) => ((v.optimizer ?? 'sgd') === 'sgd' && v.nesterov === true && v.momentum === 0 ? '--nesterov (the default) needs --momentum above 0; pass --no-nesterov for plain SGD' : null),
  (v) => (typeof v.lut === 'string' && typeof v.lrSteps === 'string' ? 'give --lut or --lrSteps, not both' : null),
  (v) => problem(v.lut, lutRows) ?? problem(v.lrSteps, lrStepEpochs),
  (v) => problem(v.rrcScale, (t) => pairOf('--rrcScale', t, 0)) ?? problem(v.gammaRange, (t) => pairOf('--gammaRange', t, 0)),
];
