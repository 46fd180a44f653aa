// train:probe — the RotNet evaluation protocol: the pretrained network is frozen and a new
// classifier (linear, MLP or conv head) is trained on the features of each named block at once,
// reporting loss, top-1 and top-5 per block on held-out images. Features are computed once per
// batch and shared by every head; the labelled images are augmented as RotNet's classifiers'.
import { HEAD_TYPES, HeadSet, headOf, type HeadType } from '../../../models/heads.js';
import { buildModel, checkpointSpec, completeSpec, featureBlocks } from '../../../models/registry.js';
import { noGrad } from '../../autograd/tape.js';
import { loadCheckpoint, readCheckpointFile, type CheckpointFile } from '../../checkpoint/checkpoint.js';
import { DataLoader } from '../../data/loader.js';
import * as F from '../../functional.js';
import type { Module } from '../../nn/module.js';
import { zeros } from '../../creation.js';
import { defaultGenerator, Generator } from '../../random.js';
import { scope } from '../../scope.js';
import type { Tensor } from '../../tensor.js';
import { channelStats, labeledSplit, openSplits } from '../../train/splits.js';
import { Meter } from '../../train/meter.js';
import { Run } from '../../train/run.js';
import { anyLabelsLoss, requireStepFits, sgdStep } from '../../train/step-memory.js';
import { loopSettings, trainLoop } from '../../train/loop.js';
import { asAccuracy, asLoss, type EpochMetrics, type StepMetrics } from '../../train/trainer.js';
import { UsageError } from '../args.js';
import { augmentOf, checkDataMatches, defineCommand, describeAugment, optimizerOf, outfOf, scheduleOf, selectKey } from '../common.js';
import { augmentFlags, machineFlags, optimizerFlags, requestedChannels, dataFlags, labelFlags, netModelFlag, runFlags, scheduleFlags, selectFlags } from '../flags.js';

/**
 * --poolSize: `N` for every block, or `block:N` entries (RotNet's ImageNet AlexNet probes pool
 * conv1:12,conv2:7,conv3:5,conv4:6,conv5:6), a bare N the default of the others (else 2).
 */
export function poolSizesOf(flag: string, blocks: readonly string[]): Record<string, number> {
  const sizes: Record<string, number> = {};
  let fallback = 2;
  for (const item of flag.split(',').map((t) => t.trim())) {
    const m = /^(?:([^:\s]+):)?(\d+)$/.exec(item);
    if (!m || Number(m[2]) < 1) throw new UsageError(`--poolSize takes N or block:N entries (e.g. conv1:4,conv2:2), got '${item}' in '${flag}'`);
    if (m[1] === undefined) fallback = Number(m[2]);
    else if (!blocks.includes(m[1])) throw new UsageError(`--poolSize: '${m[1]}' is not a probed block (--blocks: ${blocks.join(', ')})`);
    else sizes[m[1]] = Number(m[2]);
  }
  return Object.fromEntries(blocks.map((b) => [b, sizes[b] ?? fallback]));
}

export interface ProbeResult {
  outf: string;
  /** Held-out loss and accuracy per block after the last epoch. */
  blocks: Record<string, BlockScore>;
  /** The epoch that --selectBy picked on the first block (net_best.safetensors). */
  bestEpoch: number;
}

interface BlockScore {
  loss: number;
  top1: number;
  top5?: number;
}

export const probe = defineCommand(
  {
    name: 'train:probe',
    summary: 'Train classifiers on the frozen features of named blocks of a pretrained network (the RotNet protocol).',
    flags: {
      ...dataFlags,
      ...labelFlags,
      ...optimizerFlags,
      ...scheduleFlags,
      schedule: { ...scheduleFlags.schedule, default: 'rotnet-classifier' },
      ...augmentFlags,
      augment: { ...augmentFlags.augment, help: `${augmentFlags.augment.help} (RotNet's CIFAR classifiers crop and flip the labelled images)` },
      ...selectFlags,
      selectBy: { ...selectFlags.selectBy, help: "the held-out metric of the first --blocks block that picks the best epoch (RotNet: top-1 on the test split, its 'prec1')" },
      ...runFlags,
      ...machineFlags,
      net: { type: 'string', help: 'the pretrained checkpoint (train:rotnet writes net_best.safetensors; a .pth state dict works too)' },
      ...netModelFlag,
      blocks: { type: 'string', help: 'comma-separated stages to probe (default: every stage with a feature map)' },
      head: {
        type: 'string',
        default: 'linear',
        choices: HEAD_TYPES,
        help: 'linear: pool, batch norm, Linear; mlp: two hidden layers; conv: an NIN block (RotNet’s ConvClassifier); alexnet: RotNet’s AlexNet conv4/conv5 head (pool5, two FC layers of 4096; a conv5-like block first on conv4)',
      },
      poolSize: { type: 'string', default: '2', help: 'linear head: feature maps are max-pooled to N × N first; N for every block or per block, e.g. conv1:12,conv2:7,conv3:5,conv4:6,conv5:6' },
      batchSize: { type: 'int', default: 128, help: 'images per step' },
      epochs: { type: 'int', default: 100, aliases: ['niter'], help: 'epochs to train' },
      epochSize: { type: 'int', help: 'images per epoch, drawn in order with repetition (few labels: e.g. 10000)' },
    },
    epilog: 'Example: npm run train:probe -- --net runs/rotnet/net_best.safetensors --blocks conv1,conv2,conv3 --head conv --trainSamples 100',
  },
  async (a): Promise<ProbeResult> => {
    if (!a.net) throw new UsageError('train:probe: --net is required (a checkpoint written by train:rotnet)');
    // Read once for its description, then its weights; dropped once they are on the device.
    let net: CheckpointFile | null = await readCheckpointFile(a.net);
    const described = await checkpointSpec(net, a.model);
    const outf = outfOf('train:probe', a);
    const splits = await openSplits(a.dataroot, { imageSize: a.imageSize ?? described.imageSize, channels: requestedChannels(a.channels) ?? (described.inChannels === 1 ? 1 : 3) });
    const disposers: (() => void)[] = [];
    try {
      const spec = completeSpec(described, splits.train, described.normalize ?? (await channelStats(splits.train)), a.net);
      const trunk = buildModel(spec, a.manualSeed);
      disposers.push(() => trunk.dispose());
      checkDataMatches(spec, splits.train, 'train:probe');
      await loadCheckpoint(net, { model: trunk });
      net = null;
      trunk.eval();
      for (const p of trunk.parameters()) p.requiresGrad_(false);
      const { labeled } = labeledSplit(splits.train, a.trainSamples);
      const classes = labeled.classes.length;
      // The first block's held-out top1_<block>, top5_<block> or testLoss_<block> (its training loss is loss_<block>).
      const watch = { testTop1: 'top1', testTop5: 'top5', testLoss: 'testLoss' }[selectKey(a.selectBy, 'test', classes)]!;
      const augment = augmentOf(a, spec.imageSize);
      const shapes = noGrad(() =>
        scope(() => {
          const out = trunk.features(zeros([1, spec.inChannels, spec.imageSize, spec.imageSize]), trunk.stageNames);
          return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, t.shape.slice(1)]));
        }),
      );
      const blocks = a.blocks ? a.blocks.split(',').map((b) => b.trim()) : featureBlocks(spec, trunk);
      for (const b of blocks) {
        if (!shapes[b]) throw new UsageError(`--blocks: no stage '${b}' in ${spec.model} (stages: ${trunk.stageNames.join(', ')})`);
        if ((a.head === 'conv' || a.head === 'alexnet') && shapes[b]!.length !== 3) throw new UsageError(`--head ${a.head} needs feature maps; '${b}' gives [${shapes[b]!.join(', ')}]`);
      }
      const poolSizes = poolSizesOf(a.poolSize, blocks);
      const makeHeads = (seed: number) => {
        const generator = new Generator(seed);
        return blocks.map((b) => [b, headOf(a.head as HeadType, b, shapes[b]!, classes, { poolSize: poolSizes[b]!, generator })] as const);
      };
      // The step: the frozen trunk's features at the batch (no gradients), every head trained on them.
      requireStepFits(
        sgdStep(
          () => new HeadSet(makeHeads(a.manualSeed + 10)),
          (fresh, n) => {
            const features = noGrad(() => trunk.features(zeros([n, spec.inChannels, spec.imageSize, spec.imageSize]), blocks));
            for (const [b, head] of fresh.heads) anyLabelsLoss(head.forward(features[b]!)).backward();
          },
        ),
        a.batchSize,
      );
      defaultGenerator.manualSeed(a.manualSeed);
      const heads = makeHeads(a.manualSeed + 10);
      const all = new HeadSet(heads);
      disposers.push(() => all.dispose());
      const order = new Generator(a.manualSeed + 1);
      const loader = new DataLoader(labeled, { batchSize: a.batchSize, shuffle: true, generator: order, ...(a.epochSize ? { epochSize: a.epochSize } : {}), transform: { ...augment, normalize: spec.normalize } });
      // Held-out images at --batchSize too: an eval pass needs less memory than the step that fits.
      const testLoader = new DataLoader(splits.test, { batchSize: a.batchSize, generator: new Generator(a.manualSeed + 2), transform: { normalize: spec.normalize } });
      const optimizers = Object.fromEntries(heads.map(([b, h]) => [b, optimizerOf(a, h.parameters())]));
      for (const o of Object.values(optimizers)) disposers.push(() => o.dispose());
      const run = new Run(outf, 'train:probe', a);
      run.log(`train:probe: ${a.head} heads on ${blocks.join(', ')} of ${spec.model} (${a.net}); ${labeled.length} labeled images (${describeAugment(augment)}), ${splits.test.length} held out; ${a.optimizer}; best epoch by ${watch}_${blocks[0]}; output in ${outf}`);
      const result: ProbeResult = { outf, blocks: {}, bestEpoch: 0 };
      try {
        const loop = await trainLoop({
          ...loopSettings(a),
          run,
          loader,
          optimizers: Object.values(optimizers),
          schedule: scheduleOf(a, loader.length),
          save: [{ model: all, optimizer: optimizers, generators: { data: order, augment: loader.augmentGenerator, global: defaultGenerator }, args: { ...a, modelSpec: spec, probe: { blocks, head: a.head, poolSizes } }, classNames: labeled.classes }],
          selectBy: `${watch}_${blocks[0]}`,
          patience: a.patience,
          replicate: [trunk],
          train: () => all.train(),
          step: (batch) => {
            const features = noGrad(() => trunk.features(batch.images, blocks));
            const losses: StepMetrics = {};
            for (const [b, head] of heads) {
              const loss = F.crossEntropy(head.forward(features[b]!), batch.labels);
              loss.backward();
              losses[`loss_${b}`] = asLoss(loss);
            }
            return losses;
          },
          evaluate: async () => {
            all.eval();
            result.blocks = await scoreBlocks(testLoader, (x) => noGrad(() => trunk.features(x, blocks)), heads, classes);
            const scores: EpochMetrics = {};
            for (const [b, s] of Object.entries(result.blocks)) {
              scores[`testLoss_${b}`] = asLoss(s.loss);
              scores[`top1_${b}`] = asAccuracy(s.top1);
              if (s.top5 !== undefined) scores[`top5_${b}`] = asAccuracy(s.top5);
            }
            return scores;
          },
        });
        result.bestEpoch = loop.bestEpoch;
        run.metric({ kind: 'result', blocks: result.blocks, bestEpoch: loop.bestEpoch, labeledPerClass: a.trainSamples, head: a.head });
        for (const [b, s] of Object.entries(result.blocks)) {
          run.log(`${b}: top-1 ${(100 * s.top1).toFixed(2)} %${s.top5 === undefined ? '' : `, top-5 ${(100 * s.top5).toFixed(2)} %`}`);
        }
        return result;
      } finally {
        run.close();
      }
    } finally {
      for (const d of disposers.reverse()) d();
      await splits.close();
    }
  },
);

/** Top-1 (and top-5) of every head over one pass of the loader, features computed once per batch. */
async function scoreBlocks(
  loader: DataLoader,
  features: (x: Tensor) => Record<string, Tensor>,
  heads: readonly (readonly [string, Module])[],
  classes: number,
): Promise<Record<string, BlockScore>> {
  const meters = new Map(heads.map(([b]) => [b, { loss: new Meter(), top1: new Meter(), top5: new Meter() }]));
  for await (const batch of loader) {
    noGrad(() =>
      scope(() => {
        const f = features(batch.images);
        for (const [b, head] of heads) {
          const logits = head.forward(f[b]!);
          meters.get(b)!.loss.add(F.crossEntropy(logits, batch.labels), batch.size);
          meters.get(b)!.top1.add(F.topkAccuracy(logits, batch.labels, 1), batch.size);
          if (classes > 5) meters.get(b)!.top5.add(F.topkAccuracy(logits, batch.labels, 5), batch.size);
        }
      }),
    );
    batch.dispose();
  }
  const out: Record<string, BlockScore> = {};
  for (const [b, m] of meters) {
    out[b] = { loss: await m.loss.mean(), top1: await m.top1.mean(), ...(classes > 5 ? { top5: await m.top5.mean() } : {}) };
    for (const meter of Object.values(m)) meter.reset();
  }
  return out;
}
