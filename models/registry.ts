// The one list of dawnet's networks: per name, how to build it from the description a checkpoint
// stores (so that probe, fine-tune, the student and evaluate rebuild it from the file alone), what
// it requires of the data, the stages an evaluation protocol reads as features, and the
// state-dict prefix of its classifier, which a new task replaces. A new model is one file in
// models/ plus one row here.
import { CheckpointError } from '../src/checkpoint/checkpoint.js';
import type { FeatureNet } from '../src/nn/feature-net.js';
import { Generator } from '../src/random.js';
import { AlexNet } from './alexnet.js';
import { DcganDiscriminator, GanClassifier } from './dcgan.js';
import { NIN } from './nin.js';
import { resnet18, resnet34, resnet50 } from './resnet.js';

/** What a checkpoint records of its model and data (args.modelSpec), enough to rebuild both. */
export interface ModelSpec {
  model: ModelName;
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

interface ModelRow {
  build(spec: ModelSpec, numClasses: number, generator: Generator): FeatureNet;
  /** Why the description cannot be built (too small an image, a bad stage count), or null. */
  check?(spec: ModelSpec): string | null;
  /** The stages a probe reads by default: those that give feature maps. */
  featureBlocks(stages: readonly string[]): string[];
  /** State-dict prefix of the classifier, the part a new task replaces. */
  classifier: string;
  /** Offered by --model (a classifier on a discriminator is made from a DCGAN checkpoint instead). */
  selectable: boolean;
}

const resnet = (make: typeof resnet18): ModelRow => ({
  // The CIFAR stem (3×3 stride 1, no max-pool) up to 64 px, torchvision's above.
  build: (s, numClasses, generator) => make({ numClasses, inChannels: s.inChannels, stem: s.imageSize <= 64 ? 'cifar' : 'imagenet', generator }),
  featureBlocks: (stages) => stages.filter((s) => s === 'conv1' || s.startsWith('layer')),
  classifier: 'fc.',
  selectable: true,
});

const ROWS = {
  nin: {
    build: (s, numClasses, generator) => new NIN({ numClasses, inChannels: s.inChannels, stages: s.ninStages, generator }),
    check: (s) => (s.ninStages >= 3 && s.ninStages <= 5 ? null : `NIN takes 3, 4 or 5 stages (--ninStages), got ${s.ninStages}`),
    featureBlocks: (stages) => stages.filter((s) => s.startsWith('conv')),
    classifier: 'classifier.',
    selectable: true,
  },
  resnet18: resnet(resnet18),
  resnet34: resnet(resnet34),
  resnet50: resnet(resnet50),
  alexnet: {
    build: (s, numClasses, generator) => new AlexNet({ numClasses, inChannels: s.inChannels, imageSize: s.imageSize, generator }),
    check: (s) => (s.imageSize >= 63 ? null : `alexnet needs images of at least 63 px (got ${s.imageSize}); pass --imageSize 64 or more`),
    featureBlocks: (stages) => stages.filter((s) => /^(conv|pool)\d$/.test(s)),
    classifier: 'classifier.',
    selectable: true,
  },
  'dcgan-classifier': {
    build: (s, numClasses, generator) => {
      const d = new DcganDiscriminator({ ndf: s.ndf ?? 64, nc: s.inChannels, imageSize: s.imageSize as 32 | 64, generator });
      return new GanClassifier(d, numClasses, { generator });
    },
    featureBlocks: () => ['trunk'],
    classifier: 'fc.',
    selectable: false,
  },
} satisfies Record<string, ModelRow>;

export type ModelName = keyof typeof ROWS;

/** The names --model accepts. */
export const MODEL_NAMES = (Object.keys(ROWS) as ModelName[]).filter((n) => ROWS[n].selectable);

function row(name: string): ModelRow {
  if (!Object.hasOwn(ROWS, name)) throw new RangeError(`unknown model '${name}' (models: ${Object.keys(ROWS).join(', ')})`);
  return ROWS[name as ModelName];
}

/** Throws a RangeError saying why `spec` cannot be built; returns it otherwise. */
export function checkSpec(spec: ModelSpec): ModelSpec {
  const problem = row(spec.model).check?.(spec);
  if (problem) throw new RangeError(problem);
  return spec;
}

/** The network a description names, initialised from `seed`, with `numClasses` outputs (the spec's by default). */
export function buildModel(spec: ModelSpec, seed: number, numClasses = spec.numClasses): FeatureNet {
  return row(checkSpec(spec).model).build(spec, numClasses, new Generator(seed));
}

export function classifierPrefix(spec: ModelSpec): string {
  return row(spec.model).classifier;
}

export function featureBlocks(spec: ModelSpec, net: FeatureNet): string[] {
  return row(spec.model).featureBlocks(net.stageNames);
}

/** The description a dawnet training command stored in a checkpoint's arguments. */
export function specFromArgs(args: Record<string, unknown> | undefined, path: string): ModelSpec {
  const spec = args?.modelSpec as ModelSpec | undefined;
  if (!spec || typeof spec.model !== 'string') throw new CheckpointError(`${path} carries no model description (args.modelSpec); was it written by a dawnet training command?`);
  if (!Object.hasOwn(ROWS, spec.model)) throw new CheckpointError(`${path} holds a '${spec.model}', which this dawnet does not know (models: ${Object.keys(ROWS).join(', ')})`);
  return spec;
}
