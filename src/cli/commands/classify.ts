// Supervised classifiers on K labels per class: train:finetune (a pretrained RotNet backbone,
// loaded without its rotation head), train:supervised (the same architecture from scratch: the
// baseline every comparison needs) and train:gan-classifier (a classifier on a DCGAN
// discriminator's trunk, as the NYU DS-GA 1008 solution trains it). All three train with
// src/train/fit.ts, with the shared optimizer, schedule, augmentation and selection flags.
import { GanClassifier } from '../../../models/dcgan.js';
import { HeadedNet } from '../../../models/headed.js';
import { HeadSet, type HeadType } from '../../../models/heads.js';
import { buildModel, checkpointSpec, classifierPrefix, completeSpec, discriminatorSpec, type HeadSpec, type ModelSpec } from '../../../models/registry.js';
import { loadCheckpoint, readCheckpointFile, type CheckpointFile } from '../../checkpoint/checkpoint.js';
import type { Dataset } from '../../data/dataset.js';
import { defaultGenerator } from '../../random.js';
import { channelStats, labeledSplit, openSplits } from '../../train/splits.js';
import { fitClassifier, type FitResult } from '../../train/fit.js';
import { freezeThrough } from '../../train/freeze.js';
import { Run } from '../../train/run.js';
import { requireClassifierStepFits } from '../../train/step-memory.js';
import { UsageError, type Flags, type Parsed } from '../args.js';
import { asUsageError, augmentOf, checkDataMatches, defineCommand, describeAugment, modelSpecOf, optimizerOf, outfOf, scheduleOf, selectKey } from '../common.js';
import { augmentFlags, machineFlags, optimizerFlags, requestedChannels, dataFlags, labelFlags, modelFlags, netModelFlag, runFlags, scheduleFlags, selectFlags } from '../flags.js';

export interface ClassifyResult extends FitResult {
  outf: string;
  labeled: number;
}

const classifyFlags = {
  ...dataFlags,
  ...labelFlags,
  ...optimizerFlags,
  ...scheduleFlags,
  ...augmentFlags,
  ...selectFlags,
  ...runFlags,
  ...machineFlags,
  batchSize: { type: 'int', default: 64, help: 'images per step' },
  epochs: { type: 'int', default: 100, aliases: ['niter'], help: 'epochs to train' },
  schedule: { ...scheduleFlags.schedule, default: 'cosine' },
  lr: { type: 'number', default: 0.05, help: 'learning rate of the head (and of everything, from scratch)' },
  backboneLr: { type: 'number', help: 'learning rate of the pretrained layers (default: --lr)' },
  freeze: { type: 'string', help: "train nothing up to and including this stage (e.g. conv2, layer3, trunk); default: nothing frozen" },
  augment: { ...augmentFlags.augment, help: `${augmentFlags.augment.help} (RotNet's classifiers on CIFAR; the NYU fine-tuning flips its 96 px images)` },
  epochSize: { type: 'int', help: 'images per epoch, drawn in order with repetition (few labels: e.g. 10000)' },
  valSamples: { type: 'int', default: 0, help: 'validation images per class, the ones after the first trainSamples (0: none)' },
  patience: { type: 'int', default: 0, help: 'early stopping: epochs without a better --selectBy on validation (needs --valSamples; 0: off)' },
} as const satisfies Flags;

type ClassifyArgs = Parsed<typeof classifyFlags>;

interface Source {
  /** The model's description, given the data. */
  spec(data: Dataset, normalize: ModelSpec['normalize']): Promise<ModelSpec>;
  /** Fills the new model with pretrained weights. */
  load?(model: ReturnType<typeof buildModel>, spec: ModelSpec): Promise<void>;
  defaultFreeze?: string;
  /** Dropout on the head's input in training. */
  headDropout?: number;
}

async function classify(name: string, a: ClassifyArgs, source: Source): Promise<ClassifyResult> {
  const outf = outfOf(name, a);
  const splits = await openSplits(a.dataroot, { imageSize: a.imageSize, channels: requestedChannels(a.channels) });
  try {
    const { labeled, val } = labeledSplit(splits.train, a.trainSamples, a.valSamples);
    if (a.patience > 0 && !val) throw new UsageError('--patience needs a validation split: pass --valSamples');
    const selectBy = selectKey(a.selectBy, val ? 'val' : 'test', labeled.classes.length);
    const normalize = await channelStats(splits.train);
    const spec = await source.spec(splits.train, normalize);
    checkDataMatches(spec, splits.train, name);
    const augment = augmentOf(a, spec.imageSize);
    requireClassifierStepFits(spec, [splits.train.channels, splits.train.imageSize, splits.train.imageSize], a.batchSize);
    defaultGenerator.manualSeed(a.manualSeed);
    const model = buildModel(spec, a.manualSeed);
    try {
      if (source.load) await source.load(model, spec);
      const frozen = asUsageError('--freeze', () => freezeThrough(model, a.freeze ?? source.defaultFreeze ?? null));
      const run = new Run(outf, name, a);
      run.log(
        `${name}: ${spec.model} on ${labeled.length} labeled images (${a.trainSamples || 'all'} per class, ${labeled.classes.length} classes)` +
          `${val ? `, ${val.length} for validation` : ''}, tested on ${splits.test.length} (${splits.testFrom})${frozen.through ? `; frozen through ${frozen.through}` : ''}; ` +
          `${a.optimizer}, ${describeAugment(augment)}${source.headDropout ? `, dropout ${source.headDropout} before the head` : ''}, best epoch by ${selectBy}; output in ${outf}`,
      );
      try {
        const result = await fitClassifier({
          run,
          model,
          frozen,
          headPrefix: classifierPrefix(spec),
          data: { train: labeled, val, test: splits.test, normalize: spec.normalize },
          settings: { ...a, backboneLr: a.backboneLr, epochSize: a.epochSize, resume: a.resume },
          optimizer: (groups) => optimizerOf(a, groups),
          schedule: (steps) => scheduleOf(a, steps),
          augment,
          selectBy,
          ...(source.headDropout ? { headDropout: source.headDropout } : {}),
          args: { ...a, modelSpec: spec },
        });
        const top5 = result.test.top5 === undefined ? '' : `, top-5 ${(100 * result.test.top5).toFixed(2)} %`;
        run.log(`${name}: test top-1 ${(100 * result.test.top1).toFixed(2)} %${top5} (epoch ${result.epoch})`);
        run.metric({ kind: 'result', epoch: result.epoch, testTop1: result.test.top1, testTop5: result.test.top5, labeledPerClass: a.trainSamples });
        return { ...result, outf, labeled: labeled.length };
      } finally {
        run.close();
      }
    } finally {
      model.dispose();
    }
  } finally {
    await splits.close();
  }
}

export const finetune = defineCommand(
  {
    name: 'train:finetune',
    summary: 'Fine-tune a pretrained network (e.g. RotNet) on K labels per class, with a new head or the one train:probe trained (--head).',
    flags: {
      ...classifyFlags,
      ...netModelFlag,
      net: { type: 'string', help: 'the pretrained checkpoint (train:rotnet writes net_best.safetensors; a .pth state dict works too); with --head, the probe’s own by default' },
      head: { type: 'string', help: 'a train:probe checkpoint: the network is cut after the probed block and its trained head kept, then all of it trained (the two-stage recipe)' },
      headBlock: { type: 'string', help: 'with --head: which of the probe’s blocks (default: its first)' },
    },
    epilog: 'Example: npm run train:finetune -- --net runs/rotnet/net_best.safetensors --trainSamples 100 --freeze conv2\n' +
      '         npm run train:finetune -- --head runs/probe/net_best.safetensors --trainSamples 100 --lr 0.001 --epochs 15',
  },
  async (a) => {
    // Each file is read once, for its description and then its weights, and dropped once they are on the device.
    let headFile: CheckpointFile | null = a.head ? await readCheckpointFile(a.head) : null;
    const probe = headFile ? await probeHeadOf(headFile, a.headBlock) : null;
    const net = a.net ?? probe?.net;
    if (!net) throw new UsageError('train:finetune: --net is required (a checkpoint written by train:rotnet), or --head (one written by train:probe)');
    let file: CheckpointFile | null = await readCheckpointFile(net);
    const pretrained = await checkpointSpec(file, a.model);
    return classify('train:finetune', a, {
      spec: async (data, normalize) => ({
        ...completeSpec(pretrained, data, pretrained.normalize ?? normalize, net),
        numClasses: data.classes.length,
        classNames: [...data.classes],
        ...(probe ? { head: probe.head } : {}),
      }),
      load: async (model, spec) => {
        const head = classifierPrefix(spec);
        const loaded = await loadCheckpoint(file ?? net, { model, strict: false, skip: [head] });
        file = null;
        const lacking = loaded.missing.filter((k) => !k.startsWith(head));
        if (lacking.length > 0) throw new UsageError(`${net} lacks backbone tensors: ${lacking.slice(0, 5).join(', ')}`);
        if (probe && model instanceof HeadedNet) {
          // The probe saved its heads under their blocks' names: the same wrapper reads this one.
          const kept = await loadCheckpoint(headFile ?? a.head!, { model: new HeadSet([[probe.head.block, model.head]]), strict: false });
          if (kept.missing.length > 0) throw new UsageError(`--head ${a.head} lacks the head's tensors: ${kept.missing.slice(0, 5).join(', ')}`);
        }
        headFile = null;
      },
    });
  },
);

/** The head a train:probe checkpoint holds on `block` (its first by default) and the network it probed. */
async function probeHeadOf(file: CheckpointFile, block: string | undefined): Promise<{ net: string; head: HeadSpec }> {
  const { path } = file;
  const { args } = await loadCheckpoint(file);
  const probe = args?.probe as { blocks: string[]; head: HeadType; poolSizes?: Record<string, number> } | undefined;
  if (!probe || typeof args?.net !== 'string') throw new UsageError(`--head ${path}: not a train:probe checkpoint (its metadata has no probe description)`);
  const chosen = block ?? probe.blocks[0]!;
  if (!probe.blocks.includes(chosen)) throw new UsageError(`--headBlock ${chosen}: ${path} holds heads on ${probe.blocks.join(', ')}`);
  // Probes from before per-block pooling stored one --poolSize.
  const poolSize = probe.poolSizes?.[chosen] ?? Number(args.poolSize ?? 2);
  return { net: args.net, head: { block: chosen, type: probe.head, ...(probe.head === 'linear' ? { poolSize } : {}) } };
}

export const supervised = defineCommand(
  {
    name: 'train:supervised',
    summary: 'Train a network from scratch on K labels per class: the baseline for pretrained features.',
    flags: { ...classifyFlags, ...modelFlags },
    epilog: 'Example: npm run train:supervised -- --model nin --trainSamples 100',
  },
  async (a) => classify('train:supervised', a, { spec: async (data, normalize) => modelSpecOf(a, data, data.classes.length, normalize) }),
);

export const ganClassifier = defineCommand(
  {
    name: 'train:gan-classifier',
    summary: "Train a classifier on a DCGAN discriminator's trunk (frozen by default) with K labels per class, as the NYU DS-GA 1008 solution.",
    flags: {
      ...classifyFlags,
      // The NYU solution's GAN classifier: Adam 1e-3 (β1 0.5), ×0.1 every 7 epochs, the best epoch by top-5.
      optimizer: { ...optimizerFlags.optimizer, default: 'adam' },
      lr: { ...classifyFlags.lr, default: 0.001 },
      beta1: { ...optimizerFlags.beta1, default: 0.5 },
      weightDecay: { ...optimizerFlags.weightDecay, default: 0 },
      schedule: { ...scheduleFlags.schedule, default: 'step' },
      lrStep: { ...scheduleFlags.lrStep, default: 7 },
      selectBy: { ...selectFlags.selectBy, default: 'top5' },
      augment: { ...augmentFlags.augment, default: 'none', help: `${augmentFlags.augment.help} (the NYU GAN classifier resizes and normalises only)` },
      freeze: { ...classifyFlags.freeze, help: 'train nothing up to and including this stage; default: trunk (the discriminator frozen), nothing with --regularized' },
      regularized: { type: 'boolean', default: false, help: "the NYU solution's regularised variant: Dropout(0.6) before the head and the whole discriminator trained (no --freeze)" },
      netD: { type: 'string', help: 'the discriminator checkpoint (train:dcgan writes netD_epoch_N.safetensors; the DCGAN example’s netD_epoch_N.pth works too)' },
    },
    epilog: 'Example: npm run train:gan-classifier -- --netD runs/dcgan/netD_epoch_25.safetensors --imageSize 32 --trainSamples 100 --regularized',
  },
  async (a) => {
    const netD = a.netD;
    if (!netD) throw new UsageError('train:gan-classifier: --netD is required (a checkpoint written by train:dcgan)');
    let file: CheckpointFile | null = await readCheckpointFile(netD);
    const gan = await discriminatorSpec(file);
    return classify('train:gan-classifier', a, {
      spec: async (data) => ({
        model: 'dcgan-classifier',
        ndf: gan.ndf,
        ninStages: 0,
        numClasses: data.classes.length,
        inChannels: gan.nc,
        imageSize: gan.imageSize,
        normalize: gan.normalize,
        classNames: [...data.classes],
      }),
      load: async (model) => {
        if (!(model instanceof GanClassifier)) throw new Error('train:gan-classifier: expected a GanClassifier');
        await loadCheckpoint(file ?? netD, { model: model.discriminator });
        file = null;
      },
      ...(a.regularized ? { headDropout: 0.6 } : { defaultFreeze: 'trunk' }),
    });
  },
);
