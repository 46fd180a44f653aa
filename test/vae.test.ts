// The VAE pretexts: the reparameterisation's noise, a VAE that overfits a tiny set, train:vae and
// train:siamese-vae end to end (loss terms, PNG grids, checkpoints), and their checkpoints read by
// train:probe and train:finetune, as dawnet's own files and as bare state dicts. On an image folder
// of 2 classes × 2 images (64 px, the VAE's smallest side); each run is made once, on first use.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkpointSpec } from '../models/registry.js';
import { UsageError } from '../src/cli/args.js';
import type { ClassifyResult } from '../src/cli/commands/classify.js';
import type { ProbeResult } from '../src/cli/commands/probe.js';
import type { VaeResult } from '../src/cli/commands/vae.js';
import { runCommand } from '../src/cli/main.js';
import { readTensorFile } from '../src/checkpoint/pth.js';
import { serializeSafetensors, type SafetensorsData } from '../src/checkpoint/safetensors.js';
import { F, Generator, full, scope, tensor, type Tensor } from '../src/index.js';
import { latentNoise } from '../src/ops/latent.js';
import { commandSandbox, once } from './fixtures/sandbox.js';

const { root, data, out } = commandSandbox('dawnet-vae-test-', { train: 2, test: 1, classes: ['0-tshirt-top', '1-trouser'] });


const tiny = ['--dataroot', data, '--imageSize', '64', '--batchSize', '4', '--verbIter', '1', '--latentDim', '16'];
const vaeRun = once(async () => (await runCommand('train:vae', [...tiny, '--epochs', '1', '--outf', out('vae')])) as VaeResult);
const siameseRun = once(async () => (await runCommand('train:siamese-vae', [...tiny, '--encoder', 'conv5', '--epochs', '2', '--margin', '2', '--outf', out('siamese')])) as VaeResult);

function records(outf: string, kind: string): Record<string, number>[] {
  return readFileSync(join(outf, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number> & { kind: string })
    .filter((r) => (r as { kind: string }).kind === kind);
}

/** Width and height from a PNG's IHDR chunk. */
function pngSize(path: string): [number, number] {
  const bytes = readFileSync(path);
  expect(bytes.subarray(1, 4).toString('latin1')).toBe('PNG');
  return [bytes.readUInt32BE(16), bytes.readUInt32BE(20)];
}

describe('reparameterize', () => {
  it('draws standard normal noise from the seeded generator: z = μ + exp(½ log σ²)·ε', async () => {
    const n = 4096;
    const [z, again, other, scaled] = await scope(async () => {
      const draw = async (seed: number, mu = 0, logvar = 0) => (await F.reparameterize(full([n], mu), full([n], logvar), new Generator(seed)).toArray()) as Float32Array;
      return [await draw(1), await draw(1), await draw(2), await draw(1, 3, Math.log(4))];
    });
    const mean = z.reduce((s, v) => s + v, 0) / n;
    const variance = z.reduce((s, v) => s + (v - mean) ** 2, 0) / n;
    // 4 standard errors: of the mean 1/√n, of the variance √(2/n).
    expect(Math.abs(mean)).toBeLessThan(4 / Math.sqrt(n));
    expect(Math.abs(variance - 1)).toBeLessThan(4 * Math.sqrt(2 / n));
    expect(Array.from(again)).toEqual(Array.from(z));
    expect(Array.from(other)).not.toEqual(Array.from(z));
    // σ = 2 around μ = 3, the same ε; and ε is the float64 mirror's.
    const g = new Generator(1);
    const seed: [number, number] = [g.nextUint32(), g.nextUint32()];
    for (const i of [0, 1, 17, 4095]) {
      expect(scaled[i]!).toBeCloseTo(3 + 2 * z[i]!, 4);
      expect(z[i]!).toBeCloseTo(latentNoise(i, seed), 4);
    }
  });

  it('gives μ itself as log σ² → −∞, and sends gradients to μ and log σ²', async () => {
    const [z, dmu, dlogvar] = await scope(async () => {
      const mu = tensor([0.5, -1, 2], [3]).requiresGrad_();
      const logvar = tensor([-200, -200, 0], [3]).requiresGrad_();
      const out = F.reparameterize(mu, logvar, new Generator(3));
      F.sum(out).backward();
      const read = async (t: Tensor) => (await t.toArray()) as Float32Array;
      return [await read(out), await read(mu.grad!), await read(logvar.grad!)] as const;
    });
    expect(Array.from(z.subarray(0, 2))).toEqual([0.5, -1]);
    expect(Array.from(dmu)).toEqual([1, 1, 1]);
    // d z / d log σ² = ½ σ ε = ½ (z − μ) at σ = 1.
    expect(dlogvar[2]!).toBeCloseTo(0.5 * (z[2]! - 2), 5);
  });
});

describe('train:vae', { timeout: 600_000 }, () => {
  it('a VAE overfits a tiny set: the reconstruction loss falls at least 10×', { timeout: 900_000 }, async () => {
    // 80 steps on 4 images, held out: the same 4, whose loss is measured at z = μ (deterministic).
    // A small β lets σ shrink, so the decoder can memorise them.
    const same = join(root, 'same');
    for (const split of ['train', 'test']) {
      for (const cls of readdirSync(join(data, 'train'))) {
        mkdirSync(join(same, split, cls), { recursive: true });
        for (const f of readdirSync(join(data, 'train', cls))) copyFileSync(join(data, 'train', cls, f), join(same, split, cls, f));
      }
    }
    const args = ['--dataroot', same, ...tiny.slice(2), '--recon', 'mse', '--lr', '2e-3', '--beta', '0.001', '--epochSize', '320', '--epochs', '1', '--outf', out('vae-overfit')];
    const r = (await runCommand('train:vae', args)) as VaeResult;
    expect(r.steps).toBe(80);
    const first = records(out('vae-overfit'), 'step')[0]!.recon!;
    expect(first / r.test.recon, `reconstruction ${first} at the first step → ${r.test.recon} after 80`).toBeGreaterThanOrEqual(10);
  });

  it('trains on reconstruction + β·KL and writes checkpoints, metrics, reconstructions and samples', async () => {
    const r = await vaeRun();
    expect(r.steps).toBe(1);
    expect(r.epochRecon.every(Number.isFinite)).toBe(true);
    expect(r.test.loss).toBeCloseTo(r.test.recon + r.test.kl, 2);
    const files = readdirSync(out('vae'));
    for (const f of ['net_best.safetensors', 'net_epoch_1.safetensors', 'metrics.jsonl', 'curves.png', 'reconstruction_epoch_001.png', 'samples_epoch_001.png']) expect(files).toContain(f);
    // 2 held-out images above their reconstructions; 64 samples 8 to a row (2-px padding).
    expect(pngSize(join(out('vae'), 'reconstruction_epoch_001.png'))).toEqual([2 * 66 + 2, 2 * 66 + 2]);
    expect(pngSize(join(out('vae'), 'samples_epoch_001.png'))).toEqual([8 * 66 + 2, 8 * 66 + 2]);
    const epoch = records(out('vae'), 'epoch')[0]!;
    for (const k of ['loss', 'recon', 'kl', 'testLoss', 'testRecon', 'testKL']) expect(Number.isFinite(epoch[k])).toBe(true);
    expect(await checkpointSpec(join(out('vae'), 'net_best.safetensors'))).toMatchObject({ model: 'vae', latentDim: 16, encoderDepth: 'conv4', numClasses: 0 });
  });

  it('bad arguments are one clear error', async () => {
    await expect(runCommand('train:vae', ['--dataroot', data, '--imageSize', '40', '--outf', out('vae-40')])).rejects.toThrow(/--imageSize: .*at least 64 px and a multiple of 16/);
    await expect(runCommand('train:vae', ['--recon', 'l1'])).rejects.toThrow(UsageError);
    await expect(runCommand('train:siamese-vae', ['--margin', '-1'])).rejects.toThrow(/--margin/);
    expect(existsSync(out('vae-40'))).toBe(false);
  });
});

describe('train:siamese-vae', { timeout: 600_000 }, () => {
  it('adds the triplet margin loss on latent means of two views and another image', async () => {
    const r = await siameseRun();
    expect(r.steps).toBe(2);
    const steps = records(out('siamese'), 'step');
    expect(steps).toHaveLength(2);
    for (const s of steps) {
      expect(s.triplet).toBeGreaterThanOrEqual(0);
      // loss = mean of the two views' VAE losses (β = 1) + 1 · triplet.
      expect(s.loss).toBeCloseTo(s.recon! + s.kl! + s.triplet!, 1);
    }
    expect(readdirSync(out('siamese'))).toContain('samples_epoch_002.png');
    expect(await checkpointSpec(join(out('siamese'), 'net_best.safetensors'))).toMatchObject({ model: 'vae', encoderDepth: 'conv5' });
  });
});

describe('VAE checkpoints in the evaluation protocols', { timeout: 600_000 }, () => {
  it('train:probe reads the encoder blocks of a VAE and of a Siamese-VAE checkpoint', async () => {
    await vaeRun();
    await siameseRun();
    const probe = async (net: string, outf: string) =>
      (await runCommand('train:probe', ['--dataroot', data, '--net', net, '--epochs', '1', '--batchSize', '4', '--verbIter', '1', '--outf', outf])) as ProbeResult;
    const fromVae = await probe(join(out('vae'), 'net_best.safetensors'), out('probe-vae'));
    expect(Object.keys(fromVae.blocks)).toEqual(['conv1', 'pool1', 'conv2', 'pool2', 'conv3', 'conv4']);
    const fromSiamese = await probe(join(out('siamese'), 'net_best.safetensors'), out('probe-siamese'));
    expect(Object.keys(fromSiamese.blocks)).toEqual(['conv1', 'pool1', 'conv2', 'pool2', 'conv3', 'conv4', 'conv5']);
    for (const s of [...Object.values(fromVae.blocks), ...Object.values(fromSiamese.blocks)]) expect(s.top1).toBeGreaterThanOrEqual(0);
  });

  it('a bare VAE state dict is recognised by its names and shapes, and train:probe takes it', async () => {
    await vaeRun();
    const { tensors } = await readTensorFile(join(out('vae'), 'net_best.safetensors'));
    const bare = new Map([...tensors].filter(([k]) => !k.startsWith('optimizer.')).map(([k, t]) => [k, { shape: t.shape, data: t.data as SafetensorsData }]));
    const path = join(root, 'bare-vae.safetensors');
    writeFileSync(path, serializeSafetensors(bare));
    expect(await checkpointSpec(path)).toMatchObject({ model: 'vae', latentDim: 16, encoderDepth: 'conv4', numClasses: 0, inChannels: 1 });
    const r = (await runCommand('train:probe', ['--dataroot', data, '--imageSize', '64', '--net', path, '--blocks', 'conv4', '--epochs', '1', '--batchSize', '4', '--outf', out('probe-bare')])) as ProbeResult;
    expect(Object.keys(r.blocks)).toEqual(['conv4']);
  });

  it('train:finetune trains a classifier on a VAE encoder’s μ', async () => {
    await vaeRun();
    const r = (await runCommand('train:finetune', ['--dataroot', data, '--imageSize', '64', '--net', join(out('vae'), 'net_best.safetensors'), '--freeze', 'conv4', '--epochs', '1', '--batchSize', '4', '--outf', out('finetune')])) as ClassifyResult;
    expect(r.test.top1).toBeGreaterThanOrEqual(0);
    expect(await checkpointSpec(join(out('finetune'), 'net_best.safetensors'))).toMatchObject({ model: 'vae', numClasses: 2 });
  });
});
