// Chooses how a matmul runs: on a GPU (or with DAWNET_KERNELS=gemm) the register-blocked GEMM
// (kernels/matmul_gemm.wgsl); on a CPU adapter the SIMD path (kernels/matmul_simd.wgsl: operands
// packed into textures, 8-lane subgroups) where it applies, else the tiled workgroup-memory
// kernel (kernels/matmul.wgsl). Pure: shapes and the device's capabilities in, a plan out.
import { simdCapable, type DeviceCapabilities, type KernelChoice } from '../gpu/capabilities.js';
import type { GemmTile, TunedChoice } from '../gpu/tuning.js';

/** What the device offers the planner; src/ops/matmul.ts derives it from the open backend. */
export interface MatmulTarget {
  /** A CPU adapter (lavapipe) whose subgroups are exactly one 8-wide SIMD vector. */
  simd: boolean;
  /** The device's maxTextureDimension2D, which bounds the packed operands. */
  maxTextureSize: number;
  /** The GPU kernels by default: a hardware adapter, or DAWNET_KERNELS=gemm. */
  gemm?: boolean;
}

/** What planMatmul needs to know of the device. */
export const matmulTarget = (caps: DeviceCapabilities, choice: KernelChoice): MatmulTarget => ({
  simd: simdCapable(caps),
  maxTextureSize: caps.maxTextureDimension2D,
  gemm: choice === 'gemm' || !caps.software,
});

export type { GemmTile };

export interface GemmPlan {
  path: 'gemm';
  /** vec4 global loads where both operands' contiguous dimensions are multiples of 4. */
  entry: 'matmul_gemm' | 'matmul_gemm_vec4';
  overrides: GemmTile;
  workgroups: [number, number, number];
}

export interface TiledPlan {
  path: 'tiled';
  entry: 'matmul';
  overrides: { WG_X: number; WG_Y: number; BK: number };
  workgroups: [number, number, number];
}

export interface SimdPlan {
  path: 'simd';
  overrides: { RA: number; CB: number };
  workgroups: [number, number, number];
  /** Texels per packed row and packed rows of A (all batch items) and of B. */
  textureA: [number, number];
  textureB: [number, number];
  /** K rounded up to the 4-wide steps of the kernel; rows per batch item of packed B. */
  kPadded: number;
}

export type MatmulPlan = TiledPlan | SimdPlan | GemmPlan;

export const tileRows = (t: GemmTile): number => t.TM * t.WG_Y;
export const tileCols = (t: GemmTile): number => 4 * t.TN4 * t.WG_X;
/** A GEMM tile as BMxBN/TMxTN/BK, for benchmark notes and the tuner's log. */
export const gemmLabel = (t: GemmTile): string => `${tileRows(t)}x${tileCols(t)}/${t.TM}x${4 * t.TN4}/${t.BK}`;

/**
 * The GEMM tile for an output of rows × cols (× count independent items): 128 × 128 with an
 * 8 × 8 register block where there are enough such tiles to fill a large GPU (≥ 64), else
 * 64 × 64 with 4 × 4; a thin side takes 8 invocations (32 rows or columns) instead of 16.
 * Each keeps 256 invocations or fewer and 8 KiB of workgroup memory.
 */
export function gemmTile(rows: number, cols: number, count = 1): GemmTile {
  if (rows >= 128 && cols >= 128 && Math.ceil(rows / 128) * Math.ceil(cols / 128) * count >= 64) {
    return { WG_X: 16, WG_Y: 16, TM: 8, TN4: 2, BK: 8 };
  }
  return { WG_X: cols <= 32 ? 8 : 16, WG_Y: rows <= 32 ? 8 : 16, TM: 4, TN4: 1, BK: 16 };
}

/**
 * Why a tile cannot run in the GEMM kernels, or null when it can: each invocation stages at most
 * 8 values of each operand per step (BK·BM and BK·BN ≤ 8·threads), the register block is at most
 * 8 × 8, BK and BM are whole vec4s, and the workgroup stays within WebGPU's defaults: 256
 * invocations, and so at most 16 KiB of tiles.
 */
export function gemmTileProblem(t: GemmTile): string | null {
  const threads = t.WG_X * t.WG_Y;
  if (![t.WG_X, t.WG_Y, t.TM, t.TN4, t.BK].every((v) => Number.isInteger(v) && v >= 1)) return 'every field must be a positive integer';
  if (threads > 256) return `${threads} invocations, over 256`;
  if (t.TM > 8 || t.TN4 > 2) return `a ${t.TM} × ${4 * t.TN4} register block, over 8 × 8`;
  if (t.BK % 4 !== 0 || tileRows(t) % 4 !== 0) return 'BK and BM = TM·WG_Y must be multiples of 4';
  if (t.BK * Math.max(tileRows(t), tileCols(t)) > 8 * threads) return `BK·BM and BK·BN must be at most 8 per invocation (${8 * threads})`;
  return null;
}

/** Whether the GEMM kernels can load both operands as vec4s: a's and b's contiguous extents are multiples of 4. */
export const gemmVec4 = (M: number, N: number, K: number, transA: boolean, transB: boolean): boolean =>
  (transA ? M : K) % 4 === 0 && (transB ? K : N) % 4 === 0;

export function planGemm(M: number, N: number, batch: number, tile: GemmTile = gemmTile(M, N, batch), vec4 = false): GemmPlan {
  const problem = gemmTileProblem(tile);
  if (problem) throw new Error(`matmul: GEMM tile ${JSON.stringify(tile)} cannot run: ${problem}`);
  return {
    path: 'gemm',
    entry: vec4 ? 'matmul_gemm_vec4' : 'matmul_gemm',
    overrides: tile,
    workgroups: [Math.ceil(N / tileCols(tile)), Math.ceil(M / tileRows(tile)), batch],
  };
}

/** Each tiled invocation computes a 4 × 4 block; a tile is (4·WG_Y) × (4·WG_X). */
const BLOCK = 4;

/**
 * The SIMD tile: 8·RA rows by 32·CB columns per 8-lane workgroup. 16 × 64 keeps the loop body
 * small enough for the instruction cache and compiles in about a second; bigger tiles load less
 * per multiply-add but spill and compile for many seconds (bench/matmul.bench.ts, SWEEP=1).
 */
const SIMD_TILE = { RA: 2, CB: 2 };

/**
 * Below this many multiply-adds the SIMD path's extra dispatches (packing) cost more than its
 * faster loop saves: on lavapipe 32³ takes 0.22 ms tiled and 0.34 ms SIMD, 48³ 0.99 and 0.60.
 */
const SIMD_MIN_WORK = 1 << 16;

function side(extent: number): number {
  // 16 invocations (64 outputs) across when the extent fills them, else the smallest power of
  // two that covers it, never below 4 so that a workgroup keeps at least 16 invocations.
  if (extent >= 48) return 16;
  let wg = 4;
  while (wg * BLOCK < extent) wg *= 2;
  return wg;
}

export function planTiled(M: number, N: number, K: number, batch: number): TiledPlan {
  const WG_X = side(N);
  const WG_Y = side(M);
  // BK·4·WG must be a multiple of WG_X·WG_Y for the cooperative loads to tile evenly.
  const BK = K >= 32 ? 16 : 8;
  return {
    path: 'tiled',
    entry: 'matmul',
    overrides: { WG_X, WG_Y, BK },
    workgroups: [Math.ceil(N / (BLOCK * WG_X)), Math.ceil(M / (BLOCK * WG_Y)), batch],
  };
}

/** Pins what the planner would choose, for tests and benchmarks. */
export interface MatmulOptions {
  path?: MatmulPlan['path'];
  /** The GEMM tile, from the tuner's table or a benchmark's sweep. */
  gemmTile?: GemmTile;
  /** The SIMD tile, RA ∈ 1..4 and CB ∈ 1..2 (kernels/matmul_simd.wgsl). */
  tile?: SimdPlan['overrides'];
}

/** The SIMD plan, or null when a packed operand would exceed the device's texture size. */
export function planSimd(
  M: number,
  N: number,
  K: number,
  batch: number,
  batchA: number,
  batchB: number,
  maxTextureSize: number,
  tile: SimdPlan['overrides'] = SIMD_TILE,
): SimdPlan | null {
  const kPadded = Math.ceil(K / 4) * 4;
  const textureA: [number, number] = [kPadded / 4, batchA * M];
  const textureB: [number, number] = [Math.ceil(N / 4), batchB * kPadded];
  if (Math.max(...textureA, ...textureB) > maxTextureSize) return null;
  const { RA, CB } = tile;
  return {
    path: 'simd',
    overrides: { RA, CB },
    workgroups: [Math.ceil(M / (8 * RA)), Math.ceil(N / (32 * CB)), batch],
    textureA,
    textureB,
    kPadded,
  };
}

/** Options with the tuner's entry for this shape, where it has one and nothing is pinned. */
export function withTuned(options: MatmulOptions, tuned: TunedChoice | undefined): MatmulOptions {
  if (!tuned || options.path) return options;
  return { path: tuned.path as MatmulPlan['path'], gemmTile: tuned.gemmTile };
}

/**
 * batchA / batchB: how many distinct matrices each operand holds (1 when broadcast); trans: the
 * operands are stored transposed. options.path = 'simd' still needs a capable target and
 * textures that fit.
 */
export function planMatmul(
  M: number,
  N: number,
  K: number,
  batch: number,
  target: MatmulTarget,
  batchA = batch,
  batchB = batch,
  options: MatmulOptions = {},
  trans: [boolean, boolean] = [false, false],
): MatmulPlan {
  if (options.path === 'gemm' || (!options.path && target.gemm)) return planGemm(M, N, batch, options.gemmTile, gemmVec4(M, N, K, ...trans));
  const wantSimd = options.path ? options.path === 'simd' : M * N * K * batch >= SIMD_MIN_WORK;
  if (target.simd && wantSimd) {
    const simd = planSimd(M, N, K, batch, batchA, batchB, target.maxTextureSize, options.tile);
    if (simd) return simd;
  }
  return planTiled(M, N, K, batch);
}
