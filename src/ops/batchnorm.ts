// Batch normalisation (kernels/batchnorm.wgsl), as torch.nn.functional.batch_norm. Two rows:
// `batchNorm` is training mode (batch statistics; the running statistics, when given in attrs,
// are updated in place by the statistics kernel and play no part in the output), and
// `batchNormEval` normalises with the running statistics, which are then ordinary inputs.
// With a BatchNormSync in attrs (--syncBN over several devices, as torch.nn.SyncBatchNorm) the
// training row's statistics and its backward's sums are those of the global batch.
import { Context } from '../context.js';
import { Tensor } from '../tensor.js';
import { groups1d, launch, overWindows, windowsFor, type Split } from '../gpu/launch.js';
import type { KernelRef, OpCase, OpDef, RefTensor } from './op.js';

export interface RunningStats {
  mean: Tensor;
  var: Tensor;
}

/**
 * The exchange between devices that makes batch statistics global (src/train/data-parallel.ts).
 * Each call hands over this device's partial sums and returns tensors that hold the combined
 * values by the time the work encoded after the call runs (the host writes them in between).
 */
export interface BatchNormSync {
  /** This device's per-channel mean and M2 = Σ(x − mean)² over `count` values → [mean (C), M2 (C), count] of the global batch. */
  statistics(mean: Tensor, m2: Tensor, count: number): Tensor;
  /** This device's Σdy·x̂ and Σdy over `count` values → the global batch's, scaled so that bn_backward_input's Σ/count on this device is the global mean. */
  gradients(sumDyXhat: Tensor, sumDy: Tensor, count: number): [Tensor, Tensor];
}

export interface BatchNormAttrs {
  momentum: number;
  eps: number;
  /** Updated in place (running ← (1 − momentum)·running + momentum·batch); omitted in tests. */
  running?: RunningStats;
  /** Statistics over every device's share of the batch (--syncBN). */
  sync?: BatchNormSync;
}

const activeSync = new Context<BatchNormSync | null>(null);

/** Runs `fn` with training batch norms exchanging their statistics through `sync` (null: none). */
export const withBatchNormSync = <T>(sync: BatchNormSync | null, fn: () => T): T => activeSync.run(sync, fn);

/** The exchange training batch norms use now (withBatchNormSync), if any. */
export const batchNormSync = (): BatchNormSync | null => activeSync.get();

export interface BatchNormEvalAttrs {
  eps: number;
}

const WG = 64;

/** (N, C, S) for (N, C), (N, C, L) or (N, C, H, W), or an Error naming the op and shapes. */
function layout(op: string, x: readonly number[], params: { name: string; shape: readonly number[] | undefined }[]): [number, number, number] {
  if (x.length < 2 || x.length > 4) throw new Error(`${op}: input [${x.join(', ')}] must be (N, C), (N, C, L) or (N, C, H, W)`);
  const [N, C] = x as [number, number];
  for (const p of params) {
    if (p.shape && (p.shape.length !== 1 || p.shape[0] !== C)) {
      throw new Error(`${op}: ${p.name} [${p.shape.join(', ')}] does not match the ${C} channels of input [${x.join(', ')}]`);
    }
  }
  return [N, C, x.slice(2).reduce((a, b) => a * b, 1)];
}

/** The largest run length in {16, 8, 4, 2, 1} dividing S: a run never leaves its channel. */
function runLength(S: number): number {
  for (const e of [16, 8, 4, 2, 1]) if (S % e === 0) return e;
  return 1;
}

/** The vec4 entry points and bindings when runs are whole vec4s, else the scalar ones. */
function variant(S: number): { suffix: '' | '4'; vec: (name: 'x' | 'y' | 'dy' | 'dx') => string } {
  return S % 4 === 0 ? { suffix: '4', vec: (name) => `${name}4` } : { suffix: '', vec: (name) => name };
}

interface Dims {
  N: number;
  C: number;
  S: number;
}

function uniforms(d: Dims, extra: Record<string, number>): Record<string, number> {
  return { N: d.N, C: d.C, S: d.S, hasWeight: 0, hasBias: 0, hasRunning: 0, training: 1, momentum: 0, eps: 0, images: d.N, ...extra };
}

/** Cuts an elementwise pass over (N, C, S) along N: E-element runs never leave an image. */
function perImage(d: Dims, E: number, bindings: string[]): Split {
  return { extent: d.N, bindings, uniforms: (w) => ({ images: w.count }), groups: (n) => groups1d((n * d.C * d.S) / E, WG) };
}

/** y = (x − mean)·invstd·weight + bias with per-channel mean and invstd. */
function normalize(x: Tensor, d: Dims, mean: Tensor, invstd: Tensor, weight: Tensor | undefined, bias: Tensor | undefined): Tensor {
  const y = Tensor.empty(x.shape);
  const E = runLength(d.S);
  const { suffix, vec } = variant(d.S);
  const params = uniforms(d, { hasWeight: weight ? 1 : 0, hasBias: bias ? 1 : 0 });
  const bindings = { [vec('y')]: y, [vec('x')]: x, meanIn: mean, invstdIn: invstd, weight: weight ?? mean, bias: bias ?? mean };
  launch('batchnorm', `bn_normalize${suffix}`, bindings, params, perImage(d, E, [vec('y'), vec('x')]), { WG, E });
  return y;
}

/**
 * Batch statistics (mean, invstd), updating the running statistics in place when given; with
 * `partial`, (mean, M2) for combining with other devices' instead (invstd then holds M2).
 */
export function batchStatistics(x: Tensor, d: Dims, eps: number, momentum: number, running?: RunningStats, partial = false): { mean: Tensor; invstd: Tensor } {
  if (d.N * d.S < 2 && !partial) {
    throw new Error(`batchNorm: expected more than 1 value per channel when training, got input [${x.shape.join(', ')}]`);
  }
  const mean = Tensor.empty([d.C]);
  const invstd = Tensor.empty([d.C]);
  const params = uniforms(d, { hasRunning: running ? 1 : 0, momentum, eps, partial: partial ? 1 : 0 });
  const runMean = running?.mean ?? mean;
  const runVar = running?.var ?? invstd;
  // Without running statistics the kernel never touches runMean/runVar; they are bound to
  // throwaway tensors because one buffer may not be bound twice for writing.
  const spare = running ? null : [Tensor.empty([d.C]), Tensor.empty([d.C])];
  const { suffix, vec } = variant(d.S);
  const stats = { mean, invstd, runMean: spare?.[0] ?? runMean, runVar: spare?.[1] ?? runVar };
  const overrides = { WG, E: runLength(d.S) };
  if (windowsFor([x], []).length === 1) {
    launch('batchnorm', `bn_stats${suffix}`, { [vec('x')]: x, ...stats }, params, [d.C], overrides);
  } else {
    // x is bound in windows along N: each window's (mean, M2), folded in window order.
    let merged = 0;
    overWindows([x], [], ([part]) => {
      const window = part!.shape[0]! * d.S;
      const [partMean, partM2, junkMean, junkVar] = [0, 1, 2, 3].map(() => Tensor.empty([d.C]));
      const partStats = { mean: partMean!, invstd: partM2!, runMean: junkMean!, runVar: junkVar! };
      launch('batchnorm', `bn_stats${suffix}`, { [vec('x')]: part!, ...partStats }, { ...params, N: part!.shape[0]!, partial: 1 }, [d.C], overrides);
      const finish = merged + window === d.N * d.S && !partial ? 1 : 0;
      launch('batchnorm', 'bn_stats_merge', { ...stats, meanIn: partMean!, invstdIn: partM2! }, { ...params, merged, window, finish }, [Math.ceil(d.C / WG)], { WG });
      merged += window;
      [partMean, partM2, junkMean, junkVar].forEach((t) => t!.dispose());
      return [];
    });
  }
  spare?.forEach((t) => t.dispose());
  return { mean, invstd };
}

/** Batch statistics of the global batch (--syncBN): this device's partial ones, exchanged, then finished as bn_stats does. */
function syncedStatistics(x: Tensor, d: Dims, { eps, momentum, running, sync }: BatchNormAttrs & { sync: BatchNormSync }): { mean: Tensor; invstd: Tensor } {
  const local = batchStatistics(x, d, eps, momentum, undefined, true);
  const global = sync.statistics(local.mean, local.invstd, d.N * d.S);
  local.mean.dispose();
  local.invstd.dispose();
  const mean = Tensor.empty([d.C]);
  const invstd = Tensor.empty([d.C]);
  const spare = running ? null : [Tensor.empty([d.C]), Tensor.empty([d.C])];
  const stats = { syncIn: global, mean, invstd, runMean: running?.mean ?? spare![0]!, runVar: running?.var ?? spare![1]! };
  launch('batchnorm', 'bn_stats_sync', stats, uniforms(d, { hasRunning: running ? 1 : 0, momentum, eps }), [Math.ceil(d.C / WG)], { WG });
  for (const t of [global, ...(spare ?? [])]) t.dispose();
  return { mean, invstd };
}

interface BackwardResult {
  dx: Tensor;
  dweight: Tensor;
  dbias: Tensor;
}

/**
 * dx, Σdy·x̂ (the weight's gradient) and Σdy (the bias's) for training or eval mode. Under
 * --syncBN dx takes the global batch's sums; the weight's and bias's gradients stay this
 * device's, summed over the devices with the other parameters' gradients.
 */
function backward(x: Tensor, dy: Tensor, d: Dims, mean: Tensor, invstd: Tensor, weight: Tensor | undefined, training: boolean, sync?: BatchNormSync): BackwardResult {
  const E = runLength(d.S);
  const params = uniforms(d, { hasWeight: weight ? 1 : 0, training: training ? 1 : 0 });
  const { suffix, vec } = variant(d.S);
  // Σdy and Σdy·x̂ are sums over N: windows of the batch add up in window order.
  const [dweight, dbias] = overWindows([x, dy], ['sum', 'sum'], ([xw, dyw]) => {
    const sums = [Tensor.empty([d.C]), Tensor.empty([d.C])] as const;
    const reduce = { [vec('x')]: xw!, [vec('dy')]: dyw!, meanIn: mean, invstdIn: invstd, dweight: sums[0], dbias: sums[1] };
    launch('batchnorm', `bn_backward_reduce${suffix}`, reduce, { ...params, N: xw!.shape[0]! }, [d.C], { WG, E });
    return [...sums];
  }) as [Tensor, Tensor];
  const dx = Tensor.empty(x.shape);
  const global = sync ? sync.gradients(dweight, dbias, d.N * d.S) : null;
  const bindings = { [vec('x')]: x, [vec('dy')]: dy, [vec('dx')]: dx, meanIn: mean, invstdIn: invstd, weight: weight ?? mean, sumDyXhat: global?.[0] ?? dweight, sumDy: global?.[1] ?? dbias };
  launch('batchnorm', `bn_backward_input${suffix}`, bindings, params, perImage(d, E, [vec('x'), vec('dy'), vec('dx')]), { WG, E });
  global?.forEach((t) => t.dispose());
  return { dx, dweight, dbias };
}

// ---- float64 references -------------------------------------------------------------------

function refNormalize(x: RefTensor, mean: Float64Array, invstd: Float64Array, w?: RefTensor, b?: RefTensor): RefTensor {
  const [, C, S] = layout('batchNorm', x.shape, []);
  const data = x.data.map((v, i) => {
    const c = Math.floor(i / S) % C;
    return (v - mean[c]!) * invstd[c]! * (w ? w.data[c]! : 1) + (b ? b.data[c]! : 0);
  });
  return { shape: [...x.shape], data };
}

/** Per-channel batch mean and biased variance, in float64. */
export function refBatchStatistics(x: RefTensor): { mean: Float64Array; variance: Float64Array; count: number } {
  const [N, C, S] = layout('batchNorm', x.shape, []);
  const mean = new Float64Array(C);
  const variance = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    let total = 0;
    for (let n = 0; n < N; n++) for (let s = 0; s < S; s++) total += x.data[(n * C + c) * S + s]!;
    mean[c] = total / (N * S);
    let squares = 0;
    for (let n = 0; n < N; n++) for (let s = 0; s < S; s++) squares += (x.data[(n * C + c) * S + s]! - mean[c]!) ** 2;
    variance[c] = squares / (N * S);
  }
  return { mean, variance, count: N * S };
}

// ---- op rows --------------------------------------------------------------------------------

const TRAIN_CASES: OpCase<BatchNormAttrs>[] = [
  // BatchNorm1d on (N, C): S = 1
  { shapes: [[5, 3], [3], [3]], attrs: { momentum: 0.1, eps: 1e-5 } },
  // BatchNorm1d on (N, C, L), affine off
  { shapes: [[3, 2, 7]], attrs: { momentum: 0.1, eps: 1e-5 } },
  // BatchNorm2d, batch 1, odd spatial size, weight without bias
  { shapes: [[1, 3, 5, 3], [3]], attrs: { momentum: 0.1, eps: 1e-5 } },
  // BatchNorm2d with 16-element runs, more elements per channel than lanes
  { shapes: [[4, 5, 8, 4], [5], [5]], attrs: { momentum: 0.1, eps: 1e-3 } },
];

const EVAL_CASES: OpCase<BatchNormEvalAttrs>[] = [
  { shapes: [[4, 3], [3], [3], [3], [3]], attrs: { eps: 1e-5 } },
  { shapes: [[2, 3, 5, 3], [3], [3]], attrs: { eps: 1e-5 } },
  { shapes: [[2, 2, 4, 4], [2], [2], [2]], attrs: { eps: 1e-3 } },
];

/** An entry point and its vec4 twin (see variant). */
const variants = (entry: string): KernelRef[] => [`batchnorm.${entry}`, `batchnorm.${entry}4`];

export const batchNormOps = {
  batchNorm: {
    kernels: [...variants('bn_stats'), 'batchnorm.bn_stats_merge', 'batchnorm.bn_stats_sync', ...variants('bn_normalize'), ...variants('bn_backward_reduce'), ...variants('bn_backward_input')],
    saves: ['in0', 'extra0', 'extra1', 'extra2'],
    forward([x, weight, bias], attrs) {
      const [N, C, S] = layout('batchNorm', x!.shape, [
        { name: 'weight', shape: weight?.shape },
        { name: 'bias', shape: bias?.shape },
        { name: 'running_mean', shape: attrs.running?.mean.shape },
        { name: 'running_var', shape: attrs.running?.var.shape },
      ]);
      const d = { N, C, S };
      const { mean, invstd } = attrs.sync ? syncedStatistics(x!, d, { ...attrs, sync: attrs.sync }) : batchStatistics(x!, d, attrs.eps, attrs.momentum, attrs.running);
      const out = normalize(x!, d, mean, invstd, weight, bias);
      // The weight travels as a view (disposing it after recording drops only the view).
      return { out, extras: [mean, invstd, weight ? weight.alias() : mean.alias()] };
    },
    backward({ grad, saved, shapes, needs, attrs }) {
      const [x, mean, invstd, weightView] = saved as [Tensor, Tensor, Tensor, Tensor];
      const [N, C, S] = layout('batchNorm', shapes[0]!, []);
      const weight = shapes.length > 1 ? weightView : undefined;
      const { dx, dweight, dbias } = backward(x, grad, { N, C, S }, mean, invstd, weight, true, attrs.sync);
      const result = [needs[0] ? dx : null, needs[1] ? dweight : null, needs[2] ? dbias : null];
      if (!needs[0]) dx.dispose();
      if (!needs[1]) dweight.dispose();
      if (!needs[2]) dbias.dispose();
      return result;
    },
    reference([x, w, b], { eps }) {
      const { mean, variance } = refBatchStatistics(x!);
      return refNormalize(x!, mean, variance.map((v) => 1 / Math.sqrt(v + eps)), w, b);
    },
    cases: TRAIN_CASES,
    // Means and variances of ≤ 128 float32 values per channel, then one multiply-add.
    tolerance: { rtol: 1e-4, atol: 1e-4 },
    // Batch statistics make every output depend on every input of its channel.
    gradTolerance: { rtol: 2e-3, atol: 1e-3 },
  } satisfies OpDef<BatchNormAttrs>,
  batchNormEval: {
    kernels: ['batchnorm.bn_eval_stats', ...variants('bn_normalize'), ...variants('bn_backward_reduce'), ...variants('bn_backward_input'), 'batchnorm.bn_running_grads'],
    saves: ['in0', 'extra0', 'extra1', 'extra2'],
    inputs: ['real', 'real', 'positive', 'real', 'real'],
    forward([x, runningMean, runningVar, weight, bias], attrs) {
      const [N, C, S] = layout('batchNorm', x!.shape, [
        { name: 'running_mean', shape: runningMean!.shape },
        { name: 'running_var', shape: runningVar!.shape },
        { name: 'weight', shape: weight?.shape },
        { name: 'bias', shape: bias?.shape },
      ]);
      const mean = Tensor.empty([C]);
      const invstd = Tensor.empty([C]);
      const params = uniforms({ N, C, S }, { eps: attrs.eps });
      launch('batchnorm', 'bn_eval_stats', { mean, invstd, runMean: runningMean!, runVar: runningVar! }, params, [Math.ceil(C / WG)], { WG });
      const out = normalize(x!, { N, C, S }, mean, invstd, weight, bias);
      return { out, extras: [mean, invstd, weight ? weight.alias() : mean.alias()] };
    },
    backward({ grad, saved, shapes, needs }) {
      const [x, mean, invstd, weightView] = saved as [Tensor, Tensor, Tensor, Tensor];
      const [N, C, S] = layout('batchNorm', shapes[0]!, []);
      const weight = shapes.length > 3 ? weightView : undefined;
      const d = { N, C, S };
      const { dx, dweight, dbias } = backward(x, grad, d, mean, invstd, weight, false);
      let dmean: Tensor | null = null;
      let dvar: Tensor | null = null;
      if (needs[1] || needs[2]) {
        dmean = Tensor.empty([C]);
        dvar = Tensor.empty([C]);
        const params = uniforms(d, { hasWeight: weight ? 1 : 0 });
        launch('batchnorm', 'bn_running_grads', { dmean, dvar, invstdIn: invstd, weight: weight ?? invstd, sumDyXhat: dweight, sumDy: dbias }, params, [Math.ceil(C / WG)], { WG });
      }
      const result = [needs[0] ? dx : null, needs[1] ? dmean : null, needs[2] ? dvar : null, needs[3] ? dweight : null, needs[4] ? dbias : null];
      for (const t of [dx, dmean, dvar, dweight, dbias]) if (t && !result.includes(t)) t.dispose();
      return result;
    },
    reference([x, rm, rv, w, b], { eps }) {
      return refNormalize(x!, rm!.data, rv!.data.map((v) => 1 / Math.sqrt(v + eps)), w, b);
    },
    cases: EVAL_CASES,
    tolerance: { rtol: 1e-5, atol: 1e-5 },
    gradTolerance: { rtol: 1e-3, atol: 1e-4 },
  } satisfies OpDef<BatchNormEvalAttrs>,
};
