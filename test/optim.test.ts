// Optimizers: several steps of SGD / Adam / AdamW against float64 references (Nesterov's first
// step, weight decay, bias correction, groups, parameters without gradients, clipping), one
// dispatch per group and no allocation per step, and a toy problem trained to a low loss.
import { describe, expect, it } from 'vitest';
import { backend, F, Generator, memory, optim, scope, tensor, type Tensor } from '../src/index.js';
import { TinyNet, xorBlobs } from './fixtures/tiny-net.js';

// Float32 kernels against float64 references over a few steps: each update rounds a handful of
// times, so errors stay within a few float32 ulps of the parameters' scale.
const TOL = { rtol: 2e-6, atol: 2e-6 };
const SHAPES = [[3], [17], [5, 13]];

interface Ref {
  p: Float64Array[];
}

function randomArrays(shapes: number[][], g: Generator, scale = 1): Float64Array[] {
  return shapes.map((s) => Float64Array.from({ length: s.reduce((a, b) => a * b, 1) }, () => g.normal() * scale));
}

function makeParams(values: Float64Array[], shapes: number[][]): Tensor[] {
  return values.map((v, i) => tensor(Float32Array.from(v), shapes[i]).keep().requiresGrad_());
}

/** Sets .grad from float64 values (rounded to float32, which the reference then uses too). */
function setGrads(params: Tensor[], grads: (Float64Array | null)[]): void {
  params.forEach((p, i) => {
    p.grad?.dispose();
    const g = grads[i];
    p.grad = g ? tensor(Float32Array.from(g), p.shape).keep() : null;
  });
}

const f32 = (a: Float64Array): Float64Array => Float64Array.from(Float32Array.from(a));

async function expectParams(params: Tensor[], expected: Float64Array[]): Promise<void> {
  for (let i = 0; i < params.length; i++) expect(await params[i]!.toArray()).toBeAllClose(expected[i]!, TOL);
}

interface SgdRefOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

/** torch.optim.SGD in float64; buffers are null until the first step with momentum. */
function sgdReference(p: Float64Array, g: Float64Array, buf: Float64Array | null, o: SgdRefOptions): Float64Array | null {
  const { lr, momentum = 0, dampening = 0, weightDecay = 0, nesterov = false } = o;
  let b = buf;
  for (let i = 0; i < p.length; i++) {
    let d = g[i]! + weightDecay * p[i]!;
    if (momentum !== 0) {
      if (!buf) {
        b ??= new Float64Array(p.length);
        b[i] = d;
      } else b![i] = momentum * b![i]! + (1 - dampening) * d;
      d = nesterov ? d + momentum * b![i]! : b![i]!;
    }
    p[i] = p[i]! - lr * d;
  }
  return b;
}

interface AdamRefOptions {
  lr: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  decoupled: boolean;
}

/** torch.optim.Adam / AdamW in float64 at step t (from 1). */
function adamReference(p: Float64Array, g: Float64Array, m: Float64Array, v: Float64Array, t: number, o: AdamRefOptions): void {
  const { lr, betas: [b1, b2] = [0.9, 0.999], eps = 1e-8, weightDecay = 0, decoupled } = o;
  for (let i = 0; i < p.length; i++) {
    let grad = g[i]!;
    if (decoupled) p[i] = p[i]! * (1 - lr * weightDecay);
    else grad += weightDecay * p[i]!;
    m[i] = b1 * m[i]! + (1 - b1) * grad;
    v[i] = b2 * v[i]! + (1 - b2) * grad * grad;
    const mHat = m[i]! / (1 - b1 ** t);
    const vHat = v[i]! / (1 - b2 ** t);
    p[i] = p[i]! - (lr * mHat) / (Math.sqrt(vHat) + eps);
  }
}

function dispose(ts: Tensor[]): void {
  for (const t of ts) {
    t.grad?.dispose();
    t.dispose();
  }
}

describe('SGD against a float64 reference', () => {
  const cases: [string, SgdRefOptions][] = [
    ['plain', { lr: 0.1 }],
    ['weight decay', { lr: 0.1, weightDecay: 0.05 }],
    ['momentum', { lr: 0.05, momentum: 0.9 }],
    ['momentum and dampening', { lr: 0.05, momentum: 0.9, dampening: 0.3 }],
    ['Nesterov', { lr: 0.05, momentum: 0.9, nesterov: true }],
    ['Nesterov with weight decay', { lr: 0.05, momentum: 0.8, nesterov: true, weightDecay: 0.1 }],
  ];
  for (const [name, options] of cases) {
    it(`${name}: 4 steps, parameters and momentum buffers`, async () => {
      const g = new Generator(1);
      const ref = { p: randomArrays(SHAPES, g).map(f32) } satisfies Ref;
      const params = makeParams(ref.p, SHAPES);
      const opt = new optim.SGD(params, options);
      let bufs: (Float64Array | null)[] = SHAPES.map(() => null);
      for (let step = 0; step < 4; step++) {
        const grads = randomArrays(SHAPES, g).map(f32);
        setGrads(params, grads);
        opt.step();
        bufs = ref.p.map((p, i) => sgdReference(p, grads[i]!, bufs[i]!, options));
        // After the first step, Nesterov's update is lr·(1 + μ)·d: the buffer starts as d itself.
        await expectParams(params, ref.p);
      }
      const state = await opt.stateDict();
      if (options.momentum) {
        for (let i = 0; i < params.length; i++) expect(state.state.get(i)!.tensors.get('momentum_buffer')!).toBeAllClose(bufs[i]!, TOL);
      } else {
        // No momentum, no buffer: only the step count (which PyTorch's SGD does not keep).
        expect([...state.state.values()].map((s) => [s.step, s.tensors.size])).toEqual([[4, 0], [4, 0], [4, 0]]);
      }
      opt.dispose();
      dispose(params);
    });
  }

  it('rejects Nesterov with dampening or without momentum, as PyTorch does', () => {
    const p = tensor([1, 2], [2]).keep().requiresGrad_();
    expect(() => new optim.SGD([p], { lr: 0.1, momentum: 0.9, dampening: 0.1, nesterov: true })).toThrow(/Nesterov/);
    expect(() => new optim.SGD([p], { lr: 0.1, nesterov: true })).toThrow(/Nesterov/);
    expect(() => new optim.SGD([p], { lr: -1 })).toThrow(/lr/);
    p.dispose();
  });
});

describe('Adam and AdamW against a float64 reference', () => {
  const cases: [string, 'Adam' | 'AdamW', AdamRefOptions][] = [
    ['Adam', 'Adam', { lr: 0.01, decoupled: false }],
    ['Adam with coupled weight decay', 'Adam', { lr: 0.01, weightDecay: 0.1, decoupled: false }],
    ['AdamW with decoupled weight decay', 'AdamW', { lr: 0.01, weightDecay: 0.1, decoupled: true }],
    ['Adam with other betas and eps', 'Adam', { lr: 0.003, betas: [0.5, 0.9], eps: 1e-3, decoupled: false }],
  ];
  for (const [name, kind, options] of cases) {
    it(`${name}: 5 steps, parameters and moments`, async () => {
      const g = new Generator(2);
      const ref = { p: randomArrays(SHAPES, g).map(f32) } satisfies Ref;
      const m = SHAPES.map((_, i) => new Float64Array(ref.p[i]!.length));
      const v = SHAPES.map((_, i) => new Float64Array(ref.p[i]!.length));
      const params = makeParams(ref.p, SHAPES);
      const { decoupled: _, ...rest } = options;
      const opt = kind === 'Adam' ? new optim.Adam(params, { ...rest, weightDecay: rest.weightDecay ?? 0 }) : new optim.AdamW(params, { ...rest, weightDecay: rest.weightDecay ?? 0 });
      for (let t = 1; t <= 5; t++) {
        const grads = randomArrays(SHAPES, g).map(f32);
        setGrads(params, grads);
        const before = ref.p.map((p) => p.slice());
        opt.step();
        ref.p.forEach((p, i) => adamReference(p, grads[i]!, m[i]!, v[i]!, t, options));
        await expectParams(params, ref.p);
        if (t === 1 && !options.weightDecay && !options.betas) {
          // Bias correction: the first update is lr·g/(|g| + ε/…) ≈ lr·sign(g) whatever |g| is.
          const moved = await params[2]!.toArray();
          for (let i = 0; i < moved.length; i++) expect(Math.abs(moved[i]! - before[2]![i]!)).toBeCloseTo(options.lr, 6);
        }
      }
      const state = await opt.stateDict();
      expect(state.kind).toBe(kind);
      for (let i = 0; i < params.length; i++) {
        const s = state.state.get(i)!;
        expect(s.step).toBe(5);
        expect(s.tensors.get('exp_avg')!).toBeAllClose(m[i]!, TOL);
        expect(s.tensors.get('exp_avg_sq')!).toBeAllClose(v[i]!, TOL);
      }
      opt.dispose();
      dispose(params);
    });
  }

  it('AdamW defaults to weight decay 0.01, Adam to 0', () => {
    const a = tensor([1], [1]).keep().requiresGrad_();
    const b = tensor([1], [1]).keep().requiresGrad_();
    const adam = new optim.Adam([a]);
    const adamw = new optim.AdamW([b]);
    expect(adam.paramGroups[0]!.weightDecay).toBe(0);
    expect(adamw.paramGroups[0]!.weightDecay).toBe(0.01);
    expect(adamw.paramGroups[0]!.betas).toEqual([0.9, 0.999]);
    adam.dispose();
    adamw.dispose();
    dispose([a, b]);
  });
});

describe('parameter groups, frozen parameters, zeroGrad', () => {
  it('each group uses its own lr and weight decay (backbone vs head)', async () => {
    const g = new Generator(3);
    const p = randomArrays(SHAPES, g).map(f32);
    const params = makeParams(p, SHAPES);
    const groups: SgdRefOptions[] = [
      { lr: 0.01, momentum: 0.9, weightDecay: 0 },
      { lr: 0.1, momentum: 0.9, weightDecay: 0.5 },
    ];
    const opt = new optim.SGD(
      [
        { params: params.slice(0, 2), lr: 0.01, weightDecay: 0 },
        { params: params.slice(2), lr: 0.1, weightDecay: 0.5 },
      ],
      { lr: 123, momentum: 0.9 },
    );
    expect(opt.paramGroups.map((gr) => gr.lr)).toEqual([0.01, 0.1]);
    let bufs: (Float64Array | null)[] = SHAPES.map(() => null);
    for (let step = 0; step < 3; step++) {
      const grads = randomArrays(SHAPES, g).map(f32);
      setGrads(params, grads);
      const before = backend().dispatches;
      opt.step();
      // One fused update per parameter group.
      expect(backend().dispatches - before).toBe(2);
      bufs = p.map((pi, i) => sgdReference(pi, grads[i]!, bufs[i]!, groups[i < 2 ? 0 : 1]!));
      await expectParams(params, p);
    }
    opt.dispose();
    dispose(params);
  });

  it('a parameter without a gradient is skipped and its state does not advance', async () => {
    const g = new Generator(4);
    const p = randomArrays(SHAPES, g).map(f32);
    const m = p.map((x) => new Float64Array(x.length));
    const v = p.map((x) => new Float64Array(x.length));
    const t = [0, 0, 0];
    const params = makeParams(p, SHAPES);
    const frozen = tensor(Float32Array.from([1, 2, 3]), [3]).keep();
    const opt = new optim.Adam(params, { lr: 0.01, weightDecay: 0.01 });
    const options: AdamRefOptions = { lr: 0.01, weightDecay: 0.01, decoupled: false };
    // Step 1: the middle parameter has no gradient (frozen); step 2: all do, at different ages.
    for (const present of [[true, false, true], [true, true, true], [false, true, true]]) {
      const grads = randomArrays(SHAPES, g).map(f32);
      setGrads(params, grads.map((gr, i) => (present[i] ? gr : null)));
      opt.step();
      p.forEach((pi, i) => {
        if (present[i]) adamReference(pi, grads[i]!, m[i]!, v[i]!, ++t[i]!, options);
      });
      await expectParams(params, p);
    }
    const state = await opt.stateDict();
    expect([0, 1, 2].map((i) => state.state.get(i)?.step)).toEqual([2, 2, 3]);
    expect(Array.from(await frozen.toArray())).toEqual([1, 2, 3]);
    opt.zeroGrad();
    expect(params.every((q) => q.grad === null)).toBe(true);
    opt.dispose();
    dispose([...params, frozen]);
  });

  it('rejects a parameter given twice or owned by another optimizer', () => {
    const a = tensor([1, 2], [2]).keep().requiresGrad_();
    expect(() => new optim.SGD([a, a], { lr: 0.1 })).toThrow(/more than once/);
    const first = new optim.SGD([a], { lr: 0.1 });
    expect(() => new optim.Adam([a])).toThrow(/another optimizer/);
    first.dispose();
    const second = new optim.Adam([a]);
    second.dispose();
    a.dispose();
  });
});

describe('clipGradNorm', () => {
  it('computes the global norm and scales the next update by maxNorm / (norm + 1e-6)', async () => {
    const g = new Generator(5);
    const p = randomArrays(SHAPES, g).map(f32);
    const params = makeParams(p, SHAPES);
    const opt = new optim.SGD(params, { lr: 0.1, momentum: 0.9 });
    let bufs: (Float64Array | null)[] = SHAPES.map(() => null);
    for (const maxNorm of [0.5, 1e6, 1.0]) {
      const grads = randomArrays(SHAPES, g, 2).map(f32);
      setGrads(params, grads);
      const norm = opt.clipGradNorm(maxNorm);
      const expected = Math.sqrt(grads.reduce((s, a) => s + a.reduce((t, x) => t + x * x, 0), 0));
      opt.step();
      expect(await norm.item()).toBeCloseTo(expected, 4);
      norm.dispose();
      const coef = Math.min(maxNorm / (expected + 1e-6), 1);
      bufs = p.map((pi, i) => sgdReference(pi, grads[i]!.map((x) => x * coef), bufs[i]!, { lr: 0.1, momentum: 0.9 }));
      await expectParams(params, p);
      // The .grad tensors themselves are untouched.
      expect(await params[1]!.grad!.toArray()).toBeAllClose(grads[1]!, { rtol: 0, atol: 0 });
    }
    opt.dispose();
    dispose(params);
  });

  it('counts a missing gradient as zero and is bitwise repeatable', async () => {
    const g = new Generator(6);
    const params = makeParams(randomArrays(SHAPES, g), SHAPES);
    const opt = new optim.Adam(params, { lr: 0 });
    const grads = randomArrays(SHAPES, g).map(f32);
    setGrads(params, grads);
    opt.step(); // a stale gradient now sits in the arena for parameter 1
    setGrads(params, [grads[0]!, null, grads[2]!]);
    const a = await opt.clipGradNorm(1).item();
    const b = await opt.clipGradNorm(1).item();
    const expected = Math.sqrt([grads[0]!, grads[2]!].reduce((s, x) => s + x.reduce((t, y) => t + y * y, 0), 0));
    expect(a).toBeCloseTo(expected, 5);
    expect(b).toBe(a);
    opt.dispose();
    dispose(params);
  });
});

describe('arenas split past the binding limit', () => {
  it('a group over two arenas: one dispatch each, the same updates, one global norm', async () => {
    const g = new Generator(8);
    const p = randomArrays(SHAPES, g).map(f32);
    const params = makeParams(p, SHAPES);
    // 512-byte arenas: [3] and [17] (64 padded floats each) share one, [5, 13] (128) has its own.
    const opt = new optim.SGD(params, { lr: 0.1, momentum: 0.9, weightDecay: 0.01, arenaBytes: 512 });
    let bufs: (Float64Array | null)[] = SHAPES.map(() => null);
    for (let step = 0; step < 3; step++) {
      const grads = randomArrays(SHAPES, g, 3).map(f32);
      setGrads(params, grads);
      const norm = opt.clipGradNorm(2);
      const before = backend().dispatches;
      opt.step();
      expect(backend().dispatches - before).toBe(2);
      const expected = Math.sqrt(grads.reduce((s, a) => s + a.reduce((t, x) => t + x * x, 0), 0));
      expect(await norm.item()).toBeCloseTo(expected, 4);
      norm.dispose();
      const coef = Math.min(2 / (expected + 1e-6), 1);
      bufs = p.map((pi, i) => sgdReference(pi, grads[i]!.map((x) => x * coef), bufs[i]!, { lr: 0.1, momentum: 0.9, weightDecay: 0.01 }));
      await expectParams(params, p);
    }
    // A parameter larger than the arena gets a chunk of its own (larger than a binding: updated in windows).
    const big = tensor(new Float32Array(200), [200]).keep();
    new optim.Adam([big], { arenaBytes: 512 }).dispose();
    big.dispose();
    opt.dispose();
    dispose(params);
  });
  it('clips a parameter larger than one binding in windows, to the same bits as unsplit', async () => {
    // 3·2048 + 100 elements (about 25 KiB) under an 8 KiB ceiling: four windows of the norm.
    const shapes = [[6244]];
    const g = new Generator(9);
    const p = randomArrays(shapes, g).map(f32);
    const grads = randomArrays(shapes, g).map(f32);
    const run = async (ceiling?: number): Promise<{ norm: number; params: Float32Array }> => {
      backend().setBindingLimit(ceiling);
      try {
        const params = makeParams(p, shapes);
        const opt = new optim.SGD(params, { lr: 0.1, momentum: 0.9 });
        setGrads(params, grads);
        const before = backend().windowed;
        const norm = opt.clipGradNorm(1);
        opt.step();
        if (ceiling !== undefined) expect(backend().windowed).toBeGreaterThan(before);
        const out = { norm: await norm.item(), params: (await params[0]!.toArray()) as Float32Array };
        norm.dispose();
        opt.dispose();
        dispose(params);
        return out;
      } finally {
        backend().setBindingLimit();
      }
    };
    const split = await run(8192);
    const whole = await run();
    expect(split.norm).toBe(whole.norm);
    expect(split.params).toEqual(whole.params);
    expect(split.norm).toBeCloseTo(Math.sqrt(grads[0]!.reduce((s, x) => s + x * x, 0)), 3);
  });
});

describe('steady state', () => {
  it('a training step is one dispatch for the update and creates no GPU buffers', async () => {
    const net = new TinyNet({ seed: 7 });
    const { x, labels } = xorBlobs(32, 7);
    const xs = tensor(x, [32, 2]).keep();
    const ys = tensor(labels, [32]).keep();
    const opt = new optim.SGD(net.parameters(), { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-4 });
    const step = (clip: boolean): void => {
      scope(() => {
        F.crossEntropy(net.forward(xs), ys).backward();
      });
      if (clip) opt.clipGradNorm(5).dispose();
      const before = backend().dispatches;
      opt.step();
      expect(backend().dispatches - before).toBe(1);
      opt.zeroGrad();
      backend().flush();
    };
    step(true);
    step(true);
    const warm = memory();
    for (let i = 0; i < 10; i++) step(i % 2 === 0);
    const after = memory();
    expect(after.buffersCreated).toBe(warm.buffersCreated);
    expect(after.bytesInUse).toBe(warm.bytesInUse);
    opt.dispose();
    net.dispose();
    dispose([xs, ys]);
  });
});

describe('a toy problem reaches a low loss with each optimizer', () => {
  const make: [string, (ps: readonly Tensor[]) => { step(): void; zeroGrad(): void; dispose(): void }][] = [
    ['SGD (Nesterov momentum, weight decay)', (ps) => new optim.SGD(ps, { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-4 })],
    ['Adam', (ps) => new optim.Adam(ps, { lr: 0.02 })],
    ['AdamW', (ps) => new optim.AdamW(ps, { lr: 0.02, weightDecay: 0.01 })],
  ];
  for (const [name, build] of make) {
    it(name, async () => {
      const net = new TinyNet({ seed: 11 });
      const { x, labels } = xorBlobs(64, 11);
      const xs = tensor(x, [64, 2]).keep();
      const ys = tensor(labels, [64]).keep();
      const opt = build(net.parameters());
      const lossAt = (): Tensor => scope(() => F.crossEntropy(net.forward(xs), ys));
      const first = lossAt();
      for (let i = 0; i < 150; i++) {
        scope(() => {
          F.crossEntropy(net.forward(xs), ys).backward();
        });
        opt.step();
        opt.zeroGrad();
      }
      const last = lossAt();
      const [l0, l1] = [await first.item(), await last.item()];
      expect(l0).toBeGreaterThan(0.3);
      expect(l1).toBeLessThan(0.05);
      opt.dispose();
      net.dispose();
      dispose([xs, ys, first, last]);
    });
  }
});
