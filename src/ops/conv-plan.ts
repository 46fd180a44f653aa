// Chooses how a convolution runs, and runs the SIMD path. On a GPU (or with DAWNET_KERNELS=gemm)
// the implicit GEMMs of kernels/conv2d_gemm.wgsl; on CPU adapters kernels/conv2d_simd.wgsl
// (operands packed into textures, 8-lane subgroups) where it applies, kernels/conv2d.wgsl for
// strided input gradients, wherever a packed operand would not fit, and on other CPU adapters.
// planConvGemm and convPath are pure: shapes and the device's capabilities in, a plan out.
import type { Backend } from '../gpu/backend.js';
import type { DeviceCapabilities, KernelChoice } from '../gpu/capabilities.js';
import { gemmTile, gemmTileProblem, tileCols, tileRows, type GemmTile } from './matmul-plan.js';
import { launch } from '../gpu/launch.js';
import { backend } from '../runtime.js';
import { Tensor } from '../tensor.js';
import type { ConvGeometry, Pair } from './conv.js';
import { sumAxis } from './reduce.js';

export type ConvPath = 'direct' | 'simd' | 'gemm';

/** Pins the kernels a convolution uses (tests and benchmarks); the SIMD path still needs a capable adapter. */
export interface ConvOptions {
  path?: ConvPath;
  /** The GEMM tile, from the tuner's table or a benchmark's sweep. */
  gemmTile?: GemmTile;
}

export type ConvPass = 'forward' | 'backward_input' | 'backward_weight';

export interface ConvGemmPlan {
  kernel: 'conv2d_gemm';
  /** _vec4: the forward's weight (taps a multiple of 4), the weight gradient's dy (Ho·Wo a multiple of 4) loaded as vec4s. */
  entry: `conv2d_${ConvPass}` | 'conv2d_forward_vec4' | 'conv2d_backward_weight_vec4';
  overrides: GemmTile;
  grid: [number, number, number];
  /** The weight gradient's split-K: chunks of rowsPerChunk output pixels, each a partial sum. */
  chunks: number;
  rowsPerChunk: number;
  /** Bytes of partial sums (chunks × Co × taps floats) to reduce after, 0 when one chunk. */
  scratchBytes: number;
}

/**
 * Workgroups the weight gradient's split-K aims for: enough to fill a large GPU (an H100 runs
 * 132 SMs × several workgroups), a handful on a CPU adapter with a few cores.
 */
const SPLIT_TARGET = { hardware: 1024, software: 32 };
/** Each chunk keeps at least this many output pixels, so a partial sum is long and few are written. */
const MIN_CHUNK = 256;
const MAX_CHUNKS = 64;

/**
 * The GEMM kernel for one pass of conv2d (g in conv2d's terms), or null when its grid would pass
 * the device's. bindingLimit bounds the weight gradient's partial sums.
 */
export function planConvGemm(pass: ConvPass, g: ConvGeometry, caps: DeviceCapabilities, bindingLimit: number, tile?: GemmTile): ConvGemmPlan | null {
  const cin = g.Ci / g.groups;
  const cout = g.Co / g.groups;
  const taps = cin * g.KH * g.KW;
  const [rows, cols] = pass === 'forward' ? [cout, g.N * g.Ho * g.Wo] : pass === 'backward_input' ? [cin, g.N * g.H * g.W] : [cout, taps];
  const t = tile ?? gemmTile(rows, cols, g.groups);
  const problem = gemmTileProblem(t);
  if (problem) throw new Error(`conv2d: GEMM tile ${JSON.stringify(t)} cannot run: ${problem}`);
  const tiles = Math.ceil(cols / tileCols(t)) * Math.ceil(rows / tileRows(t));
  let chunks = 1;
  const pixels = g.N * g.Ho * g.Wo;
  if (pass === 'backward_weight') {
    const target = caps.software ? SPLIT_TARGET.software : SPLIT_TARGET.hardware;
    const fit = Math.floor(bindingLimit / (4 * g.Co * taps));
    chunks = Math.max(1, Math.min(Math.ceil(target / (tiles * g.groups)), Math.floor(pixels / MIN_CHUNK), MAX_CHUNKS, fit));
  }
  // dy's vec4s along the output pixels need whole vec4s per image and per chunk.
  const vec4 = pass === 'forward' ? taps % 4 === 0 : pass === 'backward_weight' && (g.Ho * g.Wo) % 4 === 0;
  const rowsPerChunk = Math.ceil(pixels / chunks / (vec4 ? 4 : 1)) * (vec4 ? 4 : 1);
  chunks = Math.ceil(pixels / rowsPerChunk);
  const grid: [number, number, number] = [Math.ceil(cols / tileCols(t)), Math.ceil(rows / tileRows(t)), g.groups * chunks];
  if (grid.some((n) => n > caps.maxComputeWorkgroupsPerDimension)) return null;
  const entry = vec4 ? (pass === 'forward' ? 'conv2d_forward_vec4' : 'conv2d_backward_weight_vec4') : (`conv2d_${pass}` as const);
  return { kernel: 'conv2d_gemm', entry, overrides: t, grid, chunks, rowsPerChunk, scratchBytes: chunks > 1 ? 4 * chunks * g.Co * taps : 0 };
}

/** The path a pass takes when nothing is pinned: the GEMMs on a GPU or when forced, else today's CPU paths. */
export function convPath(caps: DeviceCapabilities, choice: KernelChoice, simd: boolean, options: ConvOptions): ConvPath {
  if (options.path) return options.path;
  if (choice === 'gemm' || !caps.software) return 'gemm';
  return simd ? 'simd' : 'direct';
}

/**
 * conv_simd's tile, measured on lavapipe (bench/conv.bench.ts): 64 pixels × 16 channels per
 * subgroup, 128 accumulators a lane, the same register budget as matmul_simd's 16 × 64 tile.
 * Each 4-channel step then loads 8 texels, and 2 filter texels spread to 16 per lane, for 512
 * multiply-adds. Four 8-channel blocks spill and run several times slower.
 */
const PX = 8;

/**
 * conv_weight_simd's tile: a lane owns TR rows (channel, kh) of taps with every kernel column kw,
 * about TAP_BUDGET taps. Measured on lavapipe at 3×3: 6 taps × 16 channels beat 9 by 10–20 %, and
 * 12 (48 vec4 accumulators) spill and run ten times slower, so wide kernels take one 8-channel
 * block. MAX_TAPS, MAX_TAP_ROWS and MAX_X_TEXELS are the WGSL's array bounds.
 */
const TAP_BUDGET = 6;
const MAX_TAPS = 12;
const MAX_TAP_ROWS = 8;
const MAX_X_TEXELS = 16;

/** 8-channel blocks per subgroup: two when the group has the channels, else one. */
const channelBlocks = (channels: number): number => (channels > 8 ? 2 : 1);

/** The convolution conv_simd computes: conv2d's forward, or its input gradient at stride 1. */
interface Generic {
  N: number;
  Cin: number;
  H: number;
  W: number;
  Cout: number;
  Ho: number;
  Wo: number;
  groups: number;
  KH: number;
  KW: number;
  stride: Pair;
  dilation: Pair;
  /** Signed: the input gradient's is (K − 1)·dilation − padding. */
  pad: Pair;
}

type Role = 'input' | 'filter' | 'dy' | 'x';

/** One scratch texture per operand role, from the backend's owner. */
const texture = (gpu: Backend, role: Role, size: [number, number]): GPUTexture => gpu.texture(`conv2d ${role}`, size);

const fits = (gpu: Backend, ...sizes: [number, number][]): boolean => sizes.every((s) => Math.max(...s) <= gpu.limits.maxTextureDimension2D);

/** Whether the plan's textures, and the buffer the filter is packed through, fit the device. */
const genericFits = (gpu: Backend, plan: GenericPlan): boolean =>
  fits(gpu, plan.input, [plan.pitch, plan.filter[1]]) && 16 * plan.pitch * plan.filter[1] <= gpu.bindingLimit;

const packGrid = ([w, h]: [number, number]): [number, number] => [Math.ceil(w / 8), Math.ceil(h / 8)];

function wanted(gpu: Backend, options: ConvOptions): boolean {
  return gpu.simd && convPath(gpu.caps, gpu.kernelChoice, gpu.simd, options) === 'simd';
}

interface GenericPlan {
  input: [number, number];
  filter: [number, number];
  /** Texels a row of the filter's staging buffer: a multiple of 16, for 256-byte copy rows. */
  pitch: number;
  uniforms: Record<string, number>;
  CB: number;
  blocks: number;
}

function planGeneric(c: Generic): GenericPlan {
  const cin = c.Cin / c.groups;
  const cout = c.Cout / c.groups;
  const CB = channelBlocks(cout);
  const blocks = Math.ceil(cout / (8 * CB));
  const cin4 = Math.ceil(cin / 4);
  const cout4 = blocks * 2 * CB;
  const Hp = (c.Ho - 1) * c.stride[0] + (c.KH - 1) * c.dilation[0] + 1;
  const Wp = (c.Wo - 1) * c.stride[1] + (c.KW - 1) * c.dilation[1] + 1;
  const pitch = Math.ceil((c.groups * cout4) / 16) * 16;
  return {
    input: [c.groups * cin4 * Wp, c.N * Hp],
    filter: [c.groups * cout4, c.KH * c.KW * 4 * cin4],
    pitch,
    CB,
    blocks,
    uniforms: {
      N: c.N, Cin: c.Cin, H: c.H, W: c.W, Cout: c.Cout, Ho: c.Ho, Wo: c.Wo, groups: c.groups, KH: c.KH, KW: c.KW,
      strideH: c.stride[0], strideW: c.stride[1], dilH: c.dilation[0], dilW: c.dilation[1], padH: c.pad[0], padW: c.pad[1],
      cin4, cout4, blocks, Hp, Wp, pitch,
    },
  };
}

/** out = conv(input, filter) + bias on the SIMD path; flip: weight is conv2d's, for its input gradient. */
function runGeneric(gpu: Backend, plan: GenericPlan, c: Generic, input: Tensor, weight: Tensor, bias: Tensor | null, flip: boolean): Tensor {
  const texIn = texture(gpu, 'input', plan.input);
  const texFilter = texture(gpu, 'filter', [plan.pitch, plan.filter[1]]);
  const params = { ...plan.uniforms, flip: flip ? 1 : 0, hasBias: bias ? 1 : 0 };
  launch('conv2d_simd', 'pack_input', { src: input, packed: texIn }, params, packGrid(plan.input));
  // The filter goes through a buffer and a copy: cheaper on lavapipe than storing texels.
  const staged = Tensor.empty([plan.pitch * plan.filter[1] * 4]);
  launch('conv2d_simd', 'pack_filter', { weight, out: staged }, params, packGrid(plan.filter));
  gpu.copyToTexture(staged.view, texFilter, 16 * plan.pitch, [plan.pitch, plan.filter[1]]);
  staged.dispose();
  const out = Tensor.empty([c.N, c.Cout, c.Ho, c.Wo]);
  const workgroups: [number, number] = [Math.ceil((c.N * c.Ho * c.Wo) / (8 * PX)), c.groups * plan.blocks];
  launch('conv2d_simd', 'conv_simd', { out, bias: bias ?? input, texA: texIn, texB: texFilter }, params, workgroups, { PX, CB: plan.CB });
  return out;
}

/** conv2d's forward on the SIMD path, or null where it does not apply. */
export function simdForward(x: Tensor, weight: Tensor, bias: Tensor | null, g: ConvGeometry, options: ConvOptions): Tensor | null {
  const gpu = backend();
  if (!wanted(gpu, options)) return null;
  const c: Generic = { ...g, Cin: g.Ci, Cout: g.Co, pad: g.padding };
  const plan = planGeneric(c);
  if (!genericFits(gpu, plan)) return null;
  return runGeneric(gpu, plan, c, x, weight, bias, false);
}

/**
 * conv2d's input gradient on the SIMD path: at stride 1 it is the convolution of dy with the
 * flipped, transposed filter and padding (K − 1)·dilation − padding. Null where it does not apply.
 */
export function simdBackwardInput(dy: Tensor, weight: Tensor, g: ConvGeometry, bias: Tensor | null, options: ConvOptions): Tensor | null {
  const gpu = backend();
  if (!wanted(gpu, options) || g.stride[0] !== 1 || g.stride[1] !== 1) return null;
  const c: Generic = {
    N: g.N, Cin: g.Co, H: g.Ho, W: g.Wo, Cout: g.Ci, Ho: g.H, Wo: g.W, groups: g.groups, KH: g.KH, KW: g.KW,
    stride: [1, 1], dilation: g.dilation,
    pad: [(g.KH - 1) * g.dilation[0] - g.padding[0], (g.KW - 1) * g.dilation[1] - g.padding[1]],
  };
  const plan = planGeneric(c);
  if (!genericFits(gpu, plan)) return null;
  return runGeneric(gpu, plan, c, dy, weight, bias, true);
}

/** conv2d's weight gradient on the SIMD path, reduced over (n, oh, ow) in a fixed order; null where it does not apply. */
export function simdBackwardWeight(x: Tensor, dy: Tensor, g: ConvGeometry, options: ConvOptions): Tensor | null {
  const gpu = backend();
  if (!wanted(gpu, options)) return null;
  // x is packed once per column phase (kw·dilW mod strideW); a lane's four columns of tap kw
  // are four consecutive components of its phase's SPAN texels, from (kw·dilW div strideW).
  const [strideW, dilW] = [g.stride[1], g.dilation[1]];
  const phases = Math.min(strideW, (g.KW - 1) * dilW + 1);
  const span = Math.floor((Math.floor(((g.KW - 1) * dilW) / strideW) + 3) / 4) + 1;
  const TR = Math.min(MAX_TAP_ROWS, Math.max(1, Math.floor(TAP_BUDGET / g.KW)), Math.floor(MAX_X_TEXELS / (phases * span)));
  if (TR < 1 || TR * g.KW > MAX_TAPS) return null;
  const cout = g.Co / g.groups;
  const CB = TR * g.KW > 9 ? 1 : channelBlocks(cout);
  const blocks = Math.ceil(cout / (8 * CB));
  const rowsK = (g.Ci / g.groups) * g.KH;
  const K = rowsK * g.KW;
  const Wo4 = Math.ceil(g.Wo / 4);
  const Wd4 = Wo4 + span - 1;
  const Hp = (g.Ho - 1) * g.stride[0] + (g.KH - 1) * g.dilation[0] + 1;
  const xSize: [number, number] = [g.Ci * phases * Wd4, g.N * Hp];
  // dy as one run of texels, Wo4 to a row of an image, wrapped at a power-of-two width.
  const dyTexels = g.N * g.Co * g.Ho * Wo4;
  let dyWidth = Math.min(4096, 2 ** Math.floor(Math.log2(gpu.limits.maxTextureDimension2D)));
  const copied = g.Wo % 4 === 0 && dyTexels % 16 === 0;
  if (copied) while (dyTexels % dyWidth !== 0) dyWidth /= 2;
  const dySize: [number, number] = [dyWidth, Math.ceil(dyTexels / dyWidth)];
  if (!fits(gpu, dySize, xSize)) return null;
  const texDy = texture(gpu, 'dy', dySize);
  const texX = texture(gpu, 'x', xSize);
  const dyShift = Math.log2(dyWidth);
  const params = {
    N: g.N, Cin: g.Ci, H: g.H, W: g.W, Cout: g.Co, Ho: g.Ho, Wo: g.Wo, groups: g.groups, KH: g.KH, KW: g.KW,
    strideH: g.stride[0], strideW, dilH: g.dilation[0], dilW, padH: g.padding[0], padW: g.padding[1],
    blocks, Hp, Wo4, phases, Wd4, dyShift,
  };
  // With whole texels per row dy already is that layout: a copy instead of a kernel.
  if (copied) gpu.copyToTexture(dy.view, texDy, 16 * dyWidth, dySize);
  else launch('conv2d_simd', 'pack_dy', { src: dy, packed: texDy }, params, packGrid([g.Ho * Wo4, g.N * g.Co]));
  launch('conv2d_simd', 'pack_x', { src: x, packed: texX }, params, packGrid(xSize));

  // Enough independent row chunks to occupy the device, each still a long fixed-order sum.
  const tiles = Math.ceil(rowsK / (8 * TR)) * g.groups * blocks;
  const rows = g.N * g.Ho;
  const chunks = Math.max(1, Math.min(Math.ceil(256 / tiles), Math.floor(rows / 4), 64));
  const rowsPerChunk = Math.ceil(rows / chunks);
  const used = Math.ceil(rows / rowsPerChunk);
  const shapeDw = [g.Co, g.Ci / g.groups, g.KH, g.KW];
  const dw = Tensor.empty(used === 1 ? shapeDw : [used, g.Co * K]);
  const workgroups: [number, number, number] = [Math.ceil(rowsK / (8 * TR)), g.groups * blocks, used];
  const overrides = { TR, CB, KCOLS: g.KW, DILW: dilW, STRW: strideW };
  launch('conv2d_simd', 'conv_weight_simd', { out: dw, texA: texDy, texB: texX }, { ...params, rowsPerChunk }, workgroups, overrides);
  if (used === 1) return dw;
  const summed = sumAxis(dw, 0);
  dw.dispose();
  const result = summed.alias(shapeDw);
  summed.dispose();
  return result;
}
