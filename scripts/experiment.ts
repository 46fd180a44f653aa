// Self-supervised pretraining against training from scratch on few labels, on any --dataroot
// (Fashion-MNIST by default; `experiment:fmnist` is the same script). Two protocols:
// - rotnet: the RotNet paper's semi-supervised comparison (Gidaris et al., 2018, fig. 5b): RotNet
//   on every training image without labels, then a conv head on the frozen conv2 features versus
//   the same network from scratch, with K labels per class, and a supervised run on all labels;
// - flowers: the flowers tutorial's: a fraction (10 %) of the training images labelled, a network
//   trained on them alone, RotNet (its 3-way 0°/120°/240° task) on all images, fine-tuned on the
//   labelled ones with Adam, and the linear evaluation (features → standardise → PCA → logistic
//   regression) of both networks' features.
// Writes results.json, results.md (the table) and results.png (rotnet protocol).
//
//   npm run experiment -- [--dataroot fashion-mnist] [--labels 20,100,400] [--rotnetEpochs 30] [--epochs 60]
//   npm run experiment -- --protocol flowers --dataroot ~/flowers --imageSize 64
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCommand, UsageError, type Command, type Flags } from '../src/cli/args.js';
import { runMain } from '../src/cli/errors.js';
import type { ClassifyResult } from '../src/cli/commands/classify.js';
import type { ProbeResult } from '../src/cli/commands/probe.js';
import type { RotnetResult } from '../src/cli/commands/rotnet.js';
import { modelSpecOf } from '../src/cli/common.js';
import { runCommand } from '../src/cli/main.js';
import { backend, init, shutdown } from '../src/runtime.js';
import { plotPng } from '../src/train/png.js';
import { openSplits } from '../src/train/splits.js';
import { batchThatFits, classifierStep } from '../src/train/step-memory.js';
import { writeFileAtomicSync } from '../src/atomic-file.js';
import { buildModel, checkpointSpec, type ModelSpec } from '../models/registry.js';
import { loadCheckpoint } from '../src/checkpoint/checkpoint.js';
import type { Dataset } from '../src/data/dataset.js';
import { DataLoader } from '../src/data/loader.js';
import { labeledSplit } from '../src/train/splits.js';
import { linearEvaluation } from '../src/train/linear-eval.js';

const command = {
  name: 'experiment',
  summary: 'Self-supervised pretraining vs. training from scratch on few labels: the RotNet paper’s comparison (K labels per class) or the flowers tutorial’s (10 % labelled).',
  flags: {
    protocol: { type: 'string', default: 'rotnet', choices: ['rotnet', 'flowers'], help: 'rotnet: conv head on frozen RotNet conv2 vs. scratch at K labels per class; flowers: 10 % labelled, scratch vs. RotNet fine-tuned, and the linear evaluation' },
    dataroot: { type: 'string', default: 'fashion-mnist', help: 'the data (fashion-mnist needs `apt-get install dataset-fashion-mnist`; builtin is the 3,000-image subset; any folder the commands read)' },
    imageSize: { type: 'int', help: 'resize images (default: their own 28 px)' },
    model: { type: 'string', default: 'nin', help: 'the network of both arms' },
    ninStages: { type: 'int', default: 4, help: 'stages of NIN' },
    labels: { type: 'string', default: '20,100,400', help: 'rotnet protocol: labeled images per class, comma-separated' },
    labelledFraction: { type: 'number', default: 0.1, help: 'flowers protocol: the share of each class’s training images that keep their labels' },
    rotations: { type: 'int', help: 'RotNet’s pretext: 4 (quarter turns) or 3 (0°, 120°, 240°); default 4, and 3 for the flowers protocol' },
    augment: { type: 'string', help: 'every run’s --augment (default: each command’s own)' },
    finetuneEpochs: { type: 'int', help: 'flowers protocol: epochs of fine-tuning (default: --epochs)' },
    finetuneLr: { type: 'number', default: 1e-3, help: 'flowers protocol: Adam’s rate when fine-tuning the whole RotNet network' },
    evalBlock: { type: 'string', default: 'conv2', help: 'flowers protocol: the block the linear evaluation reads' },
    components: { type: 'int', default: 64, help: 'flowers protocol: principal components kept by the linear evaluation' },
    rotnetEpochs: { type: 'int', default: 30, help: 'epochs of RotNet pretraining' },
    rotnetEpochSize: { type: 'int', help: 'images per RotNet epoch (default: every training image once)' },
    epochs: { type: 'int', default: 60, help: 'epochs of each classifier' },
    epochSize: { type: 'int', default: 10000, help: 'images per classifier epoch, drawn with repetition from the K per class' },
    batchSize: { type: 'int', default: 128, help: 'images per step (lowered to the largest batch the device memory holds)' },
    outf: { type: 'string', default: 'runs/experiment', help: 'output folder' },
    manualSeed: { type: 'int', default: 0, help: 'seed' },
    maxIters: { type: 'int', default: 0, help: 'stop every run after this many steps (smoke runs)' },
  },
} as const satisfies Command<Flags>;

export interface Row {
  labelsPerClass: number | 'all';
  rotnetConvHead?: number;
  supervised: number;
}

type Args = NonNullable<ReturnType<typeof parseCommand<typeof command.flags>>>;

async function main(argv: readonly string[]): Promise<void> {
  const a = parseCommand(command, argv);
  if (!a) return;
  const ks = a.labels.split(',').map((s) => Number(s.trim()));
  if (ks.some((k) => !(Number.isInteger(k) && k > 0))) throw new UsageError(`--labels must be positive integers, got '${a.labels}'`);
  if (!(a.labelledFraction > 0 && a.labelledFraction <= 1)) throw new UsageError(`--labelledFraction must lie in (0, 1], got ${a.labelledFraction}`);
  await init();
  try {
    const batchSize = await fittingBatchSize(a);
    const common = ['--dataroot', a.dataroot, '--batchSize', String(batchSize), '--manualSeed', String(a.manualSeed), '--maxIters', String(a.maxIters), ...(a.imageSize ? ['--imageSize', String(a.imageSize)] : []), ...(a.augment ? ['--augment', a.augment] : [])];
    const model = ['--model', a.model, '--ninStages', String(a.ninStages)];
    const rotations = a.rotations ?? (a.protocol === 'flowers' ? 3 : 4);
    const rotnetOut = join(a.outf, 'rotnet');
    const resume = existsSync(join(rotnetOut, `net_epoch_${a.rotnetEpochs}.safetensors`));
    const rot = resume
      ? null
      : ((await runCommand('train:rotnet', [...common, ...model, '--rotations', String(rotations), '--epochs', String(a.rotnetEpochs), ...(a.rotnetEpochSize ? ['--epochSize', String(a.rotnetEpochSize)] : []), '--outf', rotnetOut])) as RotnetResult);
    const net = join(rotnetOut, 'net_best.safetensors');
    const classifier = (k: number | 'all', name: string) => [...common, '--epochs', String(a.epochs), '--schedule', 'step', '--lrStep', String(Math.max(1, Math.round(a.epochs * 0.4))), '--gamma', '0.2', ...(k === 'all' ? [] : ['--trainSamples', String(k), '--epochSize', String(a.epochSize)]), '--outf', join(a.outf, `${name}-${k}`)];
    if (a.protocol === 'flowers') {
      await flowers(a, { net, rot, rotations, classifier, model });
      return;
    }
    const rows: Row[] = [];
    for (const k of ks) {
      const probe = (await runCommand('train:probe', [...classifier(k, 'rotnet-conv2'), '--net', net, '--blocks', 'conv2', '--head', 'conv'])) as ProbeResult;
      const scratch = (await runCommand('train:supervised', [...classifier(k, 'supervised'), ...model])) as ClassifyResult;
      rows.push({ labelsPerClass: k, rotnetConvHead: probe.blocks.conv2!.top1, supervised: scratch.test.top1 });
      writeResults(a.outf, rows, a, rot);
    }
    const full = (await runCommand('train:supervised', [...classifier('all', 'supervised'), ...model])) as ClassifyResult;
    rows.push({ labelsPerClass: 'all', supervised: full.test.top1 });
    writeResults(a.outf, rows, a, rot);
    process.stdout.write(readFileSync(join(a.outf, 'results.md'), 'utf8'));
  } finally {
    shutdown();
  }
}

/**
 * The flowers tutorial: K = labelledFraction of each class labelled; the network from scratch on
 * them; RotNet (on every image, run by main) fine-tuned on them with Adam; the linear evaluation
 * of the RotNet and the scratch networks' --evalBlock features fitted on the same K per class.
 */
async function flowers(
  a: Args,
  { net, rot, rotations, classifier, model }: { net: string; rot: RotnetResult | null; rotations: number; classifier: (k: number, name: string) => string[]; model: string[] },
): Promise<void> {
  const splits = await openSplits(a.dataroot, a.imageSize ? { imageSize: a.imageSize } : {});
  let k: number;
  let classes: number;
  try {
    classes = splits.train.classes.length;
    k = Math.max(1, Math.round((a.labelledFraction * splits.train.length) / classes));
  } finally {
    await splits.close();
  }
  const scratch = (await runCommand('train:supervised', [...classifier(k, 'supervised'), ...model])) as ClassifyResult;
  const epochs = String(a.finetuneEpochs ?? a.epochs);
  const tuned = (await runCommand('train:finetune', [...classifier(k, 'finetune'), '--net', net, '--optimizer', 'adam', '--lr', String(a.finetuneLr), '--schedule', 'constant', '--epochs', epochs])) as ClassifyResult;
  const linear = async (path: string) => {
    const spec = (await checkpointSpec(path)) as ModelSpec;
    const data = await openSplits(a.dataroot, { imageSize: spec.imageSize, channels: spec.inChannels === 1 ? 1 : 3 });
    const trunk = buildModel(spec, a.manualSeed);
    try {
      await loadCheckpoint(path, { model: trunk });
      const loader = (d: Dataset) => new DataLoader(d, { batchSize: a.batchSize, transform: { normalize: spec.normalize } });
      return await linearEvaluation(trunk, a.evalBlock, loader(labeledSplit(data.train, k).labeled), loader(data.test), classes, a.components);
    } finally {
      trunk.dispose();
      await data.close();
    }
  };
  const rotnetLinear = await linear(net);
  const scratchLinear = await linear(join(scratch.outf, 'net_best.safetensors'));
  const pct = (v: number) => `${(100 * v).toFixed(1)} %`;
  const md = [
    `${a.dataroot}, ${a.model === 'nin' ? `NIN-${a.ninStages}` : a.model}; ${k} labelled images per class (${pct(a.labelledFraction)}); RotNet ${rotations} rotations, ${a.rotnetEpochs} epochs${rot ? ` (held-out rotation accuracy ${pct(rot.rotationAccuracy)})` : ''}; ${backend().adapterName}`,
    '',
    '| arm | test top-1 |',
    '| --- | ---: |',
    `| from scratch on the labelled images (${a.epochs} epochs) | ${pct(scratch.test.top1)} |`,
    `| RotNet, fine-tuned on them (Adam ${a.finetuneLr}, ${epochs} epochs) | ${pct(tuned.test.top1)} |`,
    `| linear evaluation of RotNet ${a.evalBlock} (PCA ${rotnetLinear.components}, ${pct(rotnetLinear.explainedVariance)} of the variance) | ${pct(rotnetLinear.testTop1)} |`,
    `| linear evaluation of the scratch network's ${a.evalBlock} (PCA ${scratchLinear.components}) | ${pct(scratchLinear.testTop1)} |`,
    '',
  ].join('\n');
  writeFileAtomicSync(join(a.outf, 'results.md'), md);
  writeFileAtomicSync(join(a.outf, 'results.json'), `${JSON.stringify({ device: backend().adapterName, ...a, labelledPerClass: k, scratch: scratch.test, finetune: tuned.test, rotnetLinear, scratchLinear }, null, 2)}\n`);
  process.stdout.write(md);
}

/**
 * --batchSize, or the largest batch whose RotNet step (4 rotations of each image: the largest
 * step of the experiment) fits the device memory, said in one line; every run then takes it.
 */
async function fittingBatchSize(a: { dataroot: string; imageSize?: number; model: string; ninStages: number; batchSize: number }): Promise<number> {
  const splits = await openSplits(a.dataroot, { ...(a.imageSize ? { imageSize: a.imageSize } : {}), unlabeled: true });
  try {
    const { channels, imageSize } = splits.train;
    // Memory does not depend on the normalisation's values.
    const spec = modelSpecOf(a, splits.train, 4, { mean: Array(channels).fill(0), std: Array(channels).fill(1) });
    const batch = batchThatFits(classifierStep(spec, [channels, imageSize, imageSize], 4), a.batchSize);
    if (batch < a.batchSize) process.stderr.write(`experiment: a RotNet step at --batchSize ${a.batchSize} does not fit the device memory; every run takes --batchSize ${batch}, the largest that fits\n`);
    return batch;
  } finally {
    await splits.close();
  }
}

function writeResults(outf: string, rows: readonly Row[], a: { model: string; ninStages: number; rotnetEpochs: number; epochs: number; dataroot: string }, rot: RotnetResult | null): void {
  const pct = (v: number | undefined) => (v === undefined ? '—' : `${(100 * v).toFixed(1)} %`);
  const device = backend().adapterName;
  const net = a.model === 'nin' ? `NIN-${a.ninStages}` : a.model;
  const md = [
    `${a.dataroot}, ${net}; RotNet ${a.rotnetEpochs} epochs${rot ? ` (held-out rotation accuracy ${pct(rot.rotationAccuracy)})` : ''}, classifiers ${a.epochs} epochs; ${device}`,
    '',
    '| labels per class | RotNet conv2 + conv head | supervised from scratch |',
    '| ---: | ---: | ---: |',
    ...rows.map((r) => `| ${r.labelsPerClass} | ${pct(r.rotnetConvHead)} | ${pct(r.supervised)} |`),
    '',
  ].join('\n');
  writeFileAtomicSync(join(outf, 'results.md'), md);
  writeFileAtomicSync(join(outf, 'results.json'), `${JSON.stringify({ device, ...a, rows }, null, 2)}\n`);
  const numeric = rows.filter((r): r is Row & { labelsPerClass: number } => r.labelsPerClass !== 'all');
  const png = plotPng([
    {
      title: 'test top-1 vs labels per class',
      xLabel: 'labels per class',
      yRange: [0, 1],
      series: [
        { name: 'rotnet+conv', points: numeric.map((r) => [r.labelsPerClass, r.rotnetConvHead ?? Number.NaN] as const) },
        { name: 'scratch', points: numeric.map((r) => [r.labelsPerClass, r.supervised] as const) },
      ],
    },
  ]);
  writeFileAtomicSync(join(outf, 'results.png'), png);
}

void runMain(() => main(process.argv.slice(2)));
