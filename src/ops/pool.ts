// 2-D pooling (kernels/pool.wgsl): maxPool2d, avgPool2d, adaptiveMaxPool2d, adaptiveAvgPool2d
// over (N, C, H, W) or (C, H, W), with PyTorch's output sizes, ceil_mode and padding rules.
// Max pooling saves the argmax for its backward pass.
import { Tensor } from '../tensor.js';
import { groups1d, launch, type Split } from '../gpu/launch.js';
import type { OpCase, OpDef, RefTensor } from './op.js';

export type Pair = [number, number];

export interface MaxPool2dAttrs {
  kernelSize: Pair;
  stride: Pair;
  padding: Pair;
  dilation: Pair;
  ceilMode: boolean;
}

export interface AvgPool2dAttrs {
  kernelSize: Pair;
  stride: Pair;
  padding: Pair;
  ceilMode: boolean;
  countIncludePad: boolean;
  /** Divides every window by this instead (PyTorch's divisor_override); 0 for none. */
  divisorOverride: number;
}

export interface AdaptivePool2dAttrs {
  outputSize: Pair;
}

const WG = 64;

interface PoolGeometry {
  planes: number;
  H: number;
  W: number;
  Ho: number;
  Wo: number;
  /** The output's shape: the input's leading dims with (Ho, Wo). */
  shape: number[];
}

/** PyTorch's pooling_output_shape: floor or ceil, with the last window starting inside the input or its left padding. */
function outputSize(size: number, k: number, pad: number, stride: number, dil: number, ceil: boolean): number {
  const span = size + 2 * pad - dil * (k - 1) - 1 + (ceil ? stride - 1 : 0);
  let out = Math.floor(span / stride) + 1;
  if (ceil && (out - 1) * stride >= size + pad) out -= 1;
  return out;
}

function planesOf(op: string, x: readonly number[]): [number, number, number] {
  if (x.length !== 3 && x.length !== 4) throw new Error(`${op}: input [${x.join(', ')}] must be (N, C, H, W) or (C, H, W)`);
  const [H, W] = x.slice(-2) as [number, number];
  return [x.slice(0, -2).reduce((a, b) => a * b, 1), H, W];
}

function windowGeometry(op: string, x: readonly number[], a: { kernelSize: Pair; stride: Pair; padding: Pair; ceilMode: boolean }, dilation: Pair): PoolGeometry {
  const [planes, H, W] = planesOf(op, x);
  const values = [...a.kernelSize, ...a.stride, ...dilation];
  if (values.some((v) => !Number.isInteger(v) || v < 1) || a.padding.some((v) => !Number.isInteger(v) || v < 0)) {
    throw new Error(`${op}: kernel size, stride and dilation must be positive integers and padding non-negative, got ${JSON.stringify(a)}`);
  }
  for (let d = 0; d < 2; d++) {
    if (a.padding[d]! * 2 > dilation[d]! * (a.kernelSize[d]! - 1) + 1) {
      throw new Error(`${op}: padding [${a.padding.join(', ')}] should be at most half of the kernel size [${a.kernelSize.join(', ')}]`);
    }
  }
  const Ho = outputSize(H, a.kernelSize[0], a.padding[0], a.stride[0], dilation[0], a.ceilMode);
  const Wo = outputSize(W, a.kernelSize[1], a.padding[1], a.stride[1], dilation[1], a.ceilMode);
  if (Ho < 1 || Wo < 1) throw new Error(`${op}: input [${x.join(', ')}] is too small for kernel size [${a.kernelSize.join(', ')}] with padding [${a.padding.join(', ')}]`);
  return { planes, H, W, Ho, Wo, shape: [...x.slice(0, -2), Ho, Wo] };
}

function adaptiveGeometry(op: string, x: readonly number[], { outputSize: [Ho, Wo] }: AdaptivePool2dAttrs): PoolGeometry {
  const [planes, H, W] = planesOf(op, x);
  if (!Number.isInteger(Ho) || !Number.isInteger(Wo) || Ho < 1 || Wo < 1) throw new Error(`${op}: output size [${Ho}, ${Wo}] must be positive integers`);
  if (H < 1 || W < 1) throw new Error(`${op}: input [${x.join(', ')}] is empty`);
  return { planes, H, W, Ho, Wo, shape: [...x.slice(0, -2), Ho, Wo] };
}

function uniforms(g: PoolGeometry, extra: Record<string, number>): Record<string, number> {
  return {
    planes: g.planes, H: g.H, W: g.W, Ho: g.Ho, Wo: g.Wo,
    kH: 1, kW: 1, strideH: 1, strideW: 1, padH: 0, padW: 0, dilH: 1, dilW: 1, adaptive: 0, countIncludePad: 0, divisorOverride: 0,
    ...extra,
  };
}

function maxParams(g: PoolGeometry, a: MaxPool2dAttrs): Record<string, number> {
  const [kH, kW] = a.kernelSize;
  const [strideH, strideW] = a.stride;
  const [padH, padW] = a.padding;
  const [dilH, dilW] = a.dilation;
  return uniforms(g, { kH, kW, strideH, strideW, padH, padW, dilH, dilW });
}

function avgParams(g: PoolGeometry, a: AvgPool2dAttrs): Record<string, number> {
  const [kH, kW] = a.kernelSize;
  const [strideH, strideW] = a.stride;
  const [padH, padW] = a.padding;
  return uniforms(g, { kH, kW, strideH, strideW, padH, padW, countIncludePad: a.countIncludePad ? 1 : 0, divisorOverride: a.divisorOverride });
}

/** Cuts a pooling dispatch along its (N·C) planes; `perPlane` invocations each. */
function planes(g: { planes: number }, bindings: string[], perPlane: number): Split {
  return { extent: g.planes, bindings, uniforms: (w) => ({ planes: w.count }), groups: (n) => groups1d(n * perPlane, WG) };
}

function maxForward(x: Tensor, g: PoolGeometry, params: Record<string, number>): { out: Tensor; extras: Tensor[] } {
  const out = Tensor.empty(g.shape);
  const argmax = Tensor.empty(g.shape, 'int32');
  launch('pool', 'max_pool_forward', { out, argmax, x }, params, planes(g, ['out', 'argmax', 'x'], g.Ho * g.Wo));
  return { out, extras: [argmax] };
}

function maxBackward(dout: Tensor, argmax: Tensor, shape: readonly number[], params: Record<string, number>): Tensor {
  const dx = Tensor.empty(shape);
  launch('pool', 'max_pool_backward', { dx, dout, argmaxIn: argmax }, params, planes(params as { planes: number }, ['dx', 'dout', 'argmaxIn'], params.H! * params.W!));
  return dx;
}

function avgForward(x: Tensor, g: PoolGeometry, params: Record<string, number>): Tensor {
  const out = Tensor.empty(g.shape);
  launch('pool', 'avg_pool_forward', { out, x }, params, planes(g, ['out', 'x'], g.Ho * g.Wo));
  return out;
}

function avgBackward(dout: Tensor, shape: readonly number[], params: Record<string, number>): Tensor {
  const dx = Tensor.empty(shape);
  launch('pool', 'avg_pool_backward', { dx, dout }, params, planes(params as { planes: number }, ['dx', 'dout'], params.H! * params.W!));
  return dx;
}

// ---- float64 references -------------------------------------------------------------------

/** Window o's taps along one axis, inside the input. */
type Taps = (o: number) => number[];

function regularTaps(size: number, k: number, stride: number, pad: number, dil: number): Taps {
  return (o) => Array.from({ length: k }, (_, t) => o * stride - pad + t * dil).filter((i) => i >= 0 && i < size);
}

function adaptiveTaps(size: number, out: number): Taps {
  return (o) => {
    const start = Math.floor((o * size) / out);
    const end = Math.ceil(((o + 1) * size) / out);
    return Array.from({ length: end - start }, (_, t) => start + t);
  };
}

function refPool(x: RefTensor, g: PoolGeometry, rows: Taps, cols: Taps, reduce: (values: number[], oh: number, ow: number) => number): RefTensor {
  const data = new Float64Array(g.planes * g.Ho * g.Wo);
  for (let p = 0; p < g.planes; p++) {
    for (let oh = 0; oh < g.Ho; oh++) {
      for (let ow = 0; ow < g.Wo; ow++) {
        const values: number[] = [];
        for (const ih of rows(oh)) for (const iw of cols(ow)) values.push(x.data[(p * g.H + ih) * g.W + iw]!);
        data[(p * g.Ho + oh) * g.Wo + ow] = reduce(values, oh, ow);
      }
    }
  }
  return { shape: g.shape, data };
}

const maximum = (values: number[]): number => values.reduce((m, v) => Math.max(m, v), -Infinity);
const average = (values: number[]): number => values.reduce((s, v) => s + v, 0) / values.length;

/** PyTorch's avg_pool2d divisor for window (oh, ow). */
function refDivisor(g: PoolGeometry, a: AvgPool2dAttrs, oh: number, ow: number, count: number): number {
  if (a.divisorOverride) return a.divisorOverride;
  if (!a.countIncludePad) return count;
  const h0 = oh * a.stride[0] - a.padding[0];
  const w0 = ow * a.stride[1] - a.padding[1];
  const h1 = Math.min(h0 + a.kernelSize[0], g.H + a.padding[0]);
  const w1 = Math.min(w0 + a.kernelSize[1], g.W + a.padding[1]);
  return (h1 - h0) * (w1 - w0);
}

// ---- op rows --------------------------------------------------------------------------------

const maxPool = (k: number, stride = k, padding = 0, dilation = 1, ceilMode = false): MaxPool2dAttrs => ({
  kernelSize: [k, k], stride: [stride, stride], padding: [padding, padding], dilation: [dilation, dilation], ceilMode,
});

const avgPool = (k: number, stride = k, padding = 0, ceilMode = false, countIncludePad = true, divisorOverride = 0): AvgPool2dAttrs => ({
  kernelSize: [k, k], stride: [stride, stride], padding: [padding, padding], ceilMode, countIncludePad, divisorOverride,
});

// One multiply-add chain per window at most: exact but for the last bits.
const TOLERANCE = { rtol: 1e-5, atol: 1e-6 };
const GRAD_TOLERANCE = { rtol: 1e-3, atol: 1e-4 };

const MAX_POOL_KERNELS = ['pool.max_pool_forward', 'pool.max_pool_backward'] as const;
const AVG_POOL_KERNELS = ['pool.avg_pool_forward', 'pool.avg_pool_backward'] as const;

export const poolOps = {
  maxPool2d: {
    kernels: MAX_POOL_KERNELS,
    saves: ['extra0'],
    forward([x], a) {
      const g = windowGeometry('maxPool2d', x!.shape, a, a.dilation);
      return maxForward(x!, g, maxParams(g, a));
    },
    backward({ grad, saved, shapes, attrs }) {
      const g = windowGeometry('maxPool2d', shapes[0]!, attrs, attrs.dilation);
      return [maxBackward(grad, saved[0]!, shapes[0]!, maxParams(g, attrs))];
    },
    reference([x], a) {
      const g = windowGeometry('maxPool2d', x!.shape, a, a.dilation);
      return refPool(x!, g, regularTaps(g.H, a.kernelSize[0], a.stride[0], a.padding[0], a.dilation[0]), regularTaps(g.W, a.kernelSize[1], a.stride[1], a.padding[1], a.dilation[1]), maximum);
    },
    cases: [
      { shapes: [[1, 1, 4, 4]], attrs: maxPool(2) },
      // ResNet's stem pool: 3×3 stride 2 pad 1, odd size
      { shapes: [[2, 3, 7, 9]], attrs: maxPool(3, 2, 1) },
      // overlapping windows, ceil_mode keeps the partial last window
      { shapes: [[1, 2, 8, 7]], attrs: maxPool(3, 2, 0, 1, true) },
      // dilation 2, unbatched (C, H, W)
      { shapes: [[2, 9, 9]], attrs: maxPool(3, 1, 1, 2) },
    ] satisfies OpCase<MaxPool2dAttrs>[],
    tolerance: { rtol: 0, atol: 0 },
    // Normal samples have no ties, so the maximum is differentiable at every sample.
    gradTolerance: GRAD_TOLERANCE,
  } satisfies OpDef<MaxPool2dAttrs>,
  avgPool2d: {
    kernels: AVG_POOL_KERNELS,
    saves: [],
    forward([x], a) {
      const g = windowGeometry('avgPool2d', x!.shape, a, [1, 1]);
      return { out: avgForward(x!, g, avgParams(g, a)) };
    },
    backward({ grad, shapes, attrs }) {
      const g = windowGeometry('avgPool2d', shapes[0]!, attrs, [1, 1]);
      return [avgBackward(grad, shapes[0]!, avgParams(g, attrs))];
    },
    reference([x], a) {
      const g = windowGeometry('avgPool2d', x!.shape, a, [1, 1]);
      const rows = regularTaps(g.H, a.kernelSize[0], a.stride[0], a.padding[0], 1);
      const cols = regularTaps(g.W, a.kernelSize[1], a.stride[1], a.padding[1], 1);
      return refPool(x!, g, rows, cols, (v, oh, ow) => v.reduce((s, t) => s + t, 0) / refDivisor(g, a, oh, ow, v.length));
    },
    cases: [
      { shapes: [[1, 1, 4, 4]], attrs: avgPool(2) },
      // padding counted in the divisor (PyTorch's default)
      { shapes: [[2, 3, 7, 5]], attrs: avgPool(3, 2, 1) },
      // padding not counted, ceil_mode
      { shapes: [[1, 2, 8, 7]], attrs: avgPool(3, 2, 1, true, false) },
      // divisor_override, unbatched
      { shapes: [[3, 6, 6]], attrs: avgPool(2, 2, 0, false, true, 3) },
    ] satisfies OpCase<AvgPool2dAttrs>[],
    tolerance: TOLERANCE,
    gradTolerance: GRAD_TOLERANCE,
  } satisfies OpDef<AvgPool2dAttrs>,
  adaptiveAvgPool2d: {
    kernels: AVG_POOL_KERNELS,
    saves: [],
    forward([x], a) {
      const g = adaptiveGeometry('adaptiveAvgPool2d', x!.shape, a);
      return { out: avgForward(x!, g, uniforms(g, { adaptive: 1 })) };
    },
    backward({ grad, shapes, attrs }) {
      const g = adaptiveGeometry('adaptiveAvgPool2d', shapes[0]!, attrs);
      return [avgBackward(grad, shapes[0]!, uniforms(g, { adaptive: 1 }))];
    },
    reference([x], a) {
      const g = adaptiveGeometry('adaptiveAvgPool2d', x!.shape, a);
      return refPool(x!, g, adaptiveTaps(g.H, g.Ho), adaptiveTaps(g.W, g.Wo), average);
    },
    cases: [
      // global average pooling (ResNet's head)
      { shapes: [[2, 3, 5, 5]], attrs: { outputSize: [1, 1] } },
      // uneven, overlapping windows
      { shapes: [[1, 2, 7, 10]], attrs: { outputSize: [3, 4] } },
      // output larger than the input
      { shapes: [[1, 1, 3, 2]], attrs: { outputSize: [5, 3] } },
    ] satisfies OpCase<AdaptivePool2dAttrs>[],
    tolerance: TOLERANCE,
    gradTolerance: GRAD_TOLERANCE,
  } satisfies OpDef<AdaptivePool2dAttrs>,
  adaptiveMaxPool2d: {
    kernels: MAX_POOL_KERNELS,
    saves: ['extra0'],
    forward([x], a) {
      const g = adaptiveGeometry('adaptiveMaxPool2d', x!.shape, a);
      return maxForward(x!, g, uniforms(g, { adaptive: 1 }));
    },
    backward({ grad, saved, shapes, attrs }) {
      const g = adaptiveGeometry('adaptiveMaxPool2d', shapes[0]!, attrs);
      return [maxBackward(grad, saved[0]!, shapes[0]!, uniforms(g, { adaptive: 1 }))];
    },
    reference([x], a) {
      const g = adaptiveGeometry('adaptiveMaxPool2d', x!.shape, a);
      return refPool(x!, g, adaptiveTaps(g.H, g.Ho), adaptiveTaps(g.W, g.Wo), maximum);
    },
    cases: [
      { shapes: [[2, 3, 5, 5]], attrs: { outputSize: [1, 1] } },
      { shapes: [[1, 2, 7, 10]], attrs: { outputSize: [3, 4] } },
      { shapes: [[1, 1, 3, 2]], attrs: { outputSize: [5, 3] } },
    ] satisfies OpCase<AdaptivePool2dAttrs>[],
    tolerance: { rtol: 0, atol: 0 },
    gradTolerance: GRAD_TOLERANCE,
  } satisfies OpDef<AdaptivePool2dAttrs>,
};
