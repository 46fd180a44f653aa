// What the training commands share between their flags and their loops: a command's definition
// and invocation (parse, run, return a summary), the learning-rate schedule a set of flags
// describes, the output folder, and the description of a model that checkpoints carry so that
// later commands (probe, fine-tune, evaluate) can rebuild it.
import { DcganDiscriminator, GanClassifier } from '../../models/dcgan.js';
import type { Dataset } from '../data/dataset.js';
import type { AugmentOptions } from '../data/augment.js';
import type { FeatureNet } from '../nn/feature-net.js';
import { Generator } from '../random.js';
import { constant, cosine, lookupTable, polynomialWarmup, stepDecay, type Schedule } from '../optim/schedules.js';
import { chooseRunFolder, type RunFolderArgs } from '../train/run.js';
import { buildModel, MODEL_NAMES, type ModelName } from '../train/zoo.js';
import { parseCommand, UsageError, type Command, type Flags, type Parsed } from './args.js';

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
  return args === null ? null : cmd.run(args);
}

/** The folder a command writes its run to (see chooseRunFolder: never one holding another run). */
export function outfOf(command: string, a: RunFolderArgs): string {
  return chooseRunFolder(command, a);
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
}

/** The schedule the flags ask for, and whether its t counts epochs or iterations. */
export function scheduleOf(a: ScheduleFlags, stepsPerEpoch: number): { schedule: Schedule; perIteration: boolean } {
  switch (a.schedule) {
    case 'lut': {
      // RotNet's LUT_lr for 200 epochs, [(60, 0.1), (120, 0.02), (160, 0.004), (200, 0.0008)],
      // with its bounds scaled to the run's length and its rates to --lr.
      // Bounds stay strictly increasing for short runs (the table's later rows then start later).
      const bounds: number[] = [];
      for (const f of [0.3, 0.6, 0.8, 1]) bounds.push(Math.max((bounds.at(-1) ?? 0) + 1, Math.round(a.epochs * f)));
      const rates = [1, 0.2, 0.04, 0.008].map((r) => a.lr * r);
      return { schedule: lookupTable(bounds.map((b, i) => [b, rates[i]!] as const)), perIteration: false };
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

/** What a checkpoint records of its model and data, so that another command can rebuild both. */
export interface ModelSpec {
  /** A network of the zoo, or a classifier on a DCGAN discriminator's trunk. */
  model: ModelName | 'dcgan-classifier';
  /** The discriminator's width (dcgan-classifier). */
  ndf?: number;
  ninStages: number;
  numClasses: number;
  inChannels: number;
  imageSize: number;
  /** Per-channel normalisation of the images it was trained on. */
  normalize: { mean: number[]; std: number[] };
  classNames: string[];
}

export function modelSpecOf(a: { model: string; ninStages: number }, data: Dataset, numClasses: number, normalize: ModelSpec['normalize']): ModelSpec {
  if (!(MODEL_NAMES as readonly string[]).includes(a.model)) throw new UsageError(`--model must be one of ${MODEL_NAMES.join(', ')}`);
  if (a.model === 'nin' && !(a.ninStages >= 3 && a.ninStages <= 5)) throw new UsageError(`--ninStages must be 3, 4 or 5, got ${a.ninStages}`);
  if (a.model === 'alexnet' && data.imageSize < 63) throw new UsageError(`--model alexnet needs images of at least 63 px (got ${data.imageSize}); pass --imageSize 64 or more`);
  return { model: a.model as ModelName, ninStages: a.ninStages, numClasses, inChannels: data.channels, imageSize: data.imageSize, normalize, classNames: [...data.classes] };
}

export function buildFromSpec(spec: ModelSpec, seed: number, numClasses = spec.numClasses): FeatureNet {
  const generator = new Generator(seed);
  if (spec.model === 'dcgan-classifier') {
    const d = new DcganDiscriminator({ ndf: spec.ndf ?? 64, nc: spec.inChannels, imageSize: spec.imageSize as 32 | 64, generator });
    return new GanClassifier(d, numClasses, { generator });
  }
  return buildModel(spec.model, { numClasses, inChannels: spec.inChannels, imageSize: spec.imageSize, ninStages: spec.ninStages, generator });
}

/** Reads the ModelSpec a dawnet training command stored in a checkpoint's arguments. */
export function specFromArgs(args: Record<string, unknown> | undefined, path: string): ModelSpec {
  const spec = args?.modelSpec as ModelSpec | undefined;
  if (!spec || typeof spec.model !== 'string') throw new UsageError(`${path} carries no model description (args.modelSpec); was it written by a dawnet training command?`);
  return spec;
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
