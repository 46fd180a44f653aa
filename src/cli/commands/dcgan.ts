// train:dcgan — the PyTorch DCGAN example (Radford et al., 2016): Adam (2e-4, β1 0.5), binary
// cross-entropy, a discriminator step on a real and a fake batch, then a generator step; images
// scaled to [−1, 1]. Each epoch writes a grid of samples from fixed noise
// (fake_samples_epoch_NNN.png) and netG/netD checkpoints; train:gan-classifier reuses netD.
import { writeFileSync } from 'node:fs';
import { DcganDiscriminator, DcganGenerator } from '../../../models/dcgan.js';
import { noGrad } from '../../autograd/tape.js';
import { full, randn, zeros } from '../../creation.js';
import { DataLoader, type Batch } from '../../data/loader.js';
import * as F from '../../functional.js';
import { Adam } from '../../optim/adam.js';
import { defaultGenerator, Generator } from '../../random.js';
import { scope } from '../../scope.js';
import type { Tensor } from '../../tensor.js';
import { openSplits } from '../../train/splits.js';
import { imageGridPng } from '../../train/png.js';
import { Run } from '../../train/run.js';
import { requireStepFits } from '../../train/step-memory.js';
import { loopSettings, trainLoop } from '../../train/loop.js';
import { asLoss, asValue } from '../../train/trainer.js';
import { UsageError } from '../args.js';
import { augmentOf, defineCommand, describeAugment, optimizerOf, outfOf } from '../common.js';
import { augmentFlags, channelFlags, machineFlags, optimizerFlags, requestedChannels, runFlags } from '../flags.js';

export interface DcganResult {
  outf: string;
  steps: number;
  lossD: number;
  lossG: number;
}

export const dcgan = defineCommand(
  {
    name: 'train:dcgan',
    summary: 'DCGAN: train a generator and a discriminator adversarially; sample grids as PNG every epoch.',
    flags: {
      dataroot: { type: 'string', help: 'images (any folder, IDX, CIFAR, a pack, fashion-mnist); the built-in Fashion-MNIST subset when left out' },
      imageSize: { type: 'int', default: 64, help: '32 or 64 (images are resized)' },
      batchSize: { type: 'int', default: 64, help: 'images per step' },
      nz: { type: 'int', default: 100, help: 'size of the latent vector z' },
      ngf: { type: 'int', default: 64, help: 'generator width' },
      ndf: { type: 'int', default: 64, help: 'discriminator width' },
      // The DCGAN example: Adam 2e-4, β1 0.5, no weight decay, no augmentation.
      ...optimizerFlags,
      optimizer: { ...optimizerFlags.optimizer, default: 'adam' },
      lr: { ...optimizerFlags.lr, default: 0.0002 },
      beta1: { ...optimizerFlags.beta1, default: 0.5 },
      weightDecay: { ...optimizerFlags.weightDecay, default: 0 },
      ...augmentFlags,
      augment: { ...augmentFlags.augment, default: 'none', help: `${augmentFlags.augment.help} (the DCGAN example augments nothing)` },
      ...channelFlags,
      ...runFlags,
      ...machineFlags,
      epochs: { type: 'int', default: 25, aliases: ['niter'], help: 'epochs to train' },
      verbIter: { type: 'int', default: 50, help: 'report the losses every verbIter steps' },
    },
    epilog: 'Example: npm run train:dcgan -- --dataroot ~/faces --imageSize 64 --niter 25',
  },
  async (a): Promise<DcganResult> => {
    if (a.imageSize !== 32 && a.imageSize !== 64) throw new UsageError(`train:dcgan: --imageSize must be 32 or 64, got ${a.imageSize}`);
    const imageSize = a.imageSize;
    const outf = outfOf('train:dcgan', a);
    const splits = await openSplits(a.dataroot, { imageSize, channels: requestedChannels(a.channels), unlabeled: true });
    const data = splits.train;
    const nc = data.channels;
    // Batches are whole (dropLast), so at least one batch of images is needed.
    if (data.length < a.batchSize) throw new UsageError(`train:dcgan: ${data.length} images are fewer than one batch of ${a.batchSize}`);
    const nets = (init: Generator) => ({ netG: new DcganGenerator({ nz: a.nz, ngf: a.ngf, nc, imageSize, generator: init }), netD: new DcganDiscriminator({ ndf: a.ndf, nc, imageSize, generator: init }) });
    // The step at n images: D on a real and a fake batch, then G through D, each with its Adam.
    requireStepFits((n) => {
      const { netG, netD } = nets(new Generator(a.manualSeed));
      const optD = new Adam(netD.parameters(), { lr: 0 });
      const optG = new Adam(netG.parameters(), { lr: 0 });
      try {
        const ones = full([n], 1);
        F.binaryCrossEntropy(netD.forward(zeros([n, nc, imageSize, imageSize])), ones).backward();
        const generated = netG.forward(zeros([n, a.nz, 1, 1]));
        F.binaryCrossEntropy(netD.forward(generated.detach()), full([n], 0)).backward();
        optD.step();
        optD.zeroGrad();
        F.binaryCrossEntropy(netD.forward(generated), ones).backward();
        optG.step();
      } finally {
        for (const o of [optD, optG]) (o.zeroGrad(), o.dispose());
        netD.dispose();
        netG.dispose();
      }
    }, a.batchSize);
    // The run folder before any GPU memory, so that a refused folder leaves none behind.
    const run = new Run(outf, 'train:dcgan', a);
    const { netG, netD } = nets(new Generator(a.manualSeed));
    defaultGenerator.manualSeed(a.manualSeed);
    const order = new Generator(a.manualSeed + 1);
    const noise = new Generator(a.manualSeed + 2);
    const normalize = { mean: Array(nc).fill(0.5), std: Array(nc).fill(0.5) };
    const augment = augmentOf(a, imageSize);
    const loader = new DataLoader(data, { batchSize: a.batchSize, shuffle: true, dropLast: true, generator: order, transform: { ...augment, normalize } });
    const optD = optimizerOf(a, netD.parameters());
    const optG = optimizerOf(a, netG.parameters());
    const fixedNoise = randn([64, a.nz, 1, 1], { generator: new Generator(a.manualSeed + 3) }).keep();
    const generators = { data: order, noise, augment: loader.augmentGenerator, global: defaultGenerator };
    const args = { ...a, gan: { ndf: a.ndf, ngf: a.ngf, nz: a.nz, nc, imageSize, normalize } };
    try {
      run.log(`train:dcgan: ${data.length} images (${nc}×${imageSize}×${imageSize}), ${describeAugment(augment)}; ${a.optimizer} lr ${a.lr}; output in ${outf}`);
      const result = await trainLoop({
        ...loopSettings(a),
        run,
        loader: withNoise(loader, a.nz, noise),
        save: [
          { model: netG, optimizer: optG, generators, args, prefix: 'netG' },
          { model: netD, optimizer: optD, generators, args, prefix: 'netD' },
        ],
        train: () => {
          netG.train();
          netD.train();
        },
        firstBatch: async (batch) => writeFileSync(run.path('real_samples.png'), imageGridPng(await batch.images.toArray() as Float32Array, batch.images.shape, { range: [-1, 1] })),
        inStepOptimizers: [optD, optG],
        step: (batch) => {
          // Targets made per step on the step's device (under --devices, each device's share).
          const [real, fake] = [full([batch.size], 1), full([batch.size], 0)];
          // (1) the discriminator: maximise log D(x) + log(1 − D(G(z))).
          const outReal = netD.forward(batch.images);
          const errReal = F.binaryCrossEntropy(outReal, real);
          errReal.backward();
          const generated = netG.forward(batch.noise);
          const outFake = netD.forward(generated.detach());
          const errFake = F.binaryCrossEntropy(outFake, fake);
          errFake.backward();
          optD.step();
          optD.zeroGrad();
          // (2) the generator: maximise log D(G(z)), against the updated discriminator.
          const outG = netD.forward(generated);
          const errG = F.binaryCrossEntropy(outG, real);
          errG.backward();
          optG.step();
          optG.zeroGrad();
          optD.zeroGrad();
          return { loss_D: asLoss(F.add(errReal, errFake)), loss_G: asLoss(errG), D_x: asValue(F.mean(outReal)), D_G_z1: asValue(F.mean(outFake)), D_G_z2: asValue(F.mean(outG)) };
        },
        // Samples from the fixed noise after every epoch, as the example's fake_samples_epoch_NNN.png.
        evaluate: async (epoch) => {
          netG.eval();
          const samples = noGrad(() => scope(() => netG.forward(fixedNoise).keep()));
          writeFileSync(run.path(`fake_samples_epoch_${String(epoch + 1).padStart(3, '0')}.png`), imageGridPng(await samples.toArray() as Float32Array, samples.shape, { range: [-1, 1] }));
          samples.dispose();
          return {};
        },
      });
      const last = result.ran.at(-1);
      return { outf, steps: result.steps, lossD: last?.loss_D ?? Number.NaN, lossG: last?.loss_G ?? Number.NaN };
    } finally {
      run.close();
      fixedNoise.dispose();
      optD.dispose();
      optG.dispose();
      netD.dispose();
      netG.dispose();
      await splits.close();
    }
  },
);

/**
 * The loader's batches with the generator's input for each: N(0, 1) noise of (batch, nz, 1, 1),
 * drawn when the batch is, so that data-parallel training cuts it into shares with the images.
 */
function withNoise(loader: DataLoader, nz: number, generator: Generator): AsyncIterable<Batch & { noise: Tensor }> & { length: number } {
  return {
    get length() {
      return loader.length;
    },
    async *[Symbol.asyncIterator]() {
      for await (const batch of loader) {
        const noise = randn([batch.size, nz, 1, 1], { generator }).keep();
        yield { ...batch, noise, dispose: () => (batch.dispose(), noise.dispose()) };
      }
    },
  };
}
