// Two-stage fine-tuning as the RotNet-vs-VAE study runs it: train:probe trains a head on the
// frozen features of one block, then train:finetune --head keeps that head, cuts the network
// after the block and trains it all. Checked on the weights the runs save: the head at the start
// is the probe's, a frozen trunk stays the pretrained one, and a second stage changes everything.
// Also RotNet's AlexNet conv4/conv5 heads and per-block pooling of the linear probe.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AlexNetHead } from '../models/heads.js';
import { buildModel, classifierPrefix, type ModelSpec } from '../models/registry.js';
import { readTensorFile } from '../src/checkpoint/pth.js';
import { UsageError } from '../src/cli/args.js';
import type { ClassifyResult } from '../src/cli/commands/classify.js';
import type { EvaluateResult } from '../src/cli/commands/evaluate.js';
import { poolSizesOf } from '../src/cli/commands/probe.js';
import { runCommand } from '../src/cli/main.js';
import { noGrad, scope, zeros } from '../src/index.js';
import { Generator } from '../src/random.js';
import { commandSandbox, once } from './fixtures/sandbox.js';

const { data, out } = commandSandbox('dawnet-two-stage-', { train: 6, test: 3 });


const tiny = ['--dataroot', data, '--imageSize', '16', '--verbIter', '1', '--batchSize', '6'];
const pretrained = once(async () => {
  await runCommand('train:rotnet', [...tiny, '--model', 'nin', '--ninStages', '3', '--epochs', '1', '--epochSize', '6', '--outf', out('rotnet')]);
  return join(out('rotnet'), 'net_epoch_1.safetensors');
});
// Stage 1: linear heads on conv1 (pooled to 3×3) and conv2 (pooled to 1×1) of the frozen trunk.
const probe = once(async () => {
  await runCommand('train:probe', [...tiny, '--net', await pretrained(), '--blocks', 'conv1,conv2', '--poolSize', 'conv1:3,1', '--epochs', '1', '--outf', out('probe')]);
  return join(out('probe'), 'net_epoch_1.safetensors');
});

/** Every float tensor of a checkpoint (model weights, not the optimizer's state). */
async function weights(path: string): Promise<Map<string, Float32Array>> {
  const { tensors } = await readTensorFile(path);
  const outMap = new Map<string, Float32Array>();
  for (const [k, t] of tensors) {
    if (!k.startsWith('optimizer') && t.data instanceof Float32Array) outMap.set(k, t.data);
  }
  return outMap;
}

const same = (a: Float32Array | undefined, b: Float32Array | undefined) => a !== undefined && b !== undefined && a.length === b.length && a.every((v, i) => v === b[i]);
const isParameter = (k: string) => !/running_(mean|var)|num_batches/.test(k);

async function finetune(name: string, extra: string[]): Promise<{ result: ClassifyResult; saved: Map<string, Float32Array> }> {
  const result = (await runCommand('train:finetune', [...tiny, '--head', await probe(), '--headBlock', 'conv2', '--epochs', '1', '--augment', 'none', '--outf', out(name), ...extra])) as ClassifyResult;
  return { result, saved: await weights(join(out(name), 'net_epoch_1.safetensors')) };
}

describe('two-stage fine-tuning (train:probe, then train:finetune --head)', () => {
  it('per-block --poolSize reaches the probe: conv1 pooled to 3×3, conv2 to 1×1', async () => {
    const heads = await weights(await probe());
    const linear = (block: string) => [...heads].find(([k]) => k.startsWith(`${block}.`) && k.endsWith('.weight') && !k.includes('running'))!;
    expect(linear('conv1')[1].length).toBe(3 * 96 * 3 * 3);
    expect(linear('conv2')[1].length).toBe(3 * 192 * 1 * 1);
    expect(poolSizesOf('conv1:12,conv2:7,4', ['conv1', 'conv2', 'conv3'])).toEqual({ conv1: 12, conv2: 7, conv3: 4 });
    expect(poolSizesOf('2', ['conv1'])).toEqual({ conv1: 2 });
    expect(() => poolSizesOf('conv9:2', ['conv1'])).toThrow(/'conv9' is not a probed block/);
    expect(() => poolSizesOf('conv1:x', ['conv1'])).toThrow(UsageError);
  });

  it("starts from the probe's head and the pretrained trunk, cut after the block (rates 0: nothing moves)", async () => {
    const [trunk, heads] = [await weights(await pretrained()), await weights(await probe())];
    const { saved } = await finetune('start', ['--lr', '0']);
    const names = [...saved.keys()].filter(isParameter);
    expect(names.filter((k) => k.startsWith('conv3.') || k.startsWith('classifier.'))).toEqual([]);
    const headNames = names.filter((k) => k.startsWith('head.'));
    expect(headNames.length).toBeGreaterThan(0);
    for (const k of headNames) expect(same(saved.get(k), heads.get(`conv2.${k.slice('head.'.length)}`)), k).toBe(true);
    for (const k of names.filter((n) => !n.startsWith('head.'))) expect(same(saved.get(k), trunk.get(k)), k).toBe(true);
  });

  it('with --freeze on the block, only the head trains; without, every parameter changes', async () => {
    const [trunk, heads] = [await weights(await pretrained()), await weights(await probe())];
    const headOf = (k: string) => heads.get(`conv2.${k.slice('head.'.length)}`);
    const frozen = (await finetune('frozen', ['--freeze', 'conv2', '--lr', '0.1'])).saved;
    for (const k of [...frozen.keys()].filter(isParameter)) {
      if (k.startsWith('head.')) expect(same(frozen.get(k), headOf(k)), k).toBe(false);
      else expect(same(frozen.get(k), trunk.get(k)), k).toBe(true);
    }
    const { result, saved } = await finetune('whole', ['--lr', '0.01']);
    const params = [...saved.keys()].filter(isParameter);
    expect(params.length).toBeGreaterThan(10);
    for (const k of params) expect(same(saved.get(k), k.startsWith('head.') ? headOf(k) : trunk.get(k)), k).toBe(false);
    // The checkpoint describes the cut network: evaluate rebuilds it from the file alone.
    const ev = (await runCommand('evaluate', ['--dataroot', data, '--imageSize', '16', '--net', join(out('whole'), 'net_epoch_1.safetensors')])) as EvaluateResult;
    expect(ev.top1).toBeCloseTo(result.test.top1, 6);
  });

  it('refuses a --head that is not a probe checkpoint, and an unknown --headBlock', async () => {
    await expect(runCommand('train:finetune', [...tiny, '--head', await pretrained(), '--outf', out('bad')])).rejects.toThrow(/not a train:probe checkpoint/);
    await expect(runCommand('train:finetune', [...tiny, '--head', await probe(), '--headBlock', 'conv3', '--outf', out('bad')])).rejects.toThrow(/--headBlock conv3: .* holds heads on conv1, conv2/);
  });
});

describe("RotNet's AlexNet heads (NonLinearClassifier Alexnet_conv4 / Alexnet_conv5)", () => {
  it('parameters by hand; conv4 gets a conv5-like block; a cut AlexNet keeps the stages up to the block', () => {
    // At 224 px conv4 and conv5 give 256 × 13 × 13; pool5 makes it 6 × 6, as the reference's 256·6·6.
    // Counted with 32 hidden units (the default, 4096, is checked on the cut network below).
    const fc = (fin: number) => fin * 32 + 2 * 32 + 32 * 32 + 2 * 32 + 32 * 10 + 10;
    const count = (m: AlexNetHead) => m.parameters().reduce((n, p) => n + p.size, 0);
    const conv5 = new AlexNetHead([256, 13, 13], 10, { hidden: 32, generator: new Generator(1) });
    const conv4 = new AlexNetHead([256, 13, 13], 10, { conv5: true, hidden: 32, generator: new Generator(1) });
    try {
      expect(count(conv5)).toBe(fc(256 * 6 * 6));
      expect(count(conv4)).toBe(fc(256 * 6 * 6) + 256 * 256 * 9 + 256 + 2 * 256);
      expect(conv4.namedParameters().map(([n]) => n)[0]).toBe('layers.ConvB5.0.weight');
      expect(conv5.namedParameters().map(([n]) => n)).toEqual(['layers.Linear1.weight', 'layers.BatchNorm1.weight', 'layers.BatchNorm1.bias', 'layers.Linear2.weight', 'layers.BatchNorm2.weight', 'layers.BatchNorm2.bias', 'layers.LinearF.weight', 'layers.LinearF.bias']);
    } finally {
      conv5.dispose();
      conv4.dispose();
    }
    const spec: ModelSpec = { model: 'alexnet', ninStages: 0, numClasses: 5, inChannels: 3, imageSize: 64, normalize: { mean: [0, 0, 0], std: [1, 1, 1] }, classNames: [], head: { block: 'conv4', type: 'alexnet' } };
    const net = buildModel(spec, 1);
    try {
      expect(net.stageNames).toEqual(['conv1', 'pool1', 'conv2', 'pool2', 'conv3', 'conv4', 'head']);
      expect(net.namedParameters().some(([n]) => n.startsWith('conv5.') || n.startsWith('fc_block.'))).toBe(false);
      expect(classifierPrefix(spec)).toBe('head.');
      const shapes = Object.fromEntries(net.namedParameters().map(([n, t]) => [n, t.shape]));
      expect(shapes['head.layers.Linear2.weight']).toEqual([4096, 4096]);
      // At 64 px conv4 is 256 × 3 × 3 and pool5 1 × 1.
      expect(shapes['head.layers.Linear1.weight']).toEqual([4096, 256]);
      net.eval();
      expect(noGrad(() => scope(() => net.forward(zeros([2, 3, 64, 64])).shape))).toEqual([2, 5]);
    } finally {
      net.dispose();
    }
  });
});
