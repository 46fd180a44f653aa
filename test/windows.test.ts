// Binding windows: the planner on its own, then every row of the op table run under a 1 KiB
// binding ceiling (so most test tensors are bound in windows), checked against the float64
// reference, against finite differences, and against the same run unsplit.
import { describe, expect, it } from 'vitest';
import { NIN, resnet18 } from '../models/index.js';
import { backend, F, Generator, gradcheck, optim, randn, scope, tensor, type Tensor } from '../src/index.js';
import { bindingCeiling, parseBytes, planWindows } from '../src/gpu/windows.js';
import { applyOp, type OpDef, type RefTensor } from '../src/ops/op.js';
import type { Module } from '../src/nn/module.js';
import { OPS } from '../src/ops/table.js';
import { sampleInput } from './helpers.js';

/**
 * Rows whose split run adds a sum in another order than the unsplit one, so they match it within
 * the row's tolerance rather than bit for bit: a reduction over the split dimension (the batch
 * for conv2d's weight gradient and batch normalisation's statistics; the reduced axis for sums
 * over one long row, which includes a broadcast operand's gradient in add/sub/mul/div and the
 * losses' mean over samples) becomes a sum of per-window sums; a matmul whose b passes the
 * ceiling adds its products over windows of K, or runs as (b·aᵀ)ᵀ with another tiling.
 */
const REORDERED = new Set([
  'conv2d', 'convTranspose2d', 'batchNorm', 'batchNormEval', 'sum', 'mean', 'add', 'sub', 'mul', 'div',
  'crossEntropy', 'binaryCrossEntropy', 'binaryCrossEntropyWithLogits', 'mseLoss', 'gaussianKL', 'tripletMarginLoss', 'topkAccuracy', 'matmul',
]);
const SMALLEST = 256;

describe('planWindows', () => {
  it('keeps one window when everything fits', () => {
    expect(planWindows(10, [100, 40], 1000, 256)).toEqual({ windows: [{ start: 0, count: 10 }], aligned: true });
  });

  it('starts every window on an aligned byte of every tensor when it can', () => {
    // Rows of 96 and 32 bytes: 8 rows put both on 256-byte boundaries; 1 KiB holds 10 rows of 96.
    const { windows, aligned } = planWindows(30, [96, 32], 1024, 256);
    expect(aligned).toBe(true);
    expect(windows).toEqual([{ start: 0, count: 8 }, { start: 8, count: 8 }, { start: 16, count: 8 }, { start: 24, count: 6 }]);
  });

  it('balances windows and falls back to unaligned ones when an aligned step does not fit', () => {
    const { windows, aligned } = planWindows(7, [300], 1024, 256);
    expect(aligned).toBe(false);
    expect(windows).toEqual([{ start: 0, count: 3 }, { start: 3, count: 3 }, { start: 6, count: 1 }]);
    expect(windows.every((w) => w.count * 300 <= 1024)).toBe(true);
  });

  it('refuses an outer slice larger than the ceiling', () => {
    expect(() => planWindows(2, [2048], 1024, 256)).toThrow(/one outer slice is 2048 bytes, over the 1024-byte binding limit/);
  });

  it('reads DAWNET_MAX_BINDING sizes and never raises the device limit', () => {
    expect(parseBytes('1MiB')).toBe(2 ** 20);
    expect(parseBytes('512 KiB')).toBe(2 ** 19);
    expect(parseBytes('4096')).toBe(4096);
    expect(() => parseBytes('lots')).toThrow(/'lots' is not a size/);
    const limits = { maxStorageBufferBindingSize: 2 ** 27, minStorageBufferOffsetAlignment: 256 };
    expect(bindingCeiling(limits, '1MiB')).toBe(2 ** 20);
    expect(bindingCeiling(limits, 1000)).toBe(768);
    expect(bindingCeiling(limits, '1GiB')).toBe(2 ** 27);
    expect(bindingCeiling(limits)).toBe(2 ** 27);
    expect(() => bindingCeiling(limits, 100)).toThrow(/below the 256-byte binding alignment/);
  });
});

function upload(x: RefTensor, integer: boolean, grad: boolean): Tensor {
  if (integer) return tensor(Int32Array.from(x.data), x.shape);
  return tensor(Float32Array.from(x.data), x.shape, { requiresGrad: grad });
}

/** The op's output and its inputs' gradients for a fixed upstream gradient. */
async function run(name: string, def: OpDef<unknown>, inputs: RefTensor[], integer: boolean[], attrs: unknown): Promise<Float32Array[]> {
  return scope(async () => {
    const grads = def.backward !== 'none';
    const ts = inputs.map((x, i) => upload(x, integer[i]!, grads));
    const out = applyOp(name, def, ts, attrs);
    const results = [new Float32Array(await out.toArray())];
    if (grads) {
      const rng = new Generator(7);
      out.backward(tensor(Float32Array.from({ length: out.size }, () => rng.normal()), out.shape));
      for (let i = 0; i < ts.length; i++) {
        if (integer[i]) continue;
        results.push(new Float32Array(await ts[i]!.grad!.toArray()));
        ts[i]!.grad!.dispose();
      }
    }
    return results;
  });
}

async function underCeiling<T>(ceiling: number, body: () => Promise<T>): Promise<T> {
  backend().setBindingLimit(ceiling);
  try {
    return await body();
  } finally {
    backend().setBindingLimit();
  }
}

/**
 * The smallest ceiling, from 256 bytes up by doubling, under which the case runs: a tensor is
 * cut along its first dimension only, so a case whose single image or weight passes a ceiling
 * needs a larger one. Any error other than the binding limit fails the test.
 */
async function smallestCeiling<T>(body: () => Promise<T>): Promise<{ ceiling: number; result: T; windowed: boolean }> {
  for (let ceiling = SMALLEST; ; ceiling *= 2) {
    const before = backend().windowed;
    try {
      const result = await underCeiling(ceiling, body);
      return { ceiling, result, windowed: backend().windowed > before };
    } catch (err) {
      if (!(err instanceof Error) || !/binding limit/.test(err.message) || ceiling >= 2 ** 20) throw err;
    }
  }
}

/** Cases with an input larger than the smallest ceiling, and those of them that ran in windows. */
const split = { cases: 0, windowed: 0, unsplit: [] as string[] };

describe('the op table under a small binding ceiling', () => {
  for (const [name, row] of Object.entries(OPS)) {
    const def = row as OpDef<unknown>;
    def.cases.forEach((c, index) => {
      const label = `${name} ${c.shapes.map((s) => `[${s.join('x')}]`).join(' ')} ${JSON.stringify(c.attrs)}`;
      const kinds = c.shapes.map((_, i) => c.inputs?.[i] ?? def.inputs?.[i] ?? 'real');
      const integer = kinds.map((k) => typeof k === 'object');
      const draw = (seed: number): RefTensor[] => {
        const rng = new Generator(seed);
        return c.shapes.map((shape, i) => sampleInput(kinds[i]!, shape, c.shapes, rng)).map((x, i) =>
          integer[i] ? x : { shape: x.shape, data: Float64Array.from(Float32Array.from(x.data)) },
        );
      };

      it(`split equals unsplit, the reference and finite differences: ${label}`, async () => {
        const inputs = draw(300 + index);
        const whole = await run(name, def, inputs, integer, c.attrs);
        const { ceiling, result: parts, windowed } = await smallestCeiling(() => run(name, def, inputs, integer, c.attrs));
        if (c.shapes.some((shape) => 4 * shape.reduce((p, d) => p * d, 1) > SMALLEST)) {
          split.cases += 1;
          if (windowed) split.windowed += 1;
          else split.unsplit.push(label);
        }
        expect(parts.length).toBe(whole.length);
        parts.forEach((s, i) => {
          if (REORDERED.has(name)) expect(s).toBeAllClose(whole[i]!, def.tolerance);
          else expect(Array.from(s)).toEqual(Array.from(whole[i]!));
        });
        expect(parts[0]!).toBeAllClose(def.reference(inputs, c.attrs).data, def.tolerance);
        if (def.gradTolerance === 'none') return;
        const tolerance = def.gradTolerance;
        const check = await underCeiling(ceiling, () =>
          gradcheck((ts) => applyOp(name, def, ts, c.attrs), (xs) => def.reference(xs, c.attrs), draw(200 + index), { tolerance, integer }),
        );
        expect(check.ok, JSON.stringify(check.worst)).toBe(true);
      });
    });
  }

  // What stays whole: weights (a matmul's single matrix b, a convolution's filter) and single
  // images, since tensors are cut along their first dimension only.
  it('bound most cases in windows', () => {
    expect(split.cases).toBeGreaterThan(0);
    expect(split.windowed / split.cases, `unsplit: ${split.unsplit.join('; ')}`).toBeGreaterThan(0.75);
  });
});

/**
 * One SGD step (momentum 0.9) of a whole model: the loss and every parameter afterwards. The
 * optimizer is built under the same ceiling, so its arenas are cut to it as well.
 */
async function trainingStep(make: () => Module, x: () => Tensor, labels: number[]): Promise<Float32Array[]> {
  return scope(async () => {
    const m = make();
    const opt = new optim.SGD(m.parameters(), { lr: 0.1, momentum: 0.9 });
    const loss = F.crossEntropy(m.forward(x()), tensor(Int32Array.from(labels), [labels.length]));
    loss.backward();
    opt.step();
    const result = [new Float32Array(await loss.toArray())];
    for (const p of m.parameters()) result.push(new Float32Array(await p.toArray()));
    opt.zeroGrad();
    opt.dispose();
    m.dispose();
    return result;
  });
}

async function expectStepSplitMatches(ceiling: number, make: () => Module, shape: number[]): Promise<void> {
  const x = () => randn(shape, { generator: new Generator(11) });
  const labels = Array.from({ length: shape[0]! }, (_, i) => i % 4);
  const whole = await trainingStep(make, x, labels);
  const before = backend().windowed;
  const split = await underCeiling(ceiling, () => trainingStep(make, x, labels));
  expect(backend().windowed).toBeGreaterThan(before);
  // Batch statistics and weight gradients are sums over the batch, added window by window: the
  // loss moves by float32 rounding, but a ReLU whose input sits that close to 0 flips, which moves
  // a gradient by one element's share (seen up to 7e-4 in ResNet-18's stem, 7e-5 after lr 0.1).
  expect(split[0]!).toBeAllClose(whole[0]!, { rtol: 1e-5, atol: 1e-6 });
  split.forEach((s, i) => expect(s).toBeAllClose(whole[i]!, { rtol: 1e-3, atol: 2e-4 }));
}

describe('a whole training step split along the batch equals the unsplit step', () => {
  it('NIN-4, 32 images of 16×16, under a 2 MiB ceiling (its largest weight is 1.8 MiB)', async () => {
    await expectStepSplitMatches(2 * 2 ** 20, () => new NIN({ stages: 4, generator: new Generator(1) }), [32, 3, 16, 16]);
  }, 600_000);

  it('ResNet-18, 168 images of 32×32, under a 10 MiB ceiling (its largest weight is 9 MiB)', async () => {
    await expectStepSplitMatches(10 * 2 ** 20, () => resnet18({ numClasses: 4, generator: new Generator(1) }), [168, 3, 32, 32]);
  }, 600_000);
});

describe('optimizer arenas past the binding ceiling', () => {
  it('SGD with momentum updates a parameter larger than one binding in windows, as it does whole', async () => {
    const values = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i));
    const grads = Float32Array.from({ length: 1000 }, (_, i) => Math.cos(3 * i));
    const steps = async (): Promise<Float32Array> => {
      const p = tensor(values, [10, 100], { requiresGrad: true }).keep();
      const opt = new optim.SGD([p], { lr: 0.1, momentum: 0.9, weightDecay: 0.01 });
      for (let i = 0; i < 2; i++) {
        p.grad = tensor(grads, [10, 100]).keep();
        opt.step();
        p.grad.dispose();
        p.grad = null;
      }
      const out = new Float32Array(await p.toArray());
      opt.dispose();
      p.dispose();
      return out;
    };
    const whole = await steps();
    const before = backend().windowed;
    const split = await underCeiling(1024, steps);
    expect(backend().windowed).toBeGreaterThan(before);
    expect(Array.from(split)).toEqual(Array.from(whole));
  });
});
