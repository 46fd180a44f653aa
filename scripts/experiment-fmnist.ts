// The RotNet paper's semi-supervised comparison (Gidaris et al., 2018, fig. 5b) on Fashion-MNIST:
// RotNet pretraining on every training image without labels, then a conv head on the frozen
// conv2 features versus the same network trained from scratch, with K labels per class, and a
// supervised run on all labels. Writes results.json, results.md (the table) and results.png.
//
//   npm run experiment:fmnist -- [--dataroot fashion-mnist] [--labels 20,100,400] [--rotnetEpochs 30] [--epochs 60]
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

const command = {
  name: 'experiment:fmnist',
  summary: 'RotNet features + conv head vs. training from scratch, at K labels per class (the RotNet paper’s semi-supervised comparison).',
  flags: {
    dataroot: { type: 'string', default: 'fashion-mnist', help: 'the data (fashion-mnist needs `apt-get install dataset-fashion-mnist`; builtin is the 3,000-image subset)' },
    imageSize: { type: 'int', help: 'resize images (default: their own 28 px)' },
    model: { type: 'string', default: 'nin', help: 'the network of both arms' },
    ninStages: { type: 'int', default: 4, help: 'stages of NIN' },
    labels: { type: 'string', default: '20,100,400', help: 'labeled images per class, comma-separated' },
    rotnetEpochs: { type: 'int', default: 30, help: 'epochs of RotNet pretraining' },
    epochs: { type: 'int', default: 60, help: 'epochs of each classifier' },
    epochSize: { type: 'int', default: 10000, help: 'images per classifier epoch, drawn with repetition from the K per class' },
    batchSize: { type: 'int', default: 128, help: 'images per step (lowered to the largest batch the device memory holds)' },
    outf: { type: 'string', default: 'runs/experiment-fmnist', help: 'output folder' },
    manualSeed: { type: 'int', default: 0, help: 'seed' },
    maxIters: { type: 'int', default: 0, help: 'stop every run after this many steps (smoke runs)' },
  },
} as const satisfies Command<Flags>;

export interface Row {
  labelsPerClass: number | 'all';
  rotnetConvHead?: number;
  supervised: number;
}

async function main(argv: readonly string[]): Promise<void> {
  const a = parseCommand(command, argv);
  if (!a) return;
  const ks = a.labels.split(',').map((s) => Number(s.trim()));
  if (ks.some((k) => !(Number.isInteger(k) && k > 0))) throw new UsageError(`--labels must be positive integers, got '${a.labels}'`);
  await init();
  try {
    const batchSize = await fittingBatchSize(a);
    const common = ['--dataroot', a.dataroot, '--batchSize', String(batchSize), '--manualSeed', String(a.manualSeed), '--maxIters', String(a.maxIters), ...(a.imageSize ? ['--imageSize', String(a.imageSize)] : [])];
    const model = ['--model', a.model, '--ninStages', String(a.ninStages)];
    const rotnetOut = join(a.outf, 'rotnet');
    const resume = existsSync(join(rotnetOut, `net_epoch_${a.rotnetEpochs}.safetensors`));
    const rot = resume
      ? null
      : ((await runCommand('train:rotnet', [...common, ...model, '--epochs', String(a.rotnetEpochs), '--outf', rotnetOut])) as RotnetResult);
    const net = join(rotnetOut, 'net_best.safetensors');
    const classifier = (k: number | 'all', name: string) => [...common, '--epochs', String(a.epochs), '--schedule', 'step', '--lrStep', String(Math.max(1, Math.round(a.epochs * 0.4))), '--gamma', '0.2', ...(k === 'all' ? [] : ['--trainSamples', String(k), '--epochSize', String(a.epochSize)]), '--outf', join(a.outf, `${name}-${k}`)];
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
    if (batch < a.batchSize) process.stderr.write(`experiment:fmnist: a RotNet step at --batchSize ${a.batchSize} does not fit the device memory; every run takes --batchSize ${batch}, the largest that fits\n`);
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
    `Fashion-MNIST (${a.dataroot}), ${net}; RotNet ${a.rotnetEpochs} epochs${rot ? ` (held-out rotation accuracy ${pct(rot.rotationAccuracy)})` : ''}, classifiers ${a.epochs} epochs; ${device}`,
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
