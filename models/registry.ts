// The one list of dawnet's networks: per name, how to build it from the description a checkpoint
// stores (so that probe, fine-tune, the student and evaluate rebuild it from the file alone), what
// it requires of the data, the stages an evaluation protocol reads as features, and the
// state-dict prefix of its classifier, which a new task replaces. A new model is one file in
// models/ plus one row here.
import { CheckpointError, sourceContents, sourcePath, type CheckpointSource } from '../src/checkpoint/checkpoint.js';
import { fromRotNetName, ROTNET_PREFIX } from '../src/checkpoint/rotnet-names.js';
import type { FeatureNet } from '../src/nn/feature-net.js';
import { Generator } from '../src/random.js';
import { AlexNet } from './alexnet.js';
import { HeadedNet } from './headed.js';
import { headOf, type HeadType } from './heads.js';
import { DcganDiscriminator, GanClassifier } from './dcgan.js';
import { NIN } from './nin.js';
import { resnet18, resnet34, resnet50 } from './resnet.js';
import { ConvVAE, vaeSizeProblem, type VaeEncoderDepth } from './vae.js';
// After the models: they load the op table, which the creation functions need initialised.
import { noGrad } from '../src/autograd/tape.js';
import { zeros } from '../src/creation.js';
import { scope } from '../src/scope.js';

/** What a checkpoint records of its model and data (args.modelSpec), enough to rebuild both. */
export interface ModelSpec {
  model: ModelName;
  /** The discriminator's width (dcgan-classifier). */
  ndf?: number;
  ninStages: number;
  /**
   * NIN's average pool after conv3 (RotNet's use_avg_on_conv3). Checkpoints from before it was
   * recorded always had the pool, so absent means true.
   */
  useAvgOnConv3?: boolean;
  numClasses: number;
  inChannels: number;
  imageSize: number;
  /** ResNet's stem; left out, the CIFAR one up to 64 px and torchvision's above. */
  stem?: 'cifar' | 'imagenet';
  /** The VAE's code size and its encoder's last AlexNet stage. */
  latentDim?: number;
  encoderDepth?: VaeEncoderDepth;
  /** A head trained by train:probe on the features of one stage, in place of the stages after it. */
  head?: HeadSpec;
  /** Per-channel normalisation of the images it was trained on. */
  normalize: { mean: number[]; std: number[] };
  classNames: string[];
}

export interface HeadSpec {
  block: string;
  type: HeadType;
  /** The linear head's pooled side. */
  poolSize?: number;
}

/** What a state dict's names and shapes tell of the model a registry row builds. */
interface RowShape {
  ninStages: number;
  useAvgOnConv3?: boolean;
  numClasses: number;
  inChannels: number;
  ndf?: number;
  stem?: 'cifar' | 'imagenet';
  latentDim?: number;
  encoderDepth?: VaeEncoderDepth;
}

/** What a bare state dict tells of its model: the description but for the data's part. */
export type ModelShape = RowShape & { model: ModelName };

/** A checkpoint's description: whole from a dawnet checkpoint, without the data's part from a state dict. */
export type CheckpointSpec = ModelShape & Partial<Pick<ModelSpec, 'imageSize' | 'normalize' | 'classNames'>>;

/** Tensor shapes by state-dict name. */
type Shapes = ReadonlyMap<string, readonly number[]>;

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
  /** The model a state dict holds when its names and shapes are this row's, else null. */
  infer(shapes: Shapes): RowShape | null;
  /** What a state dict must hold to be this model, for the error that lists the candidates. */
  expects: string;
  /** Stage names for a reference-RotNet file (`_feature_blocks.<i>.…`) of `blocks` blocks. */
  rotnetStages?(blocks: number): string[];
}

/** The largest n with `<prefix><n-1>.` among the names, plus one (a Sequential's length). */
function countIndexed(shapes: Shapes, prefix: string): number {
  let n = 0;
  for (const k of shapes.keys()) {
    const m = k.startsWith(prefix) ? /^(\d+)\./.exec(k.slice(prefix.length)) : null;
    if (m) n = Math.max(n, Number(m[1]) + 1);
  }
  return n;
}

const RESNET_LAYERS = { resnet18: [[2, 2, 2, 2], false], resnet34: [[3, 4, 6, 3], false], resnet50: [[3, 4, 6, 3], true] } as const;

const inferResnet = (name: keyof typeof RESNET_LAYERS) => (shapes: Shapes): RowShape | null => {
  // torchvision.models.resnetNN: blocks per layer, Bottleneck's conv3, and conv1's 7×7 (ImageNet) or 3×3 (CIFAR) kernel.
  const [layers, bottleneck] = RESNET_LAYERS[name];
  const conv1 = shapes.get('conv1.weight');
  const fc = shapes.get('fc.weight');
  if (!conv1 || conv1.length !== 4 || !fc || fc.length !== 2) return null;
  if (layers.some((n, i) => countIndexed(shapes, `layer${i + 1}.`) !== n) || shapes.has('layer1.0.conv3.weight') !== bottleneck) return null;
  if (conv1[2] !== 7 && conv1[2] !== 3) return null;
  return { ninStages: 0, numClasses: fc[0]!, inChannels: conv1[1]!, stem: conv1[2] === 7 ? 'imagenet' : 'cifar' };
};

const resnet = (make: typeof resnet18, name: keyof typeof RESNET_LAYERS): ModelRow => ({
  // Without a stem in the description: the CIFAR stem (3×3 stride 1, no max-pool) up to 64 px, torchvision's above.
  build: (s, numClasses, generator) => make({ numClasses, inChannels: s.inChannels, stem: s.stem ?? (s.imageSize <= 64 ? 'cifar' : 'imagenet'), generator }),
  featureBlocks: (stages) => stages.filter((s) => s === 'conv1' || s.startsWith('layer')),
  classifier: 'fc.',
  selectable: true,
  infer: inferResnet(name),
  expects: `conv1.weight (7×7 or 3×3), layer1…layer4 of ${RESNET_LAYERS[name][0].join('/')} ${RESNET_LAYERS[name][1] ? 'bottleneck' : 'basic'} blocks, fc.weight`,
});

const ALEXNET_STAGES = ['conv1', 'pool1', 'conv2', 'pool2', 'conv3', 'conv4', 'conv5', 'pool5', 'fc_block', 'classifier'];

const ROWS = {
  nin: {
    build: (s, numClasses, generator) => new NIN({ numClasses, inChannels: s.inChannels, stages: s.ninStages, useAvgOnConv3: s.useAvgOnConv3 ?? true, generator }),
    check: (s) => (s.ninStages >= 3 && s.ninStages <= 5 ? null : `NIN takes 3, 4 or 5 stages (--ninStages), got ${s.ninStages}`),
    featureBlocks: (stages) => stages.filter((s) => s.startsWith('conv')),
    classifier: 'classifier.',
    selectable: true,
    infer: (shapes) => {
      // RotNet's NetworkInNetwork: conv1…convS, each opening with a Block<s>_ConvB1, then the classifier.
      const first = shapes.get('conv1.Block1_ConvB1.layers.Conv.weight');
      const fc = shapes.get('classifier.Classifier.weight');
      if (!first || first.length !== 4 || !fc || fc.length !== 2) return null;
      let stages = 0;
      while (shapes.has(`conv${stages + 1}.Block${stages + 1}_ConvB1.layers.Conv.weight`)) stages++;
      if ([...shapes.keys()].some((k) => !/^(conv[1-5]|classifier)\./.test(k) || Number(k[4]) > stages)) return null;
      // The conv3 pool has no weights, so a state dict cannot tell it: RotNet's CIFAR configs (off) are assumed.
      return { ninStages: stages, useAvgOnConv3: false, numClasses: fc[0]!, inChannels: first[1]! };
    },
    expects: 'conv1.Block1_ConvB1.layers.Conv.weight … convS (S = 3, 4 or 5), classifier.Classifier.weight (or the reference _feature_blocks.N… names)',
    rotnetStages: (blocks) => [...Array.from({ length: blocks - 1 }, (_, i) => `conv${i + 1}`), 'classifier'],
  },
  resnet18: resnet(resnet18, 'resnet18'),
  resnet34: resnet(resnet34, 'resnet34'),
  resnet50: resnet(resnet50, 'resnet50'),
  alexnet: {
    build: (s, numClasses, generator) => new AlexNet({ numClasses, inChannels: s.inChannels, imageSize: s.imageSize, generator }),
    check: (s) => (s.imageSize >= 63 ? null : `alexnet needs images of at least 63 px (got ${s.imageSize}); pass --imageSize 64 or more`),
    featureBlocks: (stages) => stages.filter((s) => /^(conv|pool)\d$/.test(s)),
    classifier: 'classifier.',
    selectable: true,
    infer: (shapes) => {
      // RotNet's AlexNet: an 11×11 conv1 and conv2…conv5, two FC layers, the classifier.
      const conv1 = shapes.get('conv1.0.weight');
      const fc = shapes.get('classifier.0.weight');
      if (conv1?.length !== 4 || conv1[2] !== 11 || fc?.length !== 2 || !shapes.has('conv5.0.weight') || !shapes.has('fc_block.4.weight')) return null;
      return { ninStages: 0, numClasses: fc[0]!, inChannels: conv1[1]! };
    },
    expects: 'conv1.0.weight (11×11) … conv5, fc_block, classifier.0.weight (or the reference _feature_blocks.N… names)',
    rotnetStages: (blocks) => (blocks === ALEXNET_STAGES.length ? ALEXNET_STAGES : []),
  },
  vae: {
    // numClasses 0: the pretext network as train:vae and train:siamese-vae save it; more: a classifier on μ (fine-tuning).
    build: (s, numClasses, generator) =>
      new ConvVAE({ inChannels: s.inChannels, imageSize: s.imageSize, latentDim: s.latentDim ?? 128, encoderDepth: s.encoderDepth ?? 'conv4', numClasses, generator }),
    check: (s) => vaeSizeProblem(s.imageSize),
    featureBlocks: (stages) => stages.filter((s) => /^(conv|pool)\d$/.test(s)),
    classifier: 'classifier.',
    selectable: false,
    infer: (shapes) => {
      // dawnet's ConvVAE: RotNet AlexNet's conv1 (11×11) … conv4 or conv5, mu and logvar, decoder_input.
      const conv1 = shapes.get('conv1.0.weight');
      const mu = shapes.get('mu.weight');
      if (conv1?.length !== 4 || conv1[2] !== 11 || mu?.length !== 2 || !shapes.has('logvar.weight') || !shapes.has('decoder_input.weight')) return null;
      return { ninStages: 0, numClasses: shapes.get('classifier.weight')?.[0] ?? 0, inChannels: conv1[1]!, latentDim: mu[0]!, encoderDepth: shapes.has('conv5.0.weight') ? 'conv5' : 'conv4' };
    },
    expects: 'conv1.0.weight (11×11) … conv4 (or conv5), mu.weight, logvar.weight, decoder_input.weight, decoder.*',
  },
  'dcgan-classifier': {
    build: (s, numClasses, generator) => {
      const d = new DcganDiscriminator({ ndf: s.ndf ?? 64, nc: s.inChannels, imageSize: s.imageSize as 32 | 64, generator });
      return new GanClassifier(d, numClasses, { generator });
    },
    featureBlocks: () => ['trunk'],
    classifier: 'fc.',
    selectable: false,
    infer: (shapes) => {
      // dawnet's GanClassifier: the DCGAN discriminator (its first conv: ndf × nc × 4 × 4) under discriminator., then fc.
      const first = shapes.get('discriminator.main.0.weight');
      const fc = shapes.get('fc.weight');
      if (first?.length !== 4 || first[2] !== 4 || fc?.length !== 2) return null;
      return { ninStages: 0, ndf: first[0]!, numClasses: fc[0]!, inChannels: first[1]! };
    },
    expects: 'discriminator.main.0.weight (4×4), fc.weight',
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
  const generator = new Generator(seed);
  const net = row(checkSpec(spec).model).build(spec, numClasses, generator);
  if (!spec.head) return net;
  const { block, type, poolSize } = spec.head;
  try {
    const shape = noGrad(() => scope(() => net.features(zeros([1, spec.inChannels, spec.imageSize, spec.imageSize]), [block])[block]!.shape.slice(1)));
    return new HeadedNet(net, block, headOf(type, block, shape, numClasses, { generator, ...(poolSize ? { poolSize } : {}) }));
  } catch (err) {
    net.dispose();
    throw err instanceof Error && /no stage named/.test(err.message) ? new RangeError(`a ${type} head on '${block}': ${err.message}`) : err;
  }
}

export function classifierPrefix(spec: ModelSpec): string {
  return spec.head ? 'head.' : row(spec.model).classifier;
}

export function featureBlocks(spec: ModelSpec, net: FeatureNet): string[] {
  return row(spec.model).featureBlocks(net.stageNames.filter((s) => s !== 'head'));
}

/**
 * The model a bare state dict holds (a torchvision or reference-RotNet .pth, a safetensors file
 * from elsewhere), from its names and shapes; `model` limits the candidates. Anything but one
 * match is a CheckpointError that lists what each candidate expects.
 */
export function inferSpec(shapes: Shapes, path: string, model?: string): ModelShape {
  const names = model === undefined ? (Object.keys(ROWS) as ModelName[]) : [(row(model), model as ModelName)];
  const found: ModelShape[] = [];
  for (const name of names) {
    const r: ModelRow = ROWS[name];
    let own = shapes;
    const keys = [...shapes.keys()];
    if (r.rotnetStages && keys.length > 0 && keys.every((k) => k.startsWith(ROTNET_PREFIX))) {
      const stages = r.rotnetStages(countIndexed(shapes, ROTNET_PREFIX));
      try {
        own = new Map(keys.map((k) => [fromRotNetName(k, stages), shapes.get(k)!]));
      } catch {
        continue;
      }
    }
    const shape = r.infer(own);
    if (shape) found.push({ model: name, ...shape });
  }
  if (found.length === 1) return found[0]!;
  const flag = found.length > 1 ? `it could be ${found.map((f) => f.model).join(' or ')}` : 'it is none of them';
  const expected = names.map((n) => `  ${n}: ${ROWS[n].expects}`).join('\n');
  throw new CheckpointError(`${path}: a state dict without a dawnet model description, and its names and shapes do not tell one model (${flag}; --model names it); expected one of:\n${expected}`);
}

/**
 * The description of the model a checkpoint holds: the one a dawnet training command stored in
 * its arguments (args.modelSpec), else the one its state dict's names and shapes give (inferSpec),
 * which lacks the data's part (completeSpec); `model` (--model) names the model of a state dict.
 */
export async function checkpointSpec(source: CheckpointSource, model?: string): Promise<CheckpointSpec> {
  const path = sourcePath(source);
  const { args, shapes } = await readDescribed(source);
  const spec = args?.modelSpec as ModelSpec | undefined;
  if (spec && typeof spec.model === 'string') {
    if (!Object.hasOwn(ROWS, spec.model)) throw new CheckpointError(`${path} holds a '${spec.model}', which this dawnet does not know (models: ${Object.keys(ROWS).join(', ')})`);
    return spec;
  }
  return inferSpec(shapes, path, model);
}

/** A checkpoint's stored arguments (a dawnet run's) and its tensors' shapes. */
async function readDescribed(source: CheckpointSource): Promise<{ args: Record<string, unknown> | undefined; shapes: Shapes }> {
  const path = sourcePath(source);
  const { tensors, metadata } = await sourceContents(source);
  const shapes = new Map([...tensors].map(([k, t]) => [k, t.shape]));
  try {
    return { args: metadata.args === undefined ? undefined : (JSON.parse(metadata.args) as Record<string, unknown>), shapes };
  } catch (err) {
    throw new CheckpointError(`${path}: its metadata 'args' is damaged (${err instanceof Error ? err.message : String(err)})`);
  }
}

/** A DCGAN discriminator as train:dcgan describes it (args.gan). */
export interface DiscriminatorSpec {
  ndf: number;
  nc: number;
  imageSize: 32 | 64;
  normalize: ModelSpec['normalize'];
}

/**
 * The discriminator a checkpoint holds: train:dcgan's description (args.gan), else, from a bare
 * state dict (the PyTorch DCGAN example's netD_epoch_N.pth), its width and channels from main.0's
 * shape, its image size from its count of convolutions (4 at 32 px, 5 at 64 px) and the
 * example's normalisation to [-1, 1], said on `log`.
 */
export async function discriminatorSpec(source: CheckpointSource, log: (line: string) => void = stderrLine): Promise<DiscriminatorSpec> {
  const path = sourcePath(source);
  const { args, shapes } = await readDescribed(source);
  if (args?.gan) return args.gan as DiscriminatorSpec;
  const first = shapes.get('main.0.weight');
  const convCount = [...shapes].filter(([k, s]) => /^main\.\d+\.weight$/.test(k) && s.length === 4).length;
  if (first?.length !== 4 || first[2] !== 4 || (convCount !== 4 && convCount !== 5)) {
    throw new CheckpointError(`${path}: neither a train:dcgan checkpoint (args.gan) nor a DCGAN discriminator's state dict (main.0.weight of ndf × nc × 4 × 4, 4 or 5 convolutions)`);
  }
  const nc = first[1]!;
  const spec: DiscriminatorSpec = { ndf: first[0]!, nc, imageSize: convCount === 5 ? 64 : 32, normalize: { mean: Array(nc).fill(0.5), std: Array(nc).fill(0.5) } };
  log(`${path}: a DCGAN discriminator's state dict (ndf ${spec.ndf}, ${nc} channels, ${spec.imageSize} px); images normalised to [-1, 1] as the DCGAN example's`);
  return spec;
}

const stderrLine = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

/**
 * A checkpoint's description completed from the data where the file does not say (a state dict
 * carries no image size, normalisation or class names), saying so on `log`.
 */
export function completeSpec(
  spec: CheckpointSpec,
  data: { imageSize: number; classes: readonly string[] },
  normalize: ModelSpec['normalize'],
  path: string,
  log: (line: string) => void = stderrLine,
): ModelSpec {
  if (spec.imageSize !== undefined && spec.normalize !== undefined && spec.classNames !== undefined) return spec as ModelSpec;
  // Class names only where the outputs match the data's classes; none leaves checkClassNames to compare counts.
  const classNames = spec.numClasses === data.classes.length ? [...data.classes] : [];
  const whole: ModelSpec = { imageSize: data.imageSize, normalize, classNames, ...spec };
  log(
    `${path}: a state dict read as ${whole.model}${whole.model === 'nin' ? `-${whole.ninStages}${whole.ninStages > 3 ? ` without the conv3 average pool (RotNet's CIFAR configuration)` : ''}` : ''} (${whole.inChannels} channels, ${whole.numClasses} outputs${whole.stem ? `, ${whole.stem} stem` : ''}); ` +
      `image size ${whole.imageSize}${classNames.length > 0 ? ', class names' : ''} and normalisation (mean ${fmt(whole.normalize.mean)}, std ${fmt(whole.normalize.std)}) taken from the data`,
  );
  return whole;
}

const fmt = (v: readonly number[]) => `[${v.map((x) => x.toFixed(3)).join(', ')}]`;
