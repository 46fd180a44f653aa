// What the training commands share between their flags and their loops: a command's definition
// and invocation (parse, run, return a summary), the optimizer, learning-rate schedule and
// augmentation a set of flags describes, the held-out metric that selects the best epoch, the
// output folder, and the model description (models/registry.ts) that --model and the data give.
import { checkSpec, MODEL_NAMES, type ModelName, type ModelSpec } from '../../models/registry.js';
import type { Dataset } from '../data/dataset.js';
import type { AugmentOptions } from '../data/augment.js';
import { Adam, AdamW } from '../optim/adam.js';
import { constant, cosine, lookupTable, multiStep, polynomialWarmup, stepDecay, type Schedule } from '../optim/schedules.js';
import { SGD } from '../optim/sgd.js';
import type { Tensor } from '../tensor.js';
import { chooseRunFolder, type RunFolderArgs } from '../train/run.js';
import { parseCommand, UsageError, type Command, type Flags, type Parsed } from './args.js';
import { lrStepEpochs, lutRows, pairOf, SCHEDULE_PRESETS } from './flags.js';
import { applyMachineFlags } from './machine.js';

export interface CliCommand<F extends Flags = Flags, R = unknown> {
  spec: Command<F>;
  run(args: Parsed<F>): Promise<R>;
}

export function defineCommand<F extends Flags, R>(spec: Command<F>, run: (args: Parsed<F>) => Promise<R>): CliCommand<F, R> {
  return { spec, run };
}

/** Parses argv for the command and runs it; null when --help was printed instead. */
export async function invoke<F extends Flags, R>(cmd: CliCommand<F, R>, argv: readonly string[]): Promise<R | null> {
  const args = parseCommand(cmd.spec, argv);
  if (args === null) return null;
  applyMachineFlags(cmd.spec.name, args);
  return cmd.run(args);
}

/** The folder a command writes its run to (see chooseRunFolder: never one holding another run). */
export function outfOf(command: string, a: RunFolderArgs): string {
  return chooseRunFolder(command, a);
}

export interface OptimizerArgs {
  optimizer: string;
  lr: number;
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
  beta1: number;
  beta2: number;
}

export type TrainingOptimizer = SGD | Adam | AdamW;

/** The --optimizer the flags ask for over the given parameters or groups (a group's lr overrides --lr). */
export function optimizerOf(a: OptimizerArgs, params: readonly Tensor[] | readonly { params: readonly Tensor[]; lr?: number }[]): TrainingOptimizer {
  return asUsageError(`--optimizer ${a.optimizer}`, () => {
    switch (a.optimizer) {
      case 'sgd':
        return new SGD(params, { lr: a.lr, momentum: a.momentum, nesterov: a.nesterov, weightDecay: a.weightDecay });
      case 'adam':
      case 'adamw': {
        const options = { lr: a.lr, betas: [a.beta1, a.beta2] as const, weightDecay: a.weightDecay };
        return a.optimizer === 'adam' ? new Adam(params, options) : new AdamW(params, options);
      }
      default:
        throw new UsageError(`--optimizer must be sgd, adam or adamw, got '${a.optimizer}'`);
    }
  });
}

export interface ScheduleFlags {
  schedule: string;
  lr: number;
  epochs: number;
  lrStep: number;
  gamma: number;
  warmupEpochs: number;
  warmupLr: number;
  lrPower: number;
  lut?: string;
  lrSteps?: string;
}

/** A list flag's value as its parser reads it; its message as a UsageError otherwise. */
function listFlag<T>(parsed: T | string): T {
  if (typeof parsed === 'string') throw new UsageError(parsed);
  return parsed;
}

/**
 * A table of absolute rates (RotNet's LUT_lr) for the group trained at --lr; another group (a
 * pretrained backbone at --backboneLr) keeps its ratio to it.
 */
function tableSchedule(rows: readonly (readonly [number, number])[], lr: number): Schedule {
  const table = lookupTable(rows);
  return (t, baseLr) => table(t, baseLr) * (lr > 0 ? baseLr / lr : 1);
}

/** The schedule the flags ask for, and whether its t counts epochs or iterations. */
export function scheduleOf(a: ScheduleFlags, stepsPerEpoch: number): { schedule: Schedule; perIteration: boolean } {
  if (a.lut !== undefined) return { schedule: tableSchedule(listFlag(lutRows(a.lut)), a.lr), perIteration: false };
  if (a.lrSteps !== undefined) return { schedule: multiStep(listFlag(lrStepEpochs(a.lrSteps)), a.gamma), perIteration: false };
  const preset = SCHEDULE_PRESETS[a.schedule];
  if (preset) return { schedule: tableSchedule(preset, a.lr), perIteration: false };
  switch (a.schedule) {
    case 'lut': {
      // RotNet's LUT_lr for 200 epochs, [(60, 0.1), (120, 0.02), (160, 0.004), (200, 0.0008)],
      // with its bounds scaled to the run's length and its rates to --lr.
      // Bounds stay strictly increasing for short runs (the table's later rows then start later).
      const bounds: number[] = [];
      for (const f of [0.3, 0.6, 0.8, 1]) bounds.push(Math.max((bounds.at(-1) ?? 0) + 1, Math.round(a.epochs * f)));
      const rates = [1, 0.2, 0.04, 0.008].map((r) => a.lr * r);
      return { schedule: tableSchedule(bounds.map((b, i) => [b, rates[i]!] as const), a.lr), perIteration: false };
    }
    case 'step':
      return { schedule: stepDecay(a.lrStep, a.gamma), perIteration: false };
    case 'poly':
      return {
        schedule: polynomialWarmup({ maxIters: a.epochs * stepsPerEpoch, warmupIters: Math.min(a.epochs * stepsPerEpoch, Math.round(a.warmupEpochs * stepsPerEpoch)), warmupLr: a.warmupLr, power: a.lrPower }),
        perIteration: true,
      };
    case 'cosine':
      return { schedule: cosine(a.epochs * stepsPerEpoch), perIteration: true };
    case 'constant':
      return { schedule: constant(), perIteration: false };
    default:
      throw new UsageError(`unknown --schedule ${a.schedule}`);
  }
}

export interface AugmentArgs {
  augment: string;
  randomCrop?: number;
  cropPadding?: number;
  hflip?: number;
  randomResizedCrop?: number;
  rrcScale?: string;
  gammaRange?: string;
}

/**
 * The training augmentation of --augment and the individual flags, for images of `imageSize`
 * pixels (the loader adds normalisation). A preset first (auto: RotNet's CIFAR loaders up to
 * 64 px, the NYU solution's flip above), then each individual flag replaces its part.
 */
export function augmentOf(a: AugmentArgs, imageSize: number): AugmentOptions {
  const preset = a.augment === 'auto' ? (imageSize <= 64 ? 'rotnet-cifar' : 'flip') : a.augment;
  const out: AugmentOptions = {};
  if (preset === 'rotnet-cifar') out.crop = { padding: 4 };
  if (preset === 'imagenet') out.resizedCrop = { scale: [0.08, 1] };
  // SESEMI's train_transforms: random crop up to 64 px (padded by an eighth of the side, as its CIFAR loaders translate), random-resized-crop (scale 0.2–1) above, gamma 0.5–1.5.
  if (preset === 'sesemi') Object.assign(out, imageSize <= 64 ? { crop: { padding: Math.max(1, Math.round(imageSize / 8)) } } : { resizedCrop: { scale: [0.2, 1] } }, { gamma: [0.5, 1.5] });
  if (preset !== 'none') out.hflip = 0.5;
  const sameSize = (flag: string, n: number) => {
    if (n !== imageSize) throw new UsageError(`--${flag} ${n}: crops are taken at the image size (${imageSize} px) since held-out images are not cropped; resize with --imageSize ${n} instead`);
  };
  if (a.randomCrop !== undefined) {
    delete out.crop;
    if (a.randomCrop > 0) {
      sameSize('randomCrop', a.randomCrop);
      delete out.resizedCrop;
      out.crop = { padding: 0 };
    }
  }
  if (a.cropPadding !== undefined) {
    if (!out.crop) throw new UsageError(`--cropPadding needs a random crop (--randomCrop ${imageSize} or --augment rotnet-cifar)`);
    out.crop = { padding: a.cropPadding };
  }
  if (a.randomResizedCrop !== undefined) {
    delete out.resizedCrop;
    if (a.randomResizedCrop > 0) {
      sameSize('randomResizedCrop', a.randomResizedCrop);
      delete out.crop;
      out.resizedCrop = { scale: [0.08, 1] };
    }
  }
  if (a.rrcScale !== undefined) {
    if (!out.resizedCrop) throw new UsageError(`--rrcScale needs --randomResizedCrop ${imageSize} or --augment imagenet`);
    const [lo, hi] = listFlag(pairOf('--rrcScale', a.rrcScale, 0));
    if (!(lo > 0 && hi <= 1)) throw new UsageError(`--rrcScale: the area fractions must lie in (0, 1], got '${a.rrcScale}'`);
    out.resizedCrop = { scale: [lo, hi] };
  }
  if (a.hflip !== undefined) {
    delete out.hflip;
    if (a.hflip > 0) out.hflip = a.hflip;
  }
  if (a.gammaRange !== undefined) {
    const g = listFlag(pairOf('--gammaRange', a.gammaRange, 0));
    if (!(g[0] > 0)) throw new UsageError(`--gammaRange: gammas must be above 0, got '${a.gammaRange}'`);
    out.gamma = g;
  }
  return out;
}

/** The augmentation in words, for the run's log. */
export function describeAugment(o: AugmentOptions): string {
  const parts = [
    o.crop ? `random crop (padding ${o.crop.padding})` : '',
    o.resizedCrop ? `random-resized-crop (scale ${o.resizedCrop.scale.join('–')})` : '',
    o.hflip ? `horizontal flip (p ${o.hflip})` : '',
    o.gamma ? `gamma ${o.gamma.join('–')}` : '',
  ].filter(Boolean);
  return parts.length > 0 ? parts.join(' + ') : 'no augmentation';
}

/**
 * The epoch-record key that --selectBy watches on a held-out split ('val' or 'test': valTop5,
 * testLoss…). With five classes or fewer top-5 is always 100 % (and not scored), so top-1
 * decides instead, with a warning: a command whose default is top-5 still runs on such data.
 */
export function selectKey(selectBy: string, split: 'val' | 'test', classes: number): string {
  if (selectBy === 'top5' && classes <= 5) {
    process.stderr.write(`--selectBy top5: top-5 accuracy is 100 % with ${classes} classes; the best epoch is chosen by top1\n`);
    return selectKey('top1', split, classes);
  }
  const metric = { top1: 'Top1', top5: 'Top5', loss: 'Loss' }[selectBy];
  if (!metric) throw new UsageError(`--selectBy must be top1, top5 or loss, got '${selectBy}'`);
  return `${split}${metric}`;
}

/** The description of a --model network for the data at hand, checked before anything is built. */
export function modelSpecOf(a: { model: string; ninStages: number; useAvgOnConv3?: boolean }, data: Dataset, numClasses: number, normalize: ModelSpec['normalize']): ModelSpec {
  if (!(MODEL_NAMES as readonly string[]).includes(a.model)) throw new UsageError(`--model must be one of ${MODEL_NAMES.join(', ')}`);
  const nin = a.model === 'nin' ? { useAvgOnConv3: a.useAvgOnConv3 ?? false } : {};
  const spec: ModelSpec = { model: a.model as ModelName, ninStages: a.ninStages, ...nin, numClasses, inChannels: data.channels, imageSize: data.imageSize, normalize, classNames: [...data.classes] };
  return asUsageError('--model', () => checkSpec(spec));
}

/** A flag's value that the library rejects (a RangeError) is the user's mistake: say which flag. */
export function asUsageError<T>(flag: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof RangeError) throw new UsageError(`${flag}: ${err.message}`);
    throw err;
  }
}

/** Checks that a data set matches what a model was trained on. */
export function checkDataMatches(spec: ModelSpec, data: Dataset, where: string): void {
  if (data.channels !== spec.inChannels || data.imageSize !== spec.imageSize) {
    throw new UsageError(
      `${where}: the model takes ${spec.inChannels}-channel ${spec.imageSize}px images, the data has ${data.channels}-channel ${data.imageSize}px ones (pass --imageSize ${spec.imageSize} --channels ${spec.inChannels})`,
    );
  }
}

/** The loader transform of a split: normalisation always, the training augmentation when asked. */
export function transformOf(normalize: ModelSpec['normalize'], extra: AugmentOptions = {}): AugmentOptions {
  return { ...extra, normalize };
}
