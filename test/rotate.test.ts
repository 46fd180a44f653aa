// The K-way rotation kernel (kernels/rotate.wgsl) against its float64 reference on odd sizes,
// channels and fills; four copies give RotNet's quarter turns bit for bit, and copy 0 of any K is
// the image itself. train:rotnet --rotations 3 trains the 3-way task.
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readTensorFile } from '../src/checkpoint/pth.js';
import type { RotnetResult } from '../src/cli/commands/rotnet.js';
import { runCommand } from '../src/cli/main.js';
import { BUILTIN_ROOT } from '../src/data/builtin.js';
import { rotationBatch } from '../src/data/augment.js';
import { rotateBatch, rotateReference, rotationAngles } from '../src/data/rotate.js';
import { scope, tensor } from '../src/index.js';
import { Generator } from '../src/random.js';

const images = (shape: [number, number, number, number], seed: number) => {
  const g = new Generator(seed);
  return Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => g.uniform());
};

describe('rotateBatch (kernels/rotate.wgsl)', () => {
  it('matches the float64 reference: 3 and 4 copies, sizes 1, 3, 17, 1 and 3 channels, a fill', async () => {
    const cases: [[number, number, number, number], number, number[]][] = [
      [[1, 1, 1, 1], 3, []],
      [[2, 3, 3, 3], 3, [-1, 0.5, 2]],
      [[3, 1, 17, 17], 3, [0.25]],
      [[1, 3, 17, 17], 4, []],
      [[2, 2, 16, 16], 2, [0.1, -0.1]],
    ];
    for (const [shape, copies, fill] of cases) {
      const src = images(shape, shape[2]);
      const got = await scope(async () => {
        const r = rotateBatch(tensor(src, shape), copies, fill);
        return { images: (await r.images.toArray()) as Float32Array, labels: Array.from((await r.labels.toArray()) as Int32Array) };
      });
      expect(got.images, JSON.stringify({ shape, copies })).toBeAllClose(rotateReference(src, shape, copies, fill), { rtol: 1e-5, atol: 1e-5 });
      expect(got.labels).toEqual(Array.from({ length: shape[0] * copies }, (_, i) => i % copies));
      // Copy 0 is the image itself.
      const one = shape[1] * shape[2] * shape[3];
      expect(Array.from(got.images.subarray(0, one))).toEqual(Array.from(src.subarray(0, one)));
    }
  });

  it("4 copies are RotNet's quarter turns (torch.rot90) bit for bit; 120° moves a corner into the fill", async () => {
    const shape: [number, number, number, number] = [2, 3, 9, 9];
    const src = images(shape, 7);
    const [ours, quarter] = await scope(async () => [await rotateBatch(tensor(src, shape), 4).images.toArray(), await rotationBatch(tensor(src, shape)).images.toArray()]);
    expect(Array.from(ours as Float32Array)).toEqual(Array.from(quarter as Float32Array));
    expect(rotationAngles(3).cos[1]).toBeCloseTo(-0.5, 7);
    expect(rotationAngles(3).sin[1]).toBeCloseTo(Math.sqrt(3) / 2, 7);
    const turned = await scope(async () => (await rotateBatch(tensor(src, shape), 3, [5, 5, 5]).images.toArray()) as Float32Array);
    // The top-left corner of the 120° copy comes from outside the image: all fill.
    expect(turned[9 * 9 * 3]).toBe(5);
    // The centre stays: it is its own source at every angle.
    expect(turned[9 * 9 * 3 + 4 * 9 + 4]).toBeCloseTo(src[4 * 9 + 4]!, 6);
  });
});

describe('train:rotnet --rotations 3', () => {
  it('trains a 3-way head on 0°, 120°, 240° and records the angles as its classes', async () => {
    const root = mkdtempSync(join(tmpdir(), 'dawnet-rot3-'));
    const previousCache = process.env.DAWNET_CACHE;
    process.env.DAWNET_CACHE = join(root, 'cache');
    try {
      for (const [split, count] of [['train', 4], ['test', 2]] as const) {
        const to = join(root, 'data', split, '0-tshirt-top');
        mkdirSync(to, { recursive: true });
        for (const f of readdirSync(join(BUILTIN_ROOT, split, '0-tshirt-top')).sort().slice(0, count)) copyFileSync(join(BUILTIN_ROOT, split, '0-tshirt-top', f), join(to, f));
      }
      const outf = join(root, 'run');
      const r = (await runCommand('train:rotnet', ['--dataroot', join(root, 'data'), '--imageSize', '16', '--ninStages', '3', '--rotations', '3', '--batchSize', '4', '--epochs', '1', '--outf', outf])) as RotnetResult;
      expect(r.losses.every(Number.isFinite)).toBe(true);
      const { tensors, metadata } = await readTensorFile(join(outf, 'net_epoch_1.safetensors'));
      expect(tensors.get('classifier.Classifier.weight')!.shape).toEqual([3, 192]);
      expect((JSON.parse(metadata.args!) as { modelSpec: { classNames: string[] } }).modelSpec.classNames).toEqual(['0', '120', '240']);
      // Held out: 2 images × 3 rotations scored.
      const epoch = readFileSync(join(outf, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; testAccuracy?: number }).find((m) => m.kind === 'epoch')!;
      expect([0, 1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6, 1].some((v) => Math.abs(v - epoch.testAccuracy!) < 1e-6)).toBe(true);
    } finally {
      if (previousCache === undefined) delete process.env.DAWNET_CACHE;
      else process.env.DAWNET_CACHE = previousCache;
      rmSync(root, { recursive: true, force: true });
    }
  });
});
