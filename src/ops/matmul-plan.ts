// Chooses how a matmul runs: the SIMD path (kernels/matmul_simd.wgsl: operands packed into
// textures, 8-lane subgroups) on CPU adapters that support it, the tiled workgroup-memory
// kernel (kernels/matmul.wgsl) everywhere else and wherever the SIMD path's textures would not fit.

/** What the device offers the planner; src/ops/matmul.ts derives it from the open backend. */
export interface MatmulTarget {
  /** A CPU adapter (lavapipe) whose subgroups are exactly one 8-wide SIMD vector. */
  simd: boolean;
  /** The device's maxTextureDimension2D, which bounds the packed operands. */
  maxTextureSize: number;
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

export type MatmulPlan = TiledPlan | SimdPlan;

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

/**
 * batchA / batchB: how many distinct matrices each operand holds (1 when broadcast).
 * options.path = 'simd' still needs a capable target and textures that fit.
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
): MatmulPlan {
  const wantSimd = options.path ? options.path === 'simd' : M * N * K * batch >= SIMD_MIN_WORK;
  if (target.simd && wantSimd) {
    const simd = planSimd(M, N, K, batch, batchA, batchB, target.maxTextureSize, options.tile);
    if (simd) return simd;
  }
  return planTiled(M, N, K, batch);
}
