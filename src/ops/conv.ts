// Convolutions (kernels/conv2d.wgsl): conv2d and convTranspose2d with stride, padding, dilation
// and groups, NCHW input and PyTorch's weight layouts. Three implicit-GEMM kernels serve both
// ops: the transposed convolution's forward is conv2d's input gradient, and vice versa. On
// lavapipe most of them run as kernels/conv2d_simd.wgsl instead (src/ops/conv-plan.ts).
import { Tensor } from '../tensor.js';
import { convPath, planConvGemm, simdBackwardInput, simdBackwardWeight, simdForward, type ConvGemmPlan, type ConvOptions, type ConvPass, type ConvPath } from './conv-plan.js';
import { backend } from '../runtime.js';
import { gemmLabel } from './matmul-plan.js';
import { convKey, type TunedChoice } from '../gpu/tuning.js';
import { candidates, FIRST_USE_ITERATIONS, TUNER_TILES, tuneLog, tuneShape } from '../gpu/tuner.js';
import { randn } from '../creation.js';
import { groups1d, launch, overWindows } from '../gpu/launch.js';
import type { OpCase, OpDef, RefTensor } from './op.js';
import { SUM_KERNELS, sumAxis } from './reduce.js';

export type Pair = [number, number];

export interface Conv2dAttrs {
  stride: Pair;
  padding: Pair;
  dilation: Pair;
  groups: number;
}

export interface ConvTranspose2dAttrs extends Conv2dAttrs {
  /** Extra rows/columns on the output's bottom/right, as PyTorch's output_padding. */
  outputPadding: Pair;
}

/** One convolution in conv2d's terms: x (N, Ci, H, W) → y (N, Co, Ho, Wo), weight (Co, Ci/groups, KH, KW). */
export interface ConvGeometry {
  N: number;
  Ci: number;
  H: number;
  W: number;
  Co: number;
  Ho: number;
  Wo: number;
  KH: number;
  KW: number;
  stride: Pair;
  padding: Pair;
  dilation: Pair;
  groups: number;
}

const fmt = (shape: readonly number[]): string => `[${shape.join(', ')}]`;

function checkAttrs(op: string, a: Conv2dAttrs): void {
  const positive = [...a.stride, ...a.dilation, a.groups];
  if (positive.some((v) => !Number.isInteger(v) || v < 1) || a.padding.some((v) => !Number.isInteger(v) || v < 0)) {
    throw new Error(`${op}: stride, dilation and groups must be positive integers and padding non-negative, got ${JSON.stringify(a)}`);
  }
}

function checkOperands(op: string, x: readonly number[], w: readonly number[], bias: readonly number[] | null, biasSize: number): void {
  if (x.length !== 4) throw new Error(`${op}: input ${fmt(x)} must be 4-D (N, C, H, W) for weight ${fmt(w)}`);
  if (w.length !== 4) throw new Error(`${op}: weight ${fmt(w)} must be 4-D for input ${fmt(x)}`);
  if (bias && (bias.length !== 1 || bias[0] !== biasSize)) {
    throw new Error(`${op}: bias ${fmt(bias)} must be [${biasSize}] for weight ${fmt(w)}`);
  }
}

/** conv2d's geometry, or an Error naming the op and the shapes that disagree. */
export function conv2dGeometry(x: readonly number[], w: readonly number[], bias: readonly number[] | null, a: Conv2dAttrs): ConvGeometry {
  checkAttrs('conv2d', a);
  checkOperands('conv2d', x, w, bias, w[0] ?? 0);
  const [N, Ci, H, W] = x as [number, number, number, number];
  const [Co, cin, KH, KW] = w as [number, number, number, number];
  if (Ci !== cin * a.groups) {
    throw new Error(`conv2d: input ${fmt(x)} has ${Ci} channels but weight ${fmt(w)} expects ${cin * a.groups}${a.groups > 1 ? ` (${cin} × groups ${a.groups})` : ''}`);
  }
  if (Co % a.groups !== 0) throw new Error(`conv2d: weight ${fmt(w)} has ${Co} output channels, not divisible by groups ${a.groups} (input ${fmt(x)})`);
  const Ho = Math.floor((H + 2 * a.padding[0] - a.dilation[0] * (KH - 1) - 1) / a.stride[0]) + 1;
  const Wo = Math.floor((W + 2 * a.padding[1] - a.dilation[1] * (KW - 1) - 1) / a.stride[1]) + 1;
  if (Ho < 1 || Wo < 1) {
    throw new Error(`conv2d: input ${fmt(x)} with padding ${fmt(a.padding)} is smaller than weight ${fmt(w)}'s kernel (dilation ${fmt(a.dilation)})`);
  }
  return { N, Ci, H, W, Co, Ho, Wo, KH, KW, stride: a.stride, padding: a.padding, dilation: a.dilation, groups: a.groups };
}

/**
 * convTranspose2d's geometry, expressed as the convolution whose input gradient it is: that
 * convolution's x is the transposed convolution's output and its y the transposed input.
 */
export function convTranspose2dGeometry(x: readonly number[], w: readonly number[], bias: readonly number[] | null, a: ConvTranspose2dAttrs): ConvGeometry {
  checkAttrs('convTranspose2d', a);
  checkOperands('convTranspose2d', x, w, bias, (w[1] ?? 0) * a.groups);
  const [N, Ci, H, W] = x as [number, number, number, number];
  const [wi, cout, KH, KW] = w as [number, number, number, number];
  if (Ci !== wi) throw new Error(`convTranspose2d: input ${fmt(x)} has ${Ci} channels but weight ${fmt(w)} expects ${wi}`);
  if (Ci % a.groups !== 0) throw new Error(`convTranspose2d: input ${fmt(x)} has ${Ci} channels, not divisible by groups ${a.groups} (weight ${fmt(w)})`);
  for (let d = 0; d < 2; d++) {
    const op = a.outputPadding[d]!;
    if (!Number.isInteger(op) || op < 0 || (op >= a.stride[d]! && op >= a.dilation[d]!)) {
      throw new Error(`convTranspose2d: output padding ${fmt(a.outputPadding)} must be smaller than either stride ${fmt(a.stride)} or dilation ${fmt(a.dilation)}`);
    }
  }
  const Ho = (H - 1) * a.stride[0] - 2 * a.padding[0] + a.dilation[0] * (KH - 1) + a.outputPadding[0] + 1;
  const Wo = (W - 1) * a.stride[1] - 2 * a.padding[1] + a.dilation[1] * (KW - 1) + a.outputPadding[1] + 1;
  if (Ho < 1 || Wo < 1) throw new Error(`convTranspose2d: input ${fmt(x)} with weight ${fmt(w)} and padding ${fmt(a.padding)} gives an empty output`);
  return { N, Ci: cout * a.groups, H: Ho, W: Wo, Co: Ci, Ho: H, Wo: W, KH, KW, stride: a.stride, padding: a.padding, dilation: a.dilation, groups: a.groups };
}

// ---- kernels -------------------------------------------------------------------------------

// Tile sizes, measured on lavapipe (bench/conv.bench.ts): there every storage load costs a
// per-lane loop, so an invocation must reuse each loaded value many times. 16 channels × 16
// pixels (and 16 channels × 8 taps for the weight gradient) is where register spills start
// to cost more than the loads they save.
const WG = 64;
const PIXELS = 16;
const TAPS = 8;

/** Channels per invocation / 4: 16 channels when the tiled side has them, fewer for thin layers. */
function channelTile(channelsPerGroup: number): number {
  return channelsPerGroup >= 16 ? 4 : channelsPerGroup >= 8 ? 2 : 1;
}

function uniforms(g: ConvGeometry, extra: { blocks: number; hasBias?: number; transposed?: number; rowsPerChunk?: number }): Record<string, number> {
  return {
    N: g.N, Ci: g.Ci, H: g.H, W: g.W, Co: g.Co, Ho: g.Ho, Wo: g.Wo, groups: g.groups, KH: g.KH, KW: g.KW,
    strideH: g.stride[0], strideW: g.stride[1], padH: g.padding[0], padW: g.padding[1], dilH: g.dilation[0], dilW: g.dilation[1],
    hasBias: 0, transposed: 0, rowsPerChunk: 0, ...extra,
  };
}

/** The weight with the tiled side's channels innermost in zero-padded blocks of 4·R4 (see conv2d.wgsl). */
function packWeight(weight: Tensor, g: ConvGeometry, R4: number, transposed: boolean): { packed: Tensor; blocks: number } {
  const tiled = transposed ? g.Ci / g.groups : g.Co / g.groups;
  const other = transposed ? g.Co / g.groups : g.Ci / g.groups;
  const blocks = Math.ceil(tiled / (4 * R4));
  const vectors = g.groups * blocks * g.KH * g.KW * other * R4;
  const packed = Tensor.empty([vectors, 4]);
  launch('conv2d', 'pack_weight', { packed, weight }, uniforms(g, { blocks, transposed: transposed ? 1 : 0 }), groups1d(vectors, WG), { WG, R4 });
  return { packed, blocks };
}

/**
 * Options with the tuner's entry for this pass and shape, where it has one and nothing is
 * pinned; under DAWNET_TUNE=1 a shape without one is queued for timing (src/gpu/tuner.ts).
 */
function tuned(pass: ConvPass, g: ConvGeometry, options: ConvOptions): ConvOptions {
  if (options.path) return options;
  const key = convKey(pass, g);
  const entry = backend().tuning.entries[key];
  if (!entry) backend().queueTuning(key, () => timeConv(key, pass, g));
  return entry ? { path: entry.path as ConvPath, gemmTile: entry.gemmTile } : options;
}

/** DAWNET_TUNE=1: the candidate kernels of one pass timed on random operands of its shape. */
async function timeConv(key: string, pass: ConvPass, g: ConvGeometry): Promise<TunedChoice> {
  const x = randn([g.N, g.Ci, g.H, g.W]).keep();
  const dy = randn([g.N, g.Co, g.Ho, g.Wo]).keep();
  const w = randn([g.Co, g.Ci / g.groups, g.KH, g.KW]).keep();
  const run = {
    forward: (o: ConvOptions) => conv2dForward(x, w, null, g, o),
    backward_input: (o: ConvOptions) => conv2dBackwardInput(dy, w, g, null, o),
    backward_weight: (o: ConvOptions) => conv2dBackwardWeight(x, dy, g, o),
  }[pass];
  const untuned = convKernelFor(pass, g).split(' ')[0]!;
  try {
    return await tuneShape(key, untuned, candidates(['direct', 'simd'], TUNER_TILES, gemmLabel), (choice) => run(choice as ConvOptions), FIRST_USE_ITERATIONS, tuneLog);
  } finally {
    for (const t of [x, dy, w]) t.dispose();
  }
}

/** The GEMM plan for this pass when the planner takes that path and it fits the device, else null. */
function gemmPlan(pass: ConvPass, g: ConvGeometry, options: ConvOptions): ConvGemmPlan | null {
  const gpu = backend();
  if (convPath(gpu.caps, gpu.kernelChoice, gpu.simd, options) !== 'gemm') return null;
  return planConvGemm(pass, g, gpu.caps, gpu.bindingLimit, options.gemmTile);
}

/** Which kernel a pass of this convolution runs on the open device, for benchmarks' notes: `gemm BMxBN/TMxTN/BK [vec4] [split n]`, `simd` or `direct`. */
export function convKernelFor(pass: ConvPass, g: ConvGeometry, pinned: ConvOptions = {}): string {
  const options = tuned(pass, g, pinned);
  const plan = gemmPlan(pass, g, options);
  if (plan) {
    return `gemm ${gemmLabel(plan.overrides)}${plan.entry.endsWith('vec4') ? ' vec4' : ''}${plan.chunks > 1 ? ` split ${plan.chunks}` : ''}`;
  }
  const gpu = backend();
  return convPath(gpu.caps, gpu.kernelChoice, gpu.simd, options) === 'simd' && !(pass === 'backward_input' && (g.stride[0] > 1 || g.stride[1] > 1)) ? 'simd' : 'direct';
}

function gemmUniforms(g: ConvGeometry, hasBias: boolean, rowsPerChunk = 0, relu = false): Record<string, number> {
  return {
    N: g.N, Ci: g.Ci, H: g.H, W: g.W, Co: g.Co, Ho: g.Ho, Wo: g.Wo, groups: g.groups, KH: g.KH, KW: g.KW,
    strideH: g.stride[0], strideW: g.stride[1], padH: g.padding[0], padW: g.padding[1], dilH: g.dilation[0], dilW: g.dilation[1],
    hasBias: hasBias ? 1 : 0, rowsPerChunk, relu: relu ? 1 : 0,
  };
}

/**
 * y = conv2d(x, weight) + bias, and relu(y) when `relu` (fused in the GEMM kernel's epilogue,
 * which it then needs); a batch larger than one binding runs in windows of images.
 */
export function conv2dForward(x: Tensor, weight: Tensor, bias: Tensor | null, g: ConvGeometry, options: ConvOptions = {}, relu = false): Tensor {
  const rowBytes = 4 * g.Co * g.Ho * g.Wo;
  return overWindows([x], [{ concat: rowBytes }], ([xw]) => [forward(xw!, weight, bias, { ...g, N: xw!.shape[0]! }, options, relu)])[0]!;
}

function forward(x: Tensor, weight: Tensor, bias: Tensor | null, g: ConvGeometry, pinned: ConvOptions, relu: boolean): Tensor {
  const options = tuned('forward', g, pinned);
  const plan = gemmPlan('forward', g, options);
  if (plan) {
    const y = Tensor.empty([g.N, g.Co, g.Ho, g.Wo]);
    const w: Record<string, Tensor> = plan.entry === 'conv2d_forward_vec4' ? { weight4: weight } : { weight };
    launch(plan.kernel, plan.entry, { y, x, ...w, bias: bias ?? x }, gemmUniforms(g, bias !== null, 0, relu), plan.grid, { ...plan.overrides });
    return y;
  }
  if (relu) throw new Error('conv2d: a fused ReLU needs the GEMM kernel (options.path = \'gemm\')');
  const simd = simdForward(x, weight, bias, g, options);
  if (simd) return simd;
  const R4 = channelTile(g.Co / g.groups);
  const { packed: wp, blocks } = packWeight(weight, g, R4, false);
  const y = Tensor.empty([g.N, g.Co, g.Ho, g.Wo]);
  const params = uniforms(g, { blocks, hasBias: bias ? 1 : 0 });
  const workgroups: [number, number] = [Math.ceil((g.N * g.Ho * g.Wo) / (PIXELS * WG)), g.groups * blocks];
  launch('conv2d', 'conv2d_forward', { y, x, wp, bias: bias ?? x }, params, workgroups, { WG, R4, P: PIXELS });
  wp.dispose();
  return y;
}

/** dx of conv2d from dy (N, Co, Ho, Wo): the input-shaped gradient (plus bias: convTranspose2d). */
export function conv2dBackwardInput(dy: Tensor, weight: Tensor, g: ConvGeometry, bias: Tensor | null = null, options: ConvOptions = {}): Tensor {
  const rowBytes = 4 * g.Ci * g.H * g.W;
  return overWindows([dy], [{ concat: rowBytes }], ([dyw]) => [backwardInput(dyw!, weight, { ...g, N: dyw!.shape[0]! }, bias, options)])[0]!;
}

function backwardInput(dy: Tensor, weight: Tensor, g: ConvGeometry, bias: Tensor | null, pinned: ConvOptions): Tensor {
  const options = tuned('backward_input', g, pinned);
  const plan = gemmPlan('backward_input', g, options);
  if (plan) {
    const dx = Tensor.empty([g.N, g.Ci, g.H, g.W]);
    launch(plan.kernel, plan.entry, { dx, dy, weight, bias: bias ?? dy }, gemmUniforms(g, bias !== null), plan.grid, { ...plan.overrides });
    return dx;
  }
  const simd = simdBackwardInput(dy, weight, g, bias, options);
  if (simd) return simd;
  const R4 = channelTile(g.Ci / g.groups);
  const { packed: wp, blocks } = packWeight(weight, g, R4, true);
  const dx = Tensor.empty([g.N, g.Ci, g.H, g.W]);
  const workgroups: [number, number] = [Math.ceil((g.N * g.H * g.W) / (PIXELS * WG)), g.groups * blocks];
  const params = uniforms(g, { blocks, hasBias: bias ? 1 : 0 });
  launch('conv2d', 'conv2d_backward_input', { dx, dy, wp, bias: bias ?? dy }, params, workgroups, { WG, R4, P: PIXELS });
  wp.dispose();
  return dx;
}

/** dweight of conv2d from x and dy, reduced over (n, oh, ow) in a fixed order (windows of images added in order). */
export function conv2dBackwardWeight(x: Tensor, dy: Tensor, g: ConvGeometry, options: ConvOptions = {}): Tensor {
  return overWindows([x, dy], ['sum'], ([xw, dyw]) => [backwardWeight(xw!, dyw!, { ...g, N: xw!.shape[0]! }, options)])[0]!;
}

function backwardWeight(x: Tensor, dy: Tensor, g: ConvGeometry, pinned: ConvOptions): Tensor {
  const options = tuned('backward_weight', g, pinned);
  const shape = [g.Co, g.Ci / g.groups, g.KH, g.KW];
  const plan = gemmPlan('backward_weight', g, options);
  if (plan) {
    const dw = Tensor.empty(plan.chunks === 1 ? shape : [plan.chunks, g.Co * (shape[1]! * g.KH * g.KW)]);
    const grad: Record<string, Tensor> = plan.entry === 'conv2d_backward_weight_vec4' ? { dy4: dy } : { dy };
    launch(plan.kernel, plan.entry, { dw, x, ...grad }, gemmUniforms(g, false, plan.rowsPerChunk), plan.grid, { ...plan.overrides });
    return plan.chunks === 1 ? dw : sumChunks(dw, shape);
  }
  const simd = simdBackwardWeight(x, dy, g, options);
  if (simd) return simd;
  const cout = g.Co / g.groups;
  const R4 = channelTile(cout);
  const blocks = Math.ceil(cout / (4 * R4));
  const K = (g.Ci / g.groups) * g.KH * g.KW;
  const tapGroups = Math.ceil(Math.ceil(K / TAPS) / WG);
  const invocations = Math.ceil(K / TAPS) * g.groups * blocks;
  // Enough independent row chunks to occupy the device, each still a long fixed-order sum.
  const rows = g.N * g.Ho;
  const chunks = Math.max(1, Math.min(Math.ceil(4096 / invocations), Math.floor(rows / 8), 64));
  const rowsPerChunk = Math.ceil(rows / chunks);
  const used = Math.ceil(rows / rowsPerChunk);
  const dw = Tensor.empty(used === 1 ? shape : [used, g.Co * K]);
  launch('conv2d', 'conv2d_backward_weight', { dw, x, dy }, uniforms(g, { blocks, rowsPerChunk }), [tapGroups, g.groups * blocks, used], { WG, R4, T: TAPS });
  return used === 1 ? dw : sumChunks(dw, shape);
}

/** Partial weight gradients (chunks, Co·taps) summed over the chunks in increasing order: the fixed-order end of a split-K. */
function sumChunks(partial: Tensor, shape: number[]): Tensor {
  const summed = sumAxis(partial, 0);
  partial.dispose();
  const result = summed.alias(shape);
  summed.dispose();
  return result;
}

/** dbias: dy summed over batch and positions, per channel. */
export function convBackwardBias(dy: Tensor): Tensor {
  const [N, C, H, W] = dy.shape as [number, number, number, number];
  const rows = dy.alias([N, C, H * W]);
  const perImage = sumAxis(rows, 2);
  rows.dispose();
  const db = sumAxis(perImage, 0);
  perImage.dispose();
  return db;
}

// ---- float64 references -------------------------------------------------------------------

/** Direct convolution in float64, in conv2d's terms. */
function refConv(x: RefTensor, w: RefTensor, b: RefTensor | undefined, g: ConvGeometry): RefTensor {
  const out = new Float64Array(g.N * g.Co * g.Ho * g.Wo);
  const cin = g.Ci / g.groups;
  const cout = g.Co / g.groups;
  for (let n = 0; n < g.N; n++) {
    for (let co = 0; co < g.Co; co++) {
      const grp = Math.floor(co / cout);
      for (let oh = 0; oh < g.Ho; oh++) {
        for (let ow = 0; ow < g.Wo; ow++) {
          let acc = b ? b.data[co]! : 0;
          for (let c = 0; c < cin; c++) {
            const ci = grp * cin + c;
            for (let kh = 0; kh < g.KH; kh++) {
              const ih = oh * g.stride[0] - g.padding[0] + kh * g.dilation[0];
              if (ih < 0 || ih >= g.H) continue;
              for (let kw = 0; kw < g.KW; kw++) {
                const iw = ow * g.stride[1] - g.padding[1] + kw * g.dilation[1];
                if (iw < 0 || iw >= g.W) continue;
                acc += w.data[((co * cin + c) * g.KH + kh) * g.KW + kw]! * x.data[((n * g.Ci + ci) * g.H + ih) * g.W + iw]!;
              }
            }
          }
          out[((n * g.Co + co) * g.Ho + oh) * g.Wo + ow] = acc;
        }
      }
    }
  }
  return { shape: [g.N, g.Co, g.Ho, g.Wo], data: out };
}

/** The transposed convolution in float64: each input pixel scatters its weighted kernel. */
function refConvTranspose(x: RefTensor, w: RefTensor, b: RefTensor | undefined, g: ConvGeometry): RefTensor {
  // In g's terms the transposed input is (N, Co, Ho, Wo) and the output (N, Ci, H, W).
  const out = new Float64Array(g.N * g.Ci * g.H * g.W);
  const cin = g.Ci / g.groups;
  const cout = g.Co / g.groups;
  for (let n = 0; n < g.N; n++) {
    for (let co = 0; co < g.Co; co++) {
      const grp = Math.floor(co / cout);
      for (let oh = 0; oh < g.Ho; oh++) {
        for (let ow = 0; ow < g.Wo; ow++) {
          const v = x.data[((n * g.Co + co) * g.Ho + oh) * g.Wo + ow]!;
          for (let c = 0; c < cin; c++) {
            const ci = grp * cin + c;
            for (let kh = 0; kh < g.KH; kh++) {
              const ih = oh * g.stride[0] - g.padding[0] + kh * g.dilation[0];
              if (ih < 0 || ih >= g.H) continue;
              for (let kw = 0; kw < g.KW; kw++) {
                const iw = ow * g.stride[1] - g.padding[1] + kw * g.dilation[1];
                if (iw < 0 || iw >= g.W) continue;
                out[((n * g.Ci + ci) * g.H + ih) * g.W + iw]! += v * w.data[((co * cin + c) * g.KH + kh) * g.KW + kw]!;
              }
            }
          }
        }
      }
    }
  }
  if (b) {
    const plane = g.H * g.W;
    for (let i = 0; i < out.length; i++) out[i]! += b.data[Math.floor(i / plane) % g.Ci]!;
  }
  return { shape: [g.N, g.Ci, g.H, g.W], data: out };
}

// ---- op rows --------------------------------------------------------------------------------

const conv = (stride: number | Pair = 1, padding: number | Pair = 0, dilation: number | Pair = 1, groups = 1): Conv2dAttrs => {
  const pair = (v: number | Pair): Pair => (typeof v === 'number' ? [v, v] : v);
  return { stride: pair(stride), padding: pair(padding), dilation: pair(dilation), groups };
};

const CONV_CASES: OpCase<Conv2dAttrs>[] = [
  // 1×1, batch 1, no bias
  { shapes: [[1, 3, 5, 5], [2, 3, 1, 1]], attrs: conv() },
  // 3×3 pad 1 with bias, odd sizes, a non-multiple-of-4 output channel count
  { shapes: [[2, 3, 7, 6], [5, 3, 3, 3], [5]], attrs: conv(1, 1) },
  // 3×3 with 9 output channels: two channel blocks, the second one partial
  { shapes: [[1, 5, 6, 5], [9, 5, 3, 3], [9]], attrs: conv(1, 1) },
  // 4×4 stride 2 pad 1 (DCGAN discriminator)
  { shapes: [[1, 2, 9, 9], [3, 2, 4, 4]], attrs: conv(2, 1) },
  // 5×5 pad 2
  { shapes: [[2, 2, 8, 7], [3, 2, 5, 5], [3]], attrs: conv(1, 2) },
  // 7×7 stride 2 pad 3 (ResNet stem)
  { shapes: [[1, 3, 15, 13], [4, 3, 7, 7]], attrs: conv(2, 3) },
  // 11×11 stride 4 pad 2 (AlexNet)
  { shapes: [[1, 3, 23, 23], [2, 3, 11, 11], [2]], attrs: conv(4, 2) },
  // dilation 2, asymmetric stride and padding
  { shapes: [[1, 2, 9, 8], [3, 2, 3, 3]], attrs: conv([1, 2], [2, 1], 2) },
  // groups 2
  { shapes: [[1, 4, 6, 6], [6, 2, 3, 3], [6]], attrs: conv(1, 1, 1, 2) },
  // 32 output rows: the weight gradient is summed in 4 row chunks, then across them
  { shapes: [[4, 2, 8, 6], [3, 2, 3, 3]], attrs: conv(1, 1) },
];

const transpose = (stride: number, padding: number, outputPadding = 0, dilation = 1, groups = 1): ConvTranspose2dAttrs => ({
  ...conv(stride, padding, dilation, groups),
  outputPadding: [outputPadding, outputPadding],
});

const TRANSPOSE_CASES: OpCase<ConvTranspose2dAttrs>[] = [
  // 4×4 stride 2 pad 1 (DCGAN generator), with bias
  { shapes: [[1, 3, 4, 4], [3, 2, 4, 4], [2]], attrs: transpose(2, 1) },
  // the generator's first layer: 1×1 input to a 4×4 map
  { shapes: [[2, 5, 1, 1], [5, 3, 4, 4]], attrs: transpose(1, 0) },
  // 3×3 stride 2 with output_padding 1
  { shapes: [[1, 2, 3, 5], [2, 3, 3, 3], [3]], attrs: transpose(2, 1, 1) },
  // 9 output channels (a partial block), stride 1
  { shapes: [[1, 3, 4, 3], [3, 9, 3, 3]], attrs: transpose(1, 1) },
  // dilation 2 and groups 2
  { shapes: [[1, 4, 3, 3], [4, 1, 3, 3]], attrs: transpose(1, 0, 0, 2, 2) },
];

// Each output sums at most 3·11·11 = 363 float32 products of N(0, 1) values: rounding stays
// below ~1e-5 of the result's scale (~20). Gradients sum as many again over positions.
const TOLERANCE = { rtol: 1e-4, atol: 1e-4 };
const GRAD_TOLERANCE = { rtol: 1e-3, atol: 1e-3 };

/** Both paths, direct (kernels/conv2d.wgsl) and SIMD (kernels/conv2d_simd.wgsl), and the bias and weight sums. */
const CONV_KERNELS = [
  'conv2d_gemm.conv2d_forward',
  'conv2d_gemm.conv2d_backward_input',
  'conv2d_gemm.conv2d_backward_weight',
  'conv2d_gemm.conv2d_forward_vec4',
  'conv2d_gemm.conv2d_backward_weight_vec4',
  'conv2d.pack_weight',
  'conv2d.conv2d_forward',
  'conv2d.conv2d_backward_input',
  'conv2d.conv2d_backward_weight',
  'conv2d_simd.pack_input',
  'conv2d_simd.pack_filter',
  'conv2d_simd.pack_x',
  'conv2d_simd.pack_dy',
  'conv2d_simd.conv_simd',
  'conv2d_simd.conv_weight_simd',
  ...SUM_KERNELS,
] as const;

export const convOps = {
  conv2d: {
    kernels: CONV_KERNELS,
    saves: ['in0', 'in1'],
    forward([x, w, b], attrs) {
      const g = conv2dGeometry(x!.shape, w!.shape, b ? b.shape : null, attrs);
      return { out: conv2dForward(x!, w!, b ?? null, g) };
    },
    backward({ grad, saved, attrs, shapes, needs }) {
      const [x, w] = saved as [Tensor, Tensor];
      const g = conv2dGeometry(x.shape, w.shape, shapes[2] ?? null, attrs);
      return [
        needs[0] ? conv2dBackwardInput(grad, w, g) : null,
        needs[1] ? conv2dBackwardWeight(x, grad, g) : null,
        needs[2] ? convBackwardBias(grad) : null,
      ];
    },
    reference([x, w, b], attrs) {
      return refConv(x!, w!, b, conv2dGeometry(x!.shape, w!.shape, b ? b.shape : null, attrs));
    },
    cases: CONV_CASES,
    tolerance: TOLERANCE,
    gradTolerance: GRAD_TOLERANCE,
  } satisfies OpDef<Conv2dAttrs>,
  convTranspose2d: {
    kernels: CONV_KERNELS,
    saves: ['in0', 'in1'],
    forward([x, w, b], attrs) {
      const g = convTranspose2dGeometry(x!.shape, w!.shape, b ? b.shape : null, attrs);
      return { out: conv2dBackwardInput(x!, w!, g, b ?? null) };
    },
    backward({ grad, saved, attrs, shapes, needs }) {
      const [x, w] = saved as [Tensor, Tensor];
      const g = convTranspose2dGeometry(x.shape, w.shape, shapes[2] ?? null, attrs);
      return [
        needs[0] ? conv2dForward(grad, w, null, g) : null,
        needs[1] ? conv2dBackwardWeight(grad, x, g) : null,
        needs[2] ? convBackwardBias(grad) : null,
      ];
    },
    reference([x, w, b], attrs) {
      return refConvTranspose(x!, w!, b, convTranspose2dGeometry(x!.shape, w!.shape, b ? b.shape : null, attrs));
    },
    cases: TRANSPOSE_CASES,
    tolerance: TOLERANCE,
    gradTolerance: GRAD_TOLERANCE,
  } satisfies OpDef<ConvTranspose2dAttrs>,
};
