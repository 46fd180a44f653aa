// What the training commands share between their flags and their loops: a command's definition
// and invocation (parse, run, return a summary), the learning-rate schedule a set of flags
// describes, the output folder, and the model description (models/registry.ts) that --model
// and the data give.
import { checkSpec, MODEL_NAMES, type ModelName, type ModelSpec } from '../../models/registry.js';
import type { Dataset } from '../data/dataset.js';
import type { AugmentOptions } from '../data/augment.js';
import { constant, cosine, lookupTable, polynomialWarmup, stepDecay, type Schedule } from '../optim/schedules.js';
import { chooseRunFolder, type RunFolderArgs } from '../train/run.js';
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
