// The RotNet-vs-VAE study's comparison: three pretexts on the same unlabelled images, each with
// RotNet's AlexNet as the network (RotNet's rotation prediction; a VAE whose encoder is AlexNet
// to conv4; the same VAE with a triplet loss on its latent means), then probed the same way: a
// classifier on the frozen conv4 features (train:probe), K labels per class. Writes results.md
// (the table) and results.json; a pretext or probe that an earlier call finished is reused.
//
//   npm run experiment:pretexts -- --dataroot fashion-mnist [--pretextEpochs 30] [--probeEpochs 30] [--trainSamples 100]
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../src/atomic-file.js';
import { parseCommand, type Command, type Flags } from '../src/cli/args.js';
import type { ProbeResult } from '../src/cli/commands/probe.js';
import { runMain } from '../src/cli/errors.js';
import { runCommand } from '../src/cli/main.js';
import { backend, init, shutdown } from '../src/runtime.js';

const command = {
  name: 'experiment:pretexts',
  summary: 'RotNet vs VAE vs Siamese-VAE pretraining (AlexNet), each probed by a classifier on its frozen conv4 features.',
  flags: {
    dataroot: { type: 'string', default: 'fashion-mnist', help: 'the data (fashion-mnist needs `apt-get install dataset-fashion-mnist`; builtin is the 3,000-image subset)' },
    imageSize: { type: 'int', default: 64, help: 'images are resized to this side (AlexNet and the VAE: at least 64, a multiple of 16)' },
    pretextEpochs: { type: 'int', default: 30, help: 'epochs of each pretext' },
    pretextEpochSize: { type: 'int', help: 'images per pretext epoch (default: the training split once)' },
    probeEpochs: { type: 'int', default: 30, help: 'epochs of each probe' },
    probeEpochSize: { type: 'int', help: 'images per probe epoch, drawn with repetition from the K per class' },
    trainSamples: { type: 'int', default: 0, help: 'labels per class for the probes (0: all)' },
    head: { type: 'string', default: 'linear', choices: ['linear', 'mlp', 'conv'], help: 'the probe on conv4 (train:probe --head)' },
    block: { type: 'string', default: 'conv4', help: 'the probed stage' },
    latentDim: { type: 'int', default: 128, help: 'the VAEs’ code size' },
    beta: { type: 'number', default: 1, help: 'the VAEs’ KL weight' },
    tripletWeight: { type: 'number', default: 1, help: 'the Siamese VAE’s triplet weight' },
    margin: { type: 'number', default: 1, help: 'the Siamese VAE’s triplet margin' },
    batchSize: { type: 'int', default: 64, help: 'images per step of every run' },
    outf: { type: 'string', default: 'runs/experiment-pretexts', help: 'output folder' },
    manualSeed: { type: 'int', default: 0, help: 'seed' },
    maxIters: { type: 'int', default: 0, help: 'stop every run after this many steps (smoke runs)' },
  },
} as const satisfies Command<Flags>;

export interface PretextRow {
  pretext: 'rotnet' | 'vae' | 'siamese-vae';
  /** What the pretext itself reached on held-out images: rotation top-1, or the VAE loss per image. */
  pretextScore: { rotationTop1?: number; vaeLoss?: number };
  top1: number;
  top5?: number;
}

async function main(argv: readonly string[]): Promise<void> {
  const a = parseCommand(command, argv);
  if (!a) return;
  await init();
  try {
    mkdirSync(a.outf, { recursive: true });
    const common = ['--dataroot', a.dataroot, '--imageSize', String(a.imageSize), '--batchSize', String(a.batchSize), '--manualSeed', String(a.manualSeed), '--maxIters', String(a.maxIters)];
    const pretext = [...common, '--epochs', String(a.pretextEpochs), ...(a.pretextEpochSize ? ['--epochSize', String(a.pretextEpochSize)] : [])];
    const vae = ['--latentDim', String(a.latentDim), '--beta', String(a.beta)];
    const runs: [PretextRow['pretext'], string, string[]][] = [
      // RotNet's AlexNet recipe: SGD 0.1, Nesterov, its learning-rate table; 4 rotations per image.
      ['rotnet', 'train:rotnet', ['--model', 'alexnet']],
      ['vae', 'train:vae', vae],
      ['siamese-vae', 'train:siamese-vae', [...vae, '--tripletWeight', String(a.tripletWeight), '--margin', String(a.margin)]],
    ];
    const rows: PretextRow[] = [];
    for (const [name, cmd, extra] of runs) {
      const outf = join(a.outf, name);
      // The best epoch's network; a run stopped by --maxIters before its first epoch ended saved net_last.
      const saved = () => ['net_best', 'net_last'].map((f) => join(outf, `${f}.safetensors`)).find((f) => existsSync(f));
      if (!saved()) await runCommand(cmd, [...pretext, ...extra, '--outf', outf]);
      // The pretext's own held-out result after its last epoch: rotation top-1, or the VAE loss.
      const last = metricLines(outf, 'epoch').at(-1);
      const score: PretextRow['pretextScore'] = name === 'rotnet' ? { rotationTop1: last?.testAccuracy as number | undefined } : { vaeLoss: last?.testLoss as number | undefined };
      const net = saved() ?? join(outf, 'net_best.safetensors');
      const probeOut = join(a.outf, `${name}-probe-${a.block}`);
      const probeArgs = [...common, '--net', net, '--blocks', a.block, '--head', a.head, '--epochs', String(a.probeEpochs), '--trainSamples', String(a.trainSamples)];
      if (a.probeEpochSize) probeArgs.push('--epochSize', String(a.probeEpochSize));
      const done = metricLines(probeOut, 'result').at(-1)?.blocks as ProbeResult['blocks'] | undefined;
      const blocks = done ?? ((await runCommand('train:probe', [...probeArgs, '--outf', probeOut])) as ProbeResult).blocks;
      const s = blocks[a.block]!;
      rows.push({ pretext: name, pretextScore: score, top1: s.top1, ...(s.top5 === undefined ? {} : { top5: s.top5 }) });
      writeResults(a.outf, rows, a);
    }
    process.stdout.write(readFileSync(join(a.outf, 'results.md'), 'utf8'));
  } finally {
    shutdown();
  }
}

/** The metrics.jsonl records of one kind in a run folder (none when it has no such file). */
function metricLines(outf: string, kind: string): Record<string, unknown>[] {
  const path = join(outf, 'metrics.jsonl');
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((r) => r.kind === kind);
}

function writeResults(outf: string, rows: readonly PretextRow[], a: Record<string, unknown>): void {
  const pct = (v: number | undefined) => (v === undefined ? '—' : `${(100 * v).toFixed(1)} %`);
  const device = backend().adapterName;
  const labels = a.trainSamples ? `${String(a.trainSamples)} labels per class` : 'all labels';
  const md = [
    `${String(a.dataroot)} at ${String(a.imageSize)} px, RotNet's AlexNet; pretexts ${String(a.pretextEpochs)} epochs, ${String(a.head)} probe on frozen ${String(a.block)} for ${String(a.probeEpochs)} epochs with ${labels}; ${device}`,
    '',
    `| pretext | pretext on held-out images | ${String(a.block)} probe top-1 | top-5 |`,
    '| --- | ---: | ---: | ---: |',
    ...rows.map((r) => {
      const own = r.pretext === 'rotnet' ? `rotation top-1 ${pct(r.pretextScore.rotationTop1)}` : `loss ${r.pretextScore.vaeLoss?.toFixed(1) ?? '—'} per image`;
      return `| ${r.pretext} | ${own} | ${pct(r.top1)} | ${pct(r.top5)} |`;
    }),
    '',
  ].join('\n');
  writeFileAtomicSync(join(outf, 'results.md'), md);
  writeFileAtomicSync(join(outf, 'results.json'), `${JSON.stringify({ device, ...a, rows }, null, 2)}\n`);
}

void runMain(() => main(process.argv.slice(2)));
