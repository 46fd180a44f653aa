// A VAE's latent code (kernels/latent.wgsl): the reparameterisation z = μ + σ·ε with seeded
// counter-based noise, the KL divergence of N(μ, σ²) from N(0, 1) (the PyTorch VAE example's
// KLD), and TripletMarginLoss (p = 2, swap = False, mean reduction) as PyTorch defines them.
import { Tensor } from '../tensor.js';
import { groups1d, launch, type Split } from '../gpu/launch.js';
import { mix } from './dropout.js';
import type { OpDef, RefTensor } from './op.js';
import { SUM_KERNELS, sumAxis } from './reduce.js';

const WG = 64;

export interface ReparameterizeAttrs {
  /** Two 32-bit words that fix ε; the functional API draws them from a Generator. */
  seed: [number, number];
}
export interface KlAttrs {
  /** 'sum' over the batch as the PyTorch VAE example, or 'mean': the sum per sample averaged over the batch. */
  reduction: 'sum' | 'mean';
}
export interface TripletAttrs {
  margin: number;
  eps: number;
}

const NO_PARAMS = { rows: 0, dim: 1, seed0: 0, seed1: 0, base: 0, margin: 0, eps: 0, scale: 1 };

/** A launch cut along rows: `perRow` invocations each; bindings not named (dout, a scalar) are bound whole. */
function byRows(rows: number, perRow: number, bindings: string[], base = false): Split {
  return { extent: rows, bindings, uniforms: (w) => ({ rows: w.count, ...(base ? { base: w.start } : {}) }), groups: (n) => groups1d(n * perRow, WG) };
}

function sameShapes(op: string, tensors: readonly Tensor[], rank2: boolean): [number, number] {
  const shape = tensors[0]!.shape;
  if (tensors.some((t) => t.shape.join() !== shape.join())) throw new Error(`${op}: inputs must share one shape, got ${tensors.map((t) => `[${t.shape.join(', ')}]`).join(', ')}`);
  if (rank2 && shape.length !== 2) throw new Error(`${op}: inputs must be (N, D), got [${shape.join(', ')}]`);
  return rank2 ? [shape[0]!, shape[1]!] : [tensors[0]!.size, 1];
}

/** The standard normal ε of element i under a seed, in float64 (kernels/latent.wgsl's noise()). */
export function latentNoise(i: number, [seed0, seed1]: readonly [number, number]): number {
  const hash = (k: number) => mix(mix((k ^ seed0) >>> 0) ^ seed1);
  const k = (2 * i) >>> 0;
  const u1 = ((hash(k) >>> 8) + 0.5) * 2 ** -24;
  const u2 = (hash((k + 1) >>> 0) >>> 8) * 2 ** -24;
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

const scalar = (v: number): RefTensor => ({ shape: [], data: Float64Array.of(v) });
const seedParams = (seed: readonly [number, number]) => ({ ...NO_PARAMS, seed0: seed[0] >>> 0, seed1: seed[1] >>> 0 });

export const latentOps = {
  reparameterize: {
    kernels: ['latent.reparameterize_forward', 'latent.reparameterize_backward'],
    saves: ['in1'],
    forward([mu, logvar], { seed }) {
      const [n] = sameShapes('reparameterize', [mu!, logvar!], false);
      const out = Tensor.empty(mu!.shape);
      launch('latent', 'reparameterize_forward', { out, a: mu!, b: logvar! }, { ...seedParams(seed), rows: n }, byRows(n, 1, ['out', 'a', 'b'], true));
      return { out };
    },
    backward({ grad, saved, attrs }) {
      const [logvar] = saved;
      const dmu = Tensor.empty(grad.shape);
      const dlogvar = Tensor.empty(grad.shape);
      launch('latent', 'reparameterize_backward', { da: dmu, db: dlogvar, b: logvar!, dout: grad }, { ...seedParams(attrs.seed), rows: grad.size }, byRows(grad.size, 1, ['da', 'db', 'b', 'dout'], true));
      return [dmu, dlogvar];
    },
    reference([mu, logvar], { seed }) {
      return { shape: [...mu!.shape], data: mu!.data.map((m, i) => m + Math.exp(0.5 * logvar!.data[i]!) * latentNoise(i, seed)) };
    },
    cases: [
      { shapes: [[1], [1]], attrs: { seed: [1, 2] } },
      { shapes: [[3, 17], [3, 17]], attrs: { seed: [7, 0] } },
      { shapes: [[2, 65], [2, 65]], attrs: { seed: [0xdeadbeef, 12345] } },
    ],
    // float32 log, sqrt, cos and exp in the noise: a few ulp each, |ε| up to ~5.
    tolerance: { rtol: 1e-4, atol: 1e-5 },
    gradTolerance: { rtol: 1e-3, atol: 1e-4 },
  } satisfies OpDef<ReparameterizeAttrs>,
  gaussianKL: {
    kernels: ['latent.kl_forward', 'latent.kl_backward', ...SUM_KERNELS],
    saves: ['in0', 'in1'],
    forward([mu, logvar], { reduction }) {
      const [rows, dim] = sameShapes('gaussianKL', [mu!, logvar!], true);
      const terms = Tensor.empty([rows]);
      launch('latent', 'kl_forward', { out: terms, a: mu!, b: logvar! }, { ...NO_PARAMS, rows, dim }, byRows(rows, 1, ['out', 'a', 'b']));
      const out = sumAxis(terms, 0, reduction === 'mean' ? 1 / rows : 1);
      terms.dispose();
      return { out };
    },
    backward({ grad, saved, attrs }) {
      const [mu, logvar] = saved;
      const [rows, dim] = [mu!.shape[0]!, mu!.shape[1]!];
      const dmu = Tensor.empty(mu!.shape);
      const dlogvar = Tensor.empty(mu!.shape);
      const params = { ...NO_PARAMS, rows, dim, scale: attrs.reduction === 'mean' ? 1 / rows : 1 };
      launch('latent', 'kl_backward', { da: dmu, db: dlogvar, a: mu!, b: logvar!, dout: grad }, params, byRows(rows, dim, ['da', 'db', 'a', 'b']));
      return [dmu, dlogvar];
    },
    reference([mu, logvar], { reduction }) {
      let total = 0;
      for (let i = 0; i < mu!.data.length; i++) {
        const m = mu!.data[i]!;
        const lv = logvar!.data[i]!;
        total += 1 + lv - m * m - Math.exp(lv);
      }
      return scalar((-0.5 * total) / (reduction === 'mean' ? mu!.shape[0]! : 1));
    },
    cases: [
      { shapes: [[1, 1], [1, 1]], attrs: { reduction: 'sum' } },
      { shapes: [[3, 17], [3, 17]], attrs: { reduction: 'mean' } },
      { shapes: [[5, 65], [5, 65]], attrs: { reduction: 'sum' } },
    ],
    tolerance: { rtol: 1e-5, atol: 1e-5 },
    gradTolerance: { rtol: 1e-3, atol: 1e-4 },
  } satisfies OpDef<KlAttrs>,
  tripletMarginLoss: {
    kernels: ['latent.triplet_forward', 'latent.triplet_backward', ...SUM_KERNELS],
    saves: ['in0', 'in1', 'in2', 'extra0'],
    forward([anchor, positive, negative], { margin, eps }) {
      const [rows, dim] = sameShapes('tripletMarginLoss', [anchor!, positive!, negative!], true);
      const terms = Tensor.empty([rows]);
      const stats = Tensor.empty([rows, 2]);
      launch('latent', 'triplet_forward', { out: terms, stats, a: anchor!, b: positive!, c: negative! }, { ...NO_PARAMS, rows, dim, margin, eps }, byRows(rows, 1, ['out', 'stats', 'a', 'b', 'c']));
      const out = sumAxis(terms, 0, 1 / rows);
      terms.dispose();
      return { out, extras: [stats] };
    },
    backward({ grad, saved, attrs }) {
      const [anchor, positive, negative, stats] = saved;
      const [rows, dim] = [anchor!.shape[0]!, anchor!.shape[1]!];
      const [da, db, dc] = [0, 1, 2].map(() => Tensor.empty(anchor!.shape));
      const params = { ...NO_PARAMS, rows, dim, margin: attrs.margin, eps: attrs.eps, scale: 1 / rows };
      const bindings = { da: da!, db: db!, dc: dc!, a: anchor!, b: positive!, c: negative!, stats_in: stats!, dout: grad };
      launch('latent', 'triplet_backward', bindings, params, byRows(rows, dim, ['da', 'db', 'dc', 'a', 'b', 'c', 'stats_in']));
      return [da!, db!, dc!];
    },
    reference([a, p, n], { margin, eps }) {
      const [rows, dim] = [a!.shape[0]!, a!.shape[1]!];
      const dist = (y: RefTensor, r: number) => {
        let s = 0;
        for (let d = 0; d < dim; d++) s += (a!.data[r * dim + d]! - y.data[r * dim + d]! + eps) ** 2;
        return Math.sqrt(s);
      };
      let total = 0;
      for (let r = 0; r < rows; r++) total += Math.max(dist(p!, r) - dist(n!, r) + margin, 0);
      return scalar(total / rows);
    },
    cases: [
      { shapes: [[1, 1], [1, 1], [1, 1]], attrs: { margin: 5, eps: 1e-6 } },
      { shapes: [[3, 17], [3, 17], [3, 17]], attrs: { margin: 1, eps: 1e-6 } },
      { shapes: [[7, 65], [7, 65], [7, 65]], attrs: { margin: 2, eps: 1e-6 } },
    ],
    tolerance: { rtol: 1e-5, atol: 1e-5 },
    // Random rows whose hinge sits within the finite-difference step of 0 are vanishingly rare.
    gradTolerance: { rtol: 1e-3, atol: 1e-4 },
  } satisfies OpDef<TripletAttrs>,
};
