// train:vae and train:siamese-vae — the two other pretexts of the RotNet-vs-VAE study: a
// convolutional VAE whose encoder is RotNet's AlexNet (models/vae.ts), trained on unlabelled
// images with reconstruction (BCE or MSE, summed per image) + β·KL (the PyTorch VAE example's
// loss, averaged over the batch instead of summed, so rates do not depend on the batch size); the
// Siamese VAE adds a triplet margin loss on the latent means: anchor and positive are two random
// augmentations (crop with padding, flip) of one image, the negative the positive view of the next
// image in the batch. Reconstructions of held-out images and samples from the prior are written
// as PNG grids each epoch.
import { writeFileSync } from 'node:fs';
import { buildModel, checkSpec, type ModelSpec } from '../../../models/registry.js';
import type { ConvVAE } from '../../../models/vae.js';
import { noGrad } from '../../autograd/tape.js';
import { randn, zeros } from '../../creation.js';
import { Augment, normalize as normalizeImages } from '../../data/augment.js';
import { DataLoader } from '../../data/loader.js';
import * as F from '../../functional.js';
import { Adam } from '../../optim/adam.js';
import { defaultGenerator, Generator } from '../../random.js';
import { scope } from '../../scope.js';
import type { Tensor } from '../../tensor.js';
import { Meter } from '../../train/meter.js';
import { imageGridPng } from '../../train/png.js';
import { Run } from '../../train/run.js';
import { channelStats, openSplits } from '../../train/splits.js';
import { requireStepFits } from '../../train/step-memory.js';
import { loopSettings, trainLoop } from '../../train/loop.js';
import { asLoss, type StepMetrics } from '../../train/trainer.js';
import { UsageError, type Flags, type Parsed } from '../args.js';
import { asUsageError, defineCommand, optimizerOf, outfOf, scheduleOf } from '../common.js';
import { dataFlags, optimizerFlags, requestedChannels, runFlags, scheduleFlags } from '../flags.js';

const vaeFlags = {
  ...dataFlags,
  ...scheduleFlags,
  ...runFlags,
  ...optimizerFlags,
  imageSize: { type: 'int', default: 64, help: 'resize images to imageSize × imageSize: at least 64 and a multiple of 16 (AlexNet encoder, four decoder doublings)' },
  batchSize: { type: 'int', default: 64, help: 'images per step' },
  epochs: { type: 'int', default: 30, aliases: ['niter'], help: 'epochs to train' },
  schedule: { ...scheduleFlags.schedule, default: 'constant' },
  optimizer: { ...optimizerFlags.optimizer, default: 'adam', help: `${optimizerFlags.optimizer.help} (default: Adam, as the PyTorch VAE example)` },
  lr: { type: 'number', default: 1e-3, help: 'learning rate (the PyTorch VAE example’s Adam 1e-3)' },
  weightDecay: { type: 'number', default: 0, help: 'weight decay' },
  encoder: { type: 'string', default: 'conv4', choices: ['conv4', 'conv5'], help: "the encoder: RotNet's AlexNet up to conv4 or conv5, then μ and log σ²" },
  latentDim: { type: 'int', default: 128, help: 'size of the latent code z' },
  recon: { type: 'string', default: 'bce', choices: ['bce', 'mse'], help: 'reconstruction loss, summed per image: bce (on the decoder’s logits, pixels in [0, 1]) or mse (of sigmoid(logits))' },
  beta: { type: 'number', default: 1, help: 'weight of the KL term (β-VAE; 1: the plain VAE)' },
  epochSize: { type: 'int', help: 'images per epoch, drawn in order with repetition (default: the data set once)' },
} as const satisfies Flags;

const siameseFlags = {
  ...vaeFlags,
  tripletWeight: { type: 'number', default: 1, help: 'weight of the triplet margin loss on the latent means' },
  margin: { type: 'number', default: 1, help: 'margin of the triplet loss (torch.nn.TripletMarginLoss, p = 2)' },
} as const satisfies Flags;

type VaeArgs = Parsed<typeof vaeFlags> & { tripletWeight?: number; margin?: number };

export interface VaeResult {
  outf: string;
  steps: number;
  /** The mean reconstruction term of each epoch this call ran. */
  epochRecon: number[];
  /** Held-out loss terms after the last epoch. */
  test: { loss: number; recon: number; kl: number };
}

/** Reconstruction + β·KL (+ the triplet term) of one batch, every term averaged over the batch. */
interface VaeTerms {
  loss: Tensor;
  recon: Tensor;
  kl: Tensor;
}

/** Reconstruction summed over each image's pixels, averaged over the batch, as the PyTorch VAE example (per image). */
function reconstruction(logits: Tensor, target: Tensor, kind: string): Tensor {
  const perImage = target.size / target.shape[0]!;
  const mean = kind === 'mse' ? F.mseLoss(F.sigmoid(logits), target) : F.binaryCrossEntropyWithLogits(logits, target);
  return F.mul(mean, perImage);
}

function vaeTerms(model: ConvVAE, images: Tensor, stats: ModelSpec['normalize'], a: VaeArgs, noise: Generator): VaeTerms & { mu: Tensor } {
  const { mu, logvar } = model.encode(normalizeImages(images, stats.mean, stats.std));
  const z = F.reparameterize(mu, logvar, noise);
  const recon = reconstruction(model.decode(z), images, a.recon);
  const kl = F.gaussianKL(mu, logvar, 'mean');
  return { loss: F.add(recon, F.mul(kl, a.beta)), recon, kl, mu };
}

/** The first n rows of x moved to the end: row i of the result is row (i + 1) mod N of x. */
function nextImage(x: Tensor): Tensor {
  const n = x.shape[0]!;
  return F.cat([x.narrow(1, n - 1), x.narrow(0, 1)], 0);
}

async function trainVae(name: 'train:vae' | 'train:siamese-vae', a: VaeArgs): Promise<VaeResult> {
  const siamese = name === 'train:siamese-vae';
  if (siamese && a.batchSize < 2) throw new UsageError(`${name}: --batchSize must be at least 2 (the negative is another image of the batch)`);
  const outf = outfOf(name, a);
  const splits = await openSplits(a.dataroot, { imageSize: a.imageSize, channels: requestedChannels(a.channels), unlabeled: true });
  const { train, test, testFrom } = splits;
  const normalize = await channelStats(train);
  const spec: ModelSpec = {
    model: 'vae',
    ninStages: 0,
    numClasses: 0,
    inChannels: train.channels,
    imageSize: train.imageSize,
    latentDim: a.latentDim,
    encoderDepth: a.encoder as 'conv4' | 'conv5',
    normalize,
    classNames: [],
  };
  asUsageError('--imageSize', () => checkSpec(spec));
  // Two views of each image for the Siamese VAE: torchvision's RandomCrop(padding imageSize/8) and RandomHorizontalFlip.
  const views = new Augment({ crop: { padding: Math.max(1, Math.round(train.imageSize / 8)) }, hflip: 0.5 });
  const step = (model: ConvVAE, images: Tensor, noise: Generator, viewGenerator: Generator): StepMetrics => {
    if (!siamese) {
      const t = vaeTerms(model, images, normalize, a, noise);
      t.loss.backward();
      return { loss: asLoss(t.loss), recon: asLoss(t.recon), kl: asLoss(t.kl) };
    }
    const anchor = views.apply(images, viewGenerator).images;
    const positive = views.apply(images, viewGenerator).images;
    const ta = vaeTerms(model, anchor, normalize, a, noise);
    const tp = vaeTerms(model, positive, normalize, a, noise);
    const muNegative = model.encode(normalizeImages(nextImage(positive), normalize.mean, normalize.std)).mu;
    const triplet = F.tripletMarginLoss(ta.mu, tp.mu, muNegative, a.margin);
    // The VAE loss of both views (averaged) plus the weighted triplet term.
    const loss = F.add(F.mul(F.add(ta.loss, tp.loss), 0.5), F.mul(triplet, a.tripletWeight ?? 1));
    loss.backward();
    return { loss: asLoss(loss), recon: asLoss(F.mul(F.add(ta.recon, tp.recon), 0.5)), kl: asLoss(F.mul(F.add(ta.kl, tp.kl), 0.5)), triplet: asLoss(triplet) };
  };
  const imageShape = [train.channels, train.imageSize, train.imageSize];
  requireStepFits((n) => {
    const model = buildModel(spec, 0) as ConvVAE;
    const optimizer = new Adam(model.parameters(), { lr: 0 });
    try {
      step(model, zeros([Math.max(n, 2), ...imageShape]), new Generator(0), new Generator(0));
      optimizer.step();
    } finally {
      optimizer.zeroGrad();
      optimizer.dispose();
      model.dispose();
    }
  }, a.batchSize);
  // The run folder before any GPU memory, so that a refused folder leaves none behind.
  const run = new Run(outf, name, a);
  const model = buildModel(spec, a.manualSeed) as ConvVAE;
  defaultGenerator.manualSeed(a.manualSeed);
  const order = new Generator(a.manualSeed + 1);
  const noise = new Generator(a.manualSeed + 3);
  const viewGenerator = new Generator(a.manualSeed + 4);
  const loader = new DataLoader(train, { batchSize: a.batchSize, shuffle: true, dropLast: siamese, generator: order, ...(a.epochSize ? { epochSize: a.epochSize } : {}) });
  const heldOut = new DataLoader(test, { batchSize: a.batchSize, generator: new Generator(a.manualSeed + 2) });
  const optimizer = optimizerOf(a, model.parameters());
  const prior = randn([64, a.latentDim], { generator: new Generator(a.manualSeed + 5) }).keep();
  const result: VaeResult = { outf, steps: 0, epochRecon: [], test: { loss: Number.NaN, recon: Number.NaN, kl: Number.NaN } };
  try {
    run.log(
      `${name}: VAE (AlexNet to ${a.encoder}, latent ${a.latentDim}, ${a.recon} + ${a.beta}·KL${siamese ? ` + ${a.tripletWeight}·triplet (margin ${a.margin})` : ''}) on ${train.length} images ` +
        `(${train.channels}×${train.imageSize}×${train.imageSize}), held out: ${test.length} (${testFrom}); ${loader.length} steps per epoch; output in ${outf}`,
    );
    const loop = await trainLoop({
      ...loopSettings(a),
      run,
      loader,
      optimizers: [optimizer],
      schedule: scheduleOf(a, loader.length),
      save: [{ model, optimizer, generators: { data: order, noise, views: viewGenerator, global: defaultGenerator }, args: { ...a, modelSpec: spec }, classNames: [] }],
      selectBy: 'testLoss',
      train: () => model.train(),
      step: (batch) => step(model, batch.images, noise, viewGenerator),
      evaluate: async (epoch) => {
        model.eval();
        result.test = await heldOutLoss(model, heldOut, normalize, a, run, epoch);
        await writeSamples(model, prior, run.path(`samples_epoch_${String(epoch + 1).padStart(3, '0')}.png`));
        return { testLoss: asLoss(result.test.loss), testRecon: asLoss(result.test.recon), testKL: asLoss(result.test.kl) };
      },
    });
    result.steps = loop.steps;
    result.epochRecon = loop.ran.map((r) => r.recon ?? Number.NaN);
    return result;
  } finally {
    run.close();
    prior.dispose();
    optimizer.dispose();
    model.dispose();
    await splits.close();
  }
}

/**
 * The held-out VAE loss at z = μ (no sampling, so it repeats exactly), and the epoch's
 * reconstruction grid: 8 held-out images above their reconstructions.
 */
async function heldOutLoss(model: ConvVAE, loader: DataLoader, stats: ModelSpec['normalize'], a: VaeArgs, run: Run, epoch: number): Promise<VaeResult['test']> {
  const meters = { loss: new Meter(), recon: new Meter(), kl: new Meter() };
  let grid: Tensor | null = null;
  for await (const batch of loader) {
    noGrad(() =>
      scope(() => {
        const { mu, logvar } = model.encode(normalizeImages(batch.images, stats.mean, stats.std));
        const logits = model.decode(mu);
        const recon = reconstruction(logits, batch.images, a.recon);
        const kl = F.gaussianKL(mu, logvar, 'mean');
        meters.loss.add(F.add(recon, F.mul(kl, a.beta)), batch.size);
        meters.recon.add(recon, batch.size);
        meters.kl.add(kl, batch.size);
        if (!grid) {
          const n = Math.min(8, batch.size);
          grid = F.cat([batch.images.narrow(0, n), F.sigmoid(logits).narrow(0, n)], 0).keep();
        }
      }),
    );
    batch.dispose();
  }
  if (grid) {
    const g: Tensor = grid;
    writeFileSync(run.path(`reconstruction_epoch_${String(epoch + 1).padStart(3, '0')}.png`), imageGridPng((await g.toArray()) as Float32Array, g.shape, { nrow: g.shape[0]! / 2, range: [0, 1] }));
    g.dispose();
  }
  const out = { loss: await meters.loss.mean(), recon: await meters.recon.mean(), kl: await meters.kl.mean() };
  for (const m of Object.values(meters)) m.reset();
  return out;
}

/** Decoded samples of fixed codes from the prior N(0, I), as a grid. */
async function writeSamples(model: ConvVAE, prior: Tensor, path: string): Promise<void> {
  const samples = noGrad(() => scope(() => F.sigmoid(model.decode(prior)).keep()));
  writeFileSync(path, imageGridPng((await samples.toArray()) as Float32Array, samples.shape, { range: [0, 1] }));
  samples.dispose();
}

export const vae = defineCommand(
  {
    name: 'train:vae',
    summary: "VAE pretext: a convolutional VAE with RotNet's AlexNet as encoder; reconstruction + β·KL. Labels are not used.",
    flags: vaeFlags,
    epilog: 'Example: npm run train:vae -- --dataroot fashion-mnist --imageSize 64 --epochs 30 --recon bce --beta 1',
  },
  (a) => trainVae('train:vae', a),
);

export const siameseVae = defineCommand(
  {
    name: 'train:siamese-vae',
    summary: 'Siamese-VAE pretext: the VAE plus a triplet margin loss on the latent means of two views of one image and another image.',
    flags: siameseFlags,
    epilog: 'Example: npm run train:siamese-vae -- --dataroot fashion-mnist --imageSize 64 --tripletWeight 1 --margin 1',
  },
  (a) => trainVae('train:siamese-vae', a),
);
