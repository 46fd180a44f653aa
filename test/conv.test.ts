// What the op-table loop cannot express for the convolutional family: batchnorm's running
// statistics and eval mode, bitwise repeatability, shape errors, dropout's statistics and
// seeding, and the functional API's argument handling. Forward values and gradients of every
// op are checked by test/ops.test.ts.
import { describe, expect, it } from 'vitest';
import { F, Generator, randn, scope, tensor, type Tensor } from '../src/index.js';
import { refBatchStatistics } from '../src/ops/batchnorm.js';
import { conv2dBackwardInput, conv2dBackwardWeight, conv2dForward, conv2dGeometry, type Conv2dAttrs } from '../src/ops/conv.js';
import { dropoutScale } from '../src/ops/dropout.js';

const bits = async (t: Tensor): Promise<Uint32Array> => new Uint32Array((await t.toArray()).buffer);

function sample(shape: number[], seed: number): Float32Array {
  const g = new Generator(seed);
  return Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => g.normal() * 2 + 0.5);
}

describe('batchNorm running statistics', () => {
  it('updates running_mean and running_var in place with momentum and the unbiased variance, as PyTorch', async () => {
    const shape = [3, 4, 5, 2];
    const C = 4;
    const runningMean = tensor(new Float32Array([0.5, -1, 0, 2]), [C]);
    const runningVar = tensor(new Float32Array([1, 2, 0.5, 1]), [C]);
    const expectMean = [0.5, -1, 0, 2];
    const expectVar = [1, 2, 0.5, 1];
    const momentum = 0.1;
    for (let step = 0; step < 3; step++) {
      const data = sample(shape, 10 + step);
      await scope(async () => {
        const x = tensor(data, shape);
        F.batchNorm(x, runningMean, runningVar, null, null, true, momentum, 1e-5);
        const { mean, variance, count } = refBatchStatistics({ shape, data: Float64Array.from(data) });
        for (let c = 0; c < C; c++) {
          expectMean[c] = (1 - momentum) * expectMean[c]! + momentum * mean[c]!;
          expectVar[c] = (1 - momentum) * expectVar[c]! + momentum * variance[c]! * (count / (count - 1));
        }
      });
    }
    expect(await runningMean.toArray()).toBeAllClose(expectMean, { rtol: 1e-5, atol: 1e-6 });
    expect(await runningVar.toArray()).toBeAllClose(expectVar, { rtol: 1e-5, atol: 1e-6 });
    runningMean.dispose();
    runningVar.dispose();
  });

  it('normalises with the running statistics in eval mode and leaves them unchanged', async () => {
    const shape = [2, 3, 4, 4];
    const data = sample(shape, 3);
    const rm = [0.2, -0.4, 1];
    const rv = [0.8, 1.5, 2];
    const w = [1.5, -0.5, 2];
    const b = [0.1, 0.2, -0.3];
    await scope(async () => {
      const runningMean = tensor(rm, [3]);
      const runningVar = tensor(rv, [3]);
      const y = F.batchNorm(tensor(data, shape), runningMean, runningVar, tensor(w, [3]), tensor(b, [3]), { training: false, eps: 1e-5 });
      const expected = Array.from(data, (v, i) => {
        const c = Math.floor(i / 16) % 3;
        return ((v - rm[c]!) / Math.sqrt(rv[c]! + 1e-5)) * w[c]! + b[c]!;
      });
      expect(await y.toArray()).toBeAllClose(expected, { rtol: 1e-5, atol: 1e-5 });
      expect(await runningMean.toArray()).toBeAllClose(Float32Array.from(rm), { rtol: 0, atol: 0 });
      expect(await runningVar.toArray()).toBeAllClose(Float32Array.from(rv), { rtol: 0, atol: 0 });
    });
  });

  it('uses batch statistics without running statistics, in either mode, as PyTorch does', async () => {
    const shape = [4, 2, 3];
    const data = sample(shape, 5);
    await scope(async () => {
      const y = await F.batchNorm(tensor(data, shape), null, null, null, null, false).toArray();
      const { mean, variance } = refBatchStatistics({ shape, data: Float64Array.from(data) });
      const expected = Array.from(data, (v, i) => {
        const c = Math.floor(i / 3) % 2;
        return (v - mean[c]!) / Math.sqrt(variance[c]! + 1e-5);
      });
      expect(y).toBeAllClose(expected, { rtol: 1e-4, atol: 1e-5 });
    });
  });

  it('refuses training on one value per channel', () => {
    scope(() => {
      expect(() => F.batchNorm(randn([1, 3]), null, null, null, null, true)).toThrow(/more than 1 value per channel/);
    });
  });
});

describe('bitwise repeatability (fixed-order reductions, no atomics)', () => {
  it('conv2d forward and both gradients, batchnorm forward and backward', async () => {
    const run = (): Promise<Uint32Array[]> =>
      scope(async () => {
        const x = tensor(sample([2, 5, 9, 8], 1), [2, 5, 9, 8], { requiresGrad: true });
        const w = tensor(sample([6, 5, 3, 3], 2), [6, 5, 3, 3], { requiresGrad: true });
        const w2 = tensor(sample([4, 6, 3, 3], 5), [4, 6, 3, 3], { requiresGrad: true });
        const gamma = tensor(sample([6], 3), [6], { requiresGrad: true });
        const beta = tensor(sample([6], 4), [6], { requiresGrad: true });
        const y = F.batchNorm(F.conv2d(x, w, null, { padding: 1 }), null, null, gamma, beta, true);
        const z = F.conv2d(y, w2, null, { stride: 2 });
        F.sum(F.mul(z, z)).backward();
        const out = [await bits(z), await bits(x.grad!), await bits(w.grad!), await bits(w2.grad!), await bits(gamma.grad!), await bits(beta.grad!)];
        for (const t of [x, w, w2, gamma, beta]) t.grad!.dispose();
        return out;
      });
    const first = await run();
    const second = await run();
    first.forEach((a, i) => expect(Buffer.from(a.buffer).equals(Buffer.from(second[i]!.buffer))).toBe(true));
  });
});

describe('conv2d kernel paths', () => {
  // The op table checks whichever path the adapter gets; this checks that the SIMD kernels
  // (kernels/conv2d_simd.wgsl, lavapipe) and the direct ones agree where both run, on shapes
  // that leave partial channel blocks, partial 4-column texels and several row chunks, and on
  // column strides and dilations that split the weight gradient's packed x into phases.
  const cases: [number[], number[], Partial<Conv2dAttrs>][] = [
    [[3, 20, 9, 7], [19, 20, 3, 3], { padding: [1, 1] }],
    [[2, 6, 11, 10], [12, 3, 5, 5], { padding: [2, 1], groups: 2 }],
    [[2, 5, 13, 9], [7, 5, 3, 3], { stride: [2, 2], padding: [1, 1] }],
    [[1, 8, 10, 10], [33, 8, 3, 2], { padding: [3, 0], dilation: [2, 3] }],
    [[2, 3, 15, 23], [12, 3, 7, 7], { stride: [2, 2], padding: [3, 3] }],
  ];
  for (const [xs, ws, a] of cases) {
    it(`forward and both gradients agree: x ${JSON.stringify(xs)} w ${JSON.stringify(ws)} ${JSON.stringify(a)}`, async () => {
      await scope(async () => {
        const attrs: Conv2dAttrs = { stride: [1, 1], padding: [0, 0], dilation: [1, 1], groups: 1, ...a };
        const g = conv2dGeometry(xs, ws, [ws[0]!], attrs);
        const x = tensor(sample(xs, 1), xs);
        const w = tensor(sample(ws, 2), ws);
        const bias = tensor(sample([ws[0]!], 3), [ws[0]!]);
        const dyShape = [g.N, g.Co, g.Ho, g.Wo];
        const dy = tensor(sample(dyShape, 4), dyShape);
        // Float32 sums of up to a few hundred products in different orders.
        const tol = { rtol: 1e-4, atol: 1e-3 };
        const simd = { path: 'simd' } as const;
        const direct = { path: 'direct' } as const;
        expect(await conv2dForward(x, w, bias, g, simd).toArray()).toBeAllClose(await conv2dForward(x, w, bias, g, direct).toArray(), tol);
        expect(await conv2dBackwardInput(dy, w, g, null, simd).toArray()).toBeAllClose(await conv2dBackwardInput(dy, w, g, null, direct).toArray(), tol);
        expect(await conv2dBackwardWeight(x, dy, g, simd).toArray()).toBeAllClose(await conv2dBackwardWeight(x, dy, g, direct).toArray(), tol);
      });
    });
  }
});

describe('shape errors name the op and both shapes', () => {
  it('conv2d: channels, rank, groups and bias', () => {
    scope(() => {
      const x = randn([2, 3, 8, 8]);
      expect(() => F.conv2d(x, randn([4, 5, 3, 3]))).toThrow('conv2d: input [2, 3, 8, 8] has 3 channels but weight [4, 5, 3, 3] expects 5');
      expect(() => F.conv2d(randn([3, 8, 8]), randn([4, 3, 3, 3]))).toThrow('conv2d: input [3, 8, 8] must be 4-D (N, C, H, W) for weight [4, 3, 3, 3]');
      expect(() => F.conv2d(x, randn([4, 3, 3, 3]), randn([5]))).toThrow('conv2d: bias [5] must be [4] for weight [4, 3, 3, 3]');
      expect(() => F.conv2d(x, randn([4, 1, 3, 3]), null, { groups: 2 })).toThrow(/conv2d: input \[2, 3, 8, 8\] has 3 channels but weight \[4, 1, 3, 3\] expects 2/);
      expect(() => F.conv2d(x, randn([4, 3, 11, 11]))).toThrow(/conv2d: input \[2, 3, 8, 8\] .* smaller than weight \[4, 3, 11, 11\]/);
    });
  });

  it('convTranspose2d, batchNorm, cat and pooling', () => {
    scope(() => {
      expect(() => F.convTranspose2d(randn([1, 3, 4, 4]), randn([2, 3, 4, 4]))).toThrow('convTranspose2d: input [1, 3, 4, 4] has 3 channels but weight [2, 3, 4, 4] expects 2');
      expect(() => F.convTranspose2d(randn([1, 2, 4, 4]), randn([2, 3, 4, 4]), null, { stride: 2, outputPadding: 2 })).toThrow(/output padding/);
      expect(() => F.batchNorm(randn([2, 3, 4]), null, null, randn([4]), null, true)).toThrow('batchNorm: weight [4] does not match the 3 channels of input [2, 3, 4]');
      expect(() => F.cat([randn([2, 3]), randn([3, 3])], 1)).toThrow('cat: tensor 1 [3, 3] does not match tensor 0 [2, 3] outside dimension 1');
      expect(() => F.maxPool2d(randn([1, 1, 2, 2]), 3)).toThrow(/maxPool2d: input \[1, 1, 2, 2\] is too small for kernel size \[3, 3\]/);
    });
  });
});

describe('dropout', () => {
  it('keeps 1 − p of the elements, scaled by 1/(1 − p), and is the identity in eval', async () => {
    await scope(async () => {
      const n = 1 << 16;
      const x = tensor(new Float32Array(n).fill(1), [n]);
      for (const p of [0.1, 0.5, 0.8]) {
        const y = await F.dropout(x, p, true, new Generator(42)).toArray();
        const kept = y.filter((v) => v !== 0);
        // Binomial(n, 1 − p): five standard deviations.
        expect(Math.abs(kept.length / n - (1 - p))).toBeLessThan((5 * Math.sqrt(p * (1 - p))) / Math.sqrt(n));
        expect(kept.every((v) => v === Math.fround(1 / (1 - p)))).toBe(true);
      }
      expect(F.dropout(x, 0.5, false)).toBe(x);
      expect(await F.dropout(x, 1, true).toArray()).toBeAllClose(new Float32Array(n), { rtol: 0, atol: 0 });
    });
  });

  it('draws its mask from the generator: the same seed repeats it, the stream moves on', async () => {
    await scope(async () => {
      const x = randn([4, 257]);
      const g1 = new Generator(7);
      const g2 = new Generator(7);
      const a = await bits(F.dropout(x, 0.5, true, g1));
      const b = await bits(F.dropout(x, 0.5, true, g2));
      expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
      const c = await bits(F.dropout(x, 0.5, true, g1));
      expect(Buffer.from(a.buffer).equals(Buffer.from(c.buffer))).toBe(false);
      // Neighbouring elements are dropped independently: no visible pattern in the mask.
      const seed: [number, number] = [123, 456];
      let agree = 0;
      for (let i = 0; i < 4096; i++) agree += Number((dropoutScale(i, { p: 0.5, seed }) === 0) === (dropoutScale(i + 1, { p: 0.5, seed }) === 0));
      expect(Math.abs(agree / 4096 - 0.5)).toBeLessThan(0.05);
    });
  });

  it('backpropagates through the same mask', async () => {
    await scope(async () => {
      const x = randn([3, 50], { requiresGrad: true });
      const y = F.dropout(x, 0.3, true, new Generator(9));
      F.sum(y).backward();
      const out = await y.toArray();
      const xs = await x.toArray();
      const grad = await x.grad!.toArray();
      const scale = Math.fround(1 / 0.7);
      grad.forEach((g, i) => expect(g).toBe(out[i] === 0 && xs[i] !== 0 ? 0 : scale));
      x.grad!.dispose();
    });
  });
});

describe('the functional API', () => {
  it('takes ints or pairs, and defaults as PyTorch (pool stride = kernel, cat dim 0, negative dims)', async () => {
    await scope(async () => {
      const x = randn([2, 3, 8, 6]);
      expect(F.conv2d(x, randn([4, 3, 3, 3]), randn([4]), { stride: [2, 1], padding: 1 }).shape).toEqual([2, 4, 4, 6]);
      expect(F.convTranspose2d(randn([1, 4, 4, 4]), randn([4, 2, 4, 4]), null, { stride: 2, padding: 1 }).shape).toEqual([1, 2, 8, 8]);
      expect(F.maxPool2d(x, 2).shape).toEqual([2, 3, 4, 3]);
      expect(F.maxPool2d(x, 3, { stride: 2, padding: 1, ceilMode: true }).shape).toEqual([2, 3, 5, 4]);
      expect(F.avgPool2d(x, [2, 3]).shape).toEqual([2, 3, 4, 2]);
      expect(F.adaptiveAvgPool2d(x, 1).shape).toEqual([2, 3, 1, 1]);
      expect(F.adaptiveMaxPool2d(x, [2, 3]).shape).toEqual([2, 3, 2, 3]);
      expect(F.cat([x, x]).shape).toEqual([4, 3, 8, 6]);
      expect(F.cat([x, randn([2, 1, 8, 6])], -3).shape).toEqual([2, 4, 8, 6]);
      expect(F.flatten(F.adaptiveAvgPool2d(x, 1)).shape).toEqual([2, 3]);
    });
  });
});
