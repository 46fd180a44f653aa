// Chooses kernels/matmul.wgsl's tile for a problem: the largest tile that the problem fills,
// smaller ones when a big tile would leave most invocations computing padding.
export interface MatmulPlan {
  entry: 'matmul';
  overrides: { WG_X: number; WG_Y: number; BK: number };
  workgroups: [number, number, number];
}

/** Each invocation computes a 4 × 4 block; a tile is (4·WG_Y) × (4·WG_X). */
const BLOCK = 4;

function side(extent: number): number {
  // 16 invocations (64 outputs) across when the extent fills them, else the smallest power of
  // two that covers it, never below 4 so that a workgroup keeps at least 16 invocations.
  if (extent >= 48) return 16;
  let wg = 4;
  while (wg * BLOCK < extent) wg *= 2;
  return wg;
}

export function planMatmul(M: number, N: number, K: number, batch: number): MatmulPlan {
  const WG_X = side(N);
  const WG_Y = side(M);
  // BK·4·WG must be a multiple of WG_X·WG_Y for the cooperative loads to tile evenly.
  const BK = K >= 32 ? 16 : 8;
  return {
    entry: 'matmul',
    overrides: { WG_X, WG_Y, BK },
    workgroups: [Math.ceil(N / (BLOCK * WG_X)), Math.ceil(M / (BLOCK * WG_Y)), batch],
  };
}
