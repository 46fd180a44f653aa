// The functional API, as torch.nn.functional and torch.* functions: each call applies one row
// of the op table (recording it on the tape when gradients are needed).
import { noGrad } from './autograd/tape.js';
import { batchNormSync } from './ops/batchnorm.js';
import { filled } from './ops/layout.js';
import { applyOp, type InputKind } from './ops/op.js';
import { normalizeAxis } from './ops/reference.js';
import { OPS, type AttrsOf, type OpName } from './ops/table.js';
import { defaultGenerator, type Generator } from './random.js';
import { numel, type Tensor } from './tensor.js';

function op<K extends OpName>(name: K, inputs: Tensor[], attrs: AttrsOf<K>): Tensor {
  const kinds = (OPS[name] as { inputs?: readonly InputKind[] }).inputs;
  inputs.forEach((t, i) => {
    if (t.isDisposed) throw new Error(`${name}: input of shape [${t.shape.join(', ')}] was already disposed`);
    // Label inputs are int32, all others float32. Mixed int/float arithmetic is refused rather
    // than promoted: PyTorch would make int32 + 1.5 a float32 tensor, and reading int32 bits as
    // floats would be silently wrong.
    const dtype = typeof kinds?.[i] === 'object' ? 'int32' : 'float32';
    if (t.dtype !== dtype) {
      throw new Error(`${name}: input ${i} is ${t.dtype} [${t.shape.join(', ')}], it must be ${dtype}${dtype === 'float32' ? ' (int32 tensors hold labels and indices; make a float32 tensor of the values for arithmetic)' : ''}`);
    }
  });
  return applyOp(name, OPS[name] as never, inputs, attrs);
}

function affine(x: Tensor, scale: number, shift: number): Tensor {
  return op('affine', [x], { scale, shift });
}

export function add(a: Tensor, b: Tensor | number): Tensor {
  return typeof b === 'number' ? affine(a, 1, b) : op('add', [a, b], {});
}
export function sub(a: Tensor, b: Tensor | number): Tensor {
  return typeof b === 'number' ? affine(a, 1, -b) : op('sub', [a, b], {});
}
export function mul(a: Tensor, b: Tensor | number): Tensor {
  return typeof b === 'number' ? affine(a, b, 0) : op('mul', [a, b], {});
}
export function div(a: Tensor, b: Tensor | number): Tensor {
  return typeof b === 'number' ? affine(a, 1 / b, 0) : op('div', [a, b], {});
}
export const neg = (x: Tensor): Tensor => op('neg', [x], {});
export const exp = (x: Tensor): Tensor => op('exp', [x], {});
export const log = (x: Tensor): Tensor => op('log', [x], {});
export const sqrt = (x: Tensor): Tensor => op('sqrt', [x], {});
export const pow = (x: Tensor, exponent: number): Tensor => op('pow', [x], { exponent });
export const relu = (x: Tensor): Tensor => op('relu', [x], {});
export const leakyRelu = (x: Tensor, negativeSlope = 0.01): Tensor => op('leakyRelu', [x], { slope: negativeSlope });
export const sigmoid = (x: Tensor): Tensor => op('sigmoid', [x], {});
export const tanh = (x: Tensor): Tensor => op('tanh', [x], {});

/** Reshape as a view: no copy; the gradient is reshaped back. One dimension may be -1. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const known = shape.filter((d) => d !== -1).reduce((p, d) => p * d, 1);
  const free = shape.filter((d) => d === -1).length;
  const dims = shape.map((d) => (d === -1 ? x.size / known : d));
  if (free > 1 || dims.some((d) => !Number.isInteger(d) || d < 0) || numel(dims) !== x.size) {
    throw new Error(`reshape: cannot view a tensor of shape [${x.shape.join(', ')}] as [${shape.join(', ')}]`);
  }
  // A view of any dtype (labels too), so not through op()'s float32 check.
  if (x.isDisposed) throw new Error(`reshape: input of shape [${x.shape.join(', ')}] was already disposed`);
  return applyOp('reshape', OPS.reshape, [x], { shape: dims });
}

/** Flattens dimensions startDim… into one, as torch.flatten. */
export function flatten(x: Tensor, startDim = 1): Tensor {
  const start = normalizeAxis(startDim, x.ndim, 'flatten');
  return reshape(x, [...x.shape.slice(0, start), x.shape.slice(start).reduce((p, d) => p * d, 1)]);
}

/** The last two dimensions swapped, materialised. */
export const transpose = (x: Tensor): Tensor => op('transpose', [x], {});

/** A copy of the data that is not part of any graph. */
export function copy(x: Tensor): Tensor {
  return noGrad(() => affine(x, 1, 0));
}

type Reduction = 'sum' | 'mean' | 'max';

function reduce(name: Reduction, x: Tensor, dim: number | readonly number[] | undefined, keepdim: boolean): Tensor {
  const axes = dim === undefined ? x.shape.map((_, d) => d) : (typeof dim === 'number' ? [dim] : [...dim]).map((d) => normalizeAxis(d, x.ndim, name));
  const sorted = [...new Set(axes)].sort((p, q) => q - p);
  if (dim === undefined && x.ndim !== 1) {
    // A full reduction is one pass over the flattened tensor, not one per dimension.
    const flat = reshape(x, [x.size]);
    const r = op(name, [flat], { axis: 0 });
    return keepdim ? reshape(r, x.shape.map(() => 1)) : r;
  }
  let t = x;
  for (const axis of sorted) t = op(name, [t], { axis });
  return keepdim ? reshape(t, x.shape.map((d, i) => (sorted.includes(i) ? 1 : d))) : t;
}

/** Σ over dims (all when omitted), as torch.sum. */
export const sum = (x: Tensor, dim?: number | readonly number[], keepdim = false): Tensor => reduce('sum', x, dim, keepdim);
/** Mean over dims (all when omitted), as torch.mean. */
export const mean = (x: Tensor, dim?: number | readonly number[], keepdim = false): Tensor => reduce('mean', x, dim, keepdim);
/** Maximum over dims (all when omitted), as torch.amax; the gradient goes to the first maximum. */
export const max = (x: Tensor, dim?: number | readonly number[], keepdim = false): Tensor => reduce('max', x, dim, keepdim);

/** Matrix product with batch broadcasting, as torch.matmul (operands of 2 or more dims). */
export function matmul(a: Tensor, b: Tensor, options: { transposeA?: boolean; transposeB?: boolean } = {}): Tensor {
  const attrs = { transposeA: options.transposeA ?? false, transposeB: options.transposeB ?? false };
  if (b.ndim === 2 && a.ndim > 2 && !attrs.transposeA) {
    // (…, M, K)·(K, N) is one (…·M, K)·(K, N) product: no broadcast stride, and a cheaper backward.
    const flat = reshape(a, [a.size / a.shape[a.ndim - 1]!, a.shape[a.ndim - 1]!]);
    const out = op('matmul', [flat, b], attrs);
    return reshape(out, [...a.shape.slice(0, -1), out.shape[1]!]);
  }
  return op('matmul', [a, b], attrs);
}

/** y = x·Wᵀ + b with W (out_features, in_features), as torch.nn.functional.linear. */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
  const y = matmul(x, weight, { transposeB: true });
  return bias ? add(y, bias) : y;
}

export const softmax = (x: Tensor, dim = -1): Tensor => op('softmax', [x], { axis: normalizeAxis(dim, x.ndim, 'softmax') });
export const logSoftmax = (x: Tensor, dim = -1): Tensor => op('logSoftmax', [x], { axis: normalizeAxis(dim, x.ndim, 'logSoftmax') });

/** Mean softmax cross-entropy of logits (N, C) against int32 labels (N), fused. */
export const crossEntropy = (logits: Tensor, labels: Tensor): Tensor => op('crossEntropy', [logits, labels], {});
/** Mean binary cross-entropy of probabilities against targets in [0, 1]. */
export const binaryCrossEntropy = (p: Tensor, target: Tensor): Tensor => op('binaryCrossEntropy', [p, target], {});
/** Mean binary cross-entropy of logits, computed stably (no sigmoid then log). */
export const binaryCrossEntropyWithLogits = (x: Tensor, target: Tensor): Tensor => op('binaryCrossEntropyWithLogits', [x, target], {});
/** Mean squared error, as torch.nn.functional.mse_loss (mean reduction). */
export const mseLoss = (x: Tensor, target: Tensor): Tensor => op('mseLoss', [x, target], {});

// ---- a VAE's latent code (src/ops/latent.ts) ----

/**
 * z = μ + exp(½·log σ²)·ε with ε ~ N(0, 1) elementwise, the VAE reparameterisation (the PyTorch
 * VAE example's reparameterize); ε's seed comes from the generator, so a seeded run repeats it.
 */
export function reparameterize(mu: Tensor, logvar: Tensor, generator: Generator = defaultGenerator): Tensor {
  return op('reparameterize', [mu, logvar], { seed: [generator.nextUint32(), generator.nextUint32()] });
}
/**
 * KL(N(μ, σ²) ‖ N(0, 1)) = −½ Σ (1 + log σ² − μ² − σ²) of (N, D) codes, as the PyTorch VAE
 * example's KLD: summed over everything ('sum', the example's), or summed per sample and averaged over the batch ('mean').
 */
export const gaussianKL = (mu: Tensor, logvar: Tensor, reduction: 'sum' | 'mean' = 'mean'): Tensor => op('gaussianKL', [mu, logvar], { reduction });
/** torch.nn.functional.triplet_margin_loss with p = 2, swap = False and mean reduction, on (N, D) rows. */
export const tripletMarginLoss = (anchor: Tensor, positive: Tensor, negative: Tensor, margin = 1, eps = 1e-6): Tensor =>
  op('tripletMarginLoss', [anchor, positive, negative], { margin, eps });

/** Fraction of rows whose label is among the k highest logits (a scalar tensor; no gradient). */
export const topkAccuracy = (logits: Tensor, labels: Tensor, k = 1): Tensor => op('topkAccuracy', [logits, labels], { k });

// ---- convolutional layers (src/ops/conv.ts, batchnorm.ts, pool.ts, dropout.ts, concat.ts) ----

/** An int or an (H, W) pair, as PyTorch's _pair arguments. */
export type Pair = number | readonly [number, number];
const pair = (v: Pair): [number, number] => (typeof v === 'number' ? [v, v] : [v[0], v[1]]);

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
}

/** 2-D convolution of x (N, C, H, W) with weight (out, C/groups, kH, kW), as torch.nn.functional.conv2d. */
export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, options: Conv2dOptions = {}): Tensor {
  const attrs = { stride: pair(options.stride ?? 1), padding: pair(options.padding ?? 0), dilation: pair(options.dilation ?? 1), groups: options.groups ?? 1 };
  return op('conv2d', bias ? [x, weight, bias] : [x, weight], attrs);
}

export interface ConvTranspose2dOptions extends Conv2dOptions {
  outputPadding?: Pair;
}

/** Transposed convolution with weight (in, out/groups, kH, kW), as torch.nn.functional.conv_transpose2d. */
export function convTranspose2d(x: Tensor, weight: Tensor, bias?: Tensor | null, options: ConvTranspose2dOptions = {}): Tensor {
  const attrs = {
    stride: pair(options.stride ?? 1),
    padding: pair(options.padding ?? 0),
    dilation: pair(options.dilation ?? 1),
    groups: options.groups ?? 1,
    outputPadding: pair(options.outputPadding ?? 0),
  };
  return op('convTranspose2d', bias ? [x, weight, bias] : [x, weight], attrs);
}

export interface BatchNormOptions {
  training?: boolean;
  momentum?: number;
  eps?: number;
}

/**
 * Batch normalisation of (N, C), (N, C, L) or (N, C, H, W), as torch.nn.functional.batch_norm:
 * in training (or without running statistics) it normalises with the batch's biased variance
 * and updates runningMean/runningVar in place (momentum, unbiased variance); otherwise it uses
 * the running statistics. Takes `training, momentum, eps` positionally or as one options object.
 */
export function batchNorm(
  x: Tensor,
  runningMean: Tensor | null | undefined,
  runningVar: Tensor | null | undefined,
  weight?: Tensor | null,
  bias?: Tensor | null,
  training: boolean | BatchNormOptions = false,
  momentum = 0.1,
  eps = 1e-5,
): Tensor {
  const o = typeof training === 'boolean' ? { training, momentum, eps } : { training: false, momentum: 0.1, eps: 1e-5, ...training };
  // A bias without a weight takes a weight of ones, which needs no gradient.
  const ones = bias && !weight ? filled([x.shape[1] ?? 0], 1) : null;
  const affine = bias ? [(weight ?? ones)!, bias] : weight ? [weight] : [];
  let y: Tensor;
  if (o.training || !runningMean || !runningVar) {
    const running = runningMean && runningVar && o.training ? { mean: runningMean, var: runningVar } : undefined;
    const sync = batchNormSync();
    y = op('batchNorm', [x, ...affine], { momentum: o.momentum, eps: o.eps, ...(running ? { running } : {}), ...(sync ? { sync } : {}) });
  } else {
    y = op('batchNormEval', [x, runningMean, runningVar, ...affine], { eps: o.eps });
  }
  ones?.dispose();
  return y;
}

export interface MaxPool2dOptions {
  /** Defaults to the kernel size. */
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  ceilMode?: boolean;
}

/** Max pooling, as torch.nn.functional.max_pool2d; the gradient goes to each window's first maximum. */
export function maxPool2d(x: Tensor, kernelSize: Pair, options: MaxPool2dOptions = {}): Tensor {
  const k = pair(kernelSize);
  const attrs = { kernelSize: k, stride: pair(options.stride ?? k), padding: pair(options.padding ?? 0), dilation: pair(options.dilation ?? 1), ceilMode: options.ceilMode ?? false };
  return op('maxPool2d', [x], attrs);
}

export interface AvgPool2dOptions {
  /** Defaults to the kernel size. */
  stride?: Pair;
  padding?: Pair;
  ceilMode?: boolean;
  /** Whether zero padding counts in the divisor (PyTorch's default: true). */
  countIncludePad?: boolean;
  divisorOverride?: number;
}

/** Average pooling, as torch.nn.functional.avg_pool2d. */
export function avgPool2d(x: Tensor, kernelSize: Pair, options: AvgPool2dOptions = {}): Tensor {
  const k = pair(kernelSize);
  const attrs = {
    kernelSize: k,
    stride: pair(options.stride ?? k),
    padding: pair(options.padding ?? 0),
    ceilMode: options.ceilMode ?? false,
    countIncludePad: options.countIncludePad ?? true,
    divisorOverride: options.divisorOverride ?? 0,
  };
  return op('avgPool2d', [x], attrs);
}

/** Adaptive average pooling to outputSize, as torch.nn.functional.adaptive_avg_pool2d (1 = global). */
export const adaptiveAvgPool2d = (x: Tensor, outputSize: Pair): Tensor => op('adaptiveAvgPool2d', [x], { outputSize: pair(outputSize) });
/** Adaptive max pooling to outputSize, as torch.nn.functional.adaptive_max_pool2d. */
export const adaptiveMaxPool2d = (x: Tensor, outputSize: Pair): Tensor => op('adaptiveMaxPool2d', [x], { outputSize: pair(outputSize) });

/**
 * Inverted dropout, as torch.nn.functional.dropout: in training each element is zeroed with
 * probability p and the rest scaled by 1/(1 − p); the mask's seed comes from the generator, so
 * a seeded generator reproduces it. In eval (or with p = 0) the input itself is returned.
 */
export function dropout(x: Tensor, p = 0.5, training = true, generator: Generator = defaultGenerator): Tensor {
  if (!(p >= 0 && p <= 1)) throw new Error(`dropout: p must be in [0, 1], got ${p}`);
  if (!training || p === 0) return x;
  return op('dropout', [x], { p, seed: [generator.nextUint32(), generator.nextUint32()] });
}

/** Concatenation along dim (negative counts from the end), as torch.cat. */
export function cat(tensors: readonly Tensor[], dim = 0): Tensor {
  if (tensors.length === 0) throw new Error('cat: expected a non-empty list of tensors');
  return op('cat', [...tensors], { dim: normalizeAxis(dim, tensors[0]!.ndim, 'cat') });
}
