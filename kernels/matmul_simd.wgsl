// Batched matrix multiply for CPU adapters that run 8 invocations as one SIMD vector (Mesa's
// lavapipe on AVX2), out = op(a) · op(b) as torch.matmul; src/ops/matmul.ts picks it when the
// adapter is software with 8-wide subgroups and the problem is big enough, kernels/matmul.wgsl
// otherwise.
//
// Why it looks like this: lavapipe turns a storage-buffer load whose address differs per lane
// into a branchy per-lane loop (~10 instructions per float), and no load inside a loop counts
// as uniform. A read-only storage-texture load is one 16-byte load per lane plus an in-register
// transpose, so both operands are first packed into rgba32float textures (a plain buffer-to-
// texture copy when the operand's rows are whole texels and 256-byte multiples) and the hot loop
// reads only textures. Values every lane needs (an A element) travel between lanes with
// subgroupShuffle, one vector permute.
//
// Packed layouts (Kp = K rounded up to 4; zeros past K and past N, so the loop needs no bounds):
//   packedA texel (x, z·M + i)  = A_z[i][4x .. 4x+3]     (ceil(K/4) × batchA·M texels)
//   packedB texel (x, z·Kp + k) = B_z[k][4x .. 4x+3]     (ceil(N/4) × batchB·Kp texels)
// Entry points (pack dispatches use 8 × 8 workgroups and grid z = batch item of the operand)
//   pack_a       element by element, any layout. Lanes walk the source's contiguous dimension:
//                grid (ceil(ceil(K/4) / 8), ceil(M / 8)), or (ceil(M / 8), ceil(ceil(K/4) / 8))
//                when transA.
//   pack_a_rows  a vec4 per texel when a is untransposed and K % 4 = 0: grid (ceil(K/4 / 8), ceil(M / 8)).
//   pack_b       element by element, any layout: grid (ceil(ceil(N/4) / 8), ceil(Kp / 8)), or
//                swapped when transB.
//   pack_b_rows  a vec4 per texel when b is untransposed and K % 4 = N % 4 = 0: grid (ceil(N/4 / 8), ceil(K / 8)).
//   matmul_simd  one workgroup is one subgroup of 8 lanes computing a (8·RA) × (32·CB) tile of
//                one batch item: lane l owns columns 4l .. 4l+3 of each 32-column group and every
//                row. Per step of 4 k it loads one A texel per 8 rows (lane l: row 8r + l, four
//                k), spreads each row to all lanes with subgroupShuffle, loads one B texel per
//                k and column group, and does 16 multiply-adds per accumulator vec4.
//                Workgroup 8; dispatch (ceil(M / (8·RA)), ceil(N / (32·CB)), batch).
// Bindings
//   out:      (batch, M, N) read_write                            matmul_simd
//   a, a4:    (batchA, M, K), or (batchA, K, M) when transA, read   pack_a, pack_a_rows
//   b, b4:    (batchB, K, N), or (batchB, N, K) when transB, read   pack_b, pack_b_rows
//   packed:   rgba32float storage texture, write                    the pack entries
//   packedA, packedB: rgba32float storage textures, read            matmul_simd
//   params:   uniform Params (below); strideA / strideB = 0 broadcast one matrix over the batch
// Overrides: RA (1..4) and CB (1..2), the tile; src/ops/matmul-plan.ts picks them.
// Rows past M and columns past N are computed from zero or stale texels and never stored.

enable subgroups;

struct Params {
  M: u32,
  N: u32,
  K: u32,
  transA: u32,
  transB: u32,
  // Elements between batch items of a / b (0: one matrix for every batch item).
  strideA: u32,
  strideB: u32,
  strideOut: u32,
  // Texture rows between batch items of packedA (M, or 0 when broadcast) and packedB (Kp, or 0).
  rowsA: u32,
  rowsB: u32,
}

override RA: u32 = 2u;
override CB: u32 = 2u;

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;
@group(0) @binding(4) var packed: texture_storage_2d<rgba32float, write>;
@group(0) @binding(5) var packedA: texture_storage_2d<rgba32float, read>;
@group(0) @binding(6) var packedB: texture_storage_2d<rgba32float, read>;
@group(0) @binding(7) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read> b4: array<vec4<f32>>;

fn elementA(z: u32, i: u32, k: u32) -> f32 {
  if (k >= params.K) {
    return 0.0;
  }
  let base = z * params.strideA;
  if (params.transA != 0u) {
    return a[base + k * params.M + i];
  }
  return a[base + i * params.K + k];
}

fn elementB(z: u32, k: u32, j: u32) -> f32 {
  if (k >= params.K || j >= params.N) {
    return 0.0;
  }
  let base = z * params.strideB;
  if (params.transB != 0u) {
    return b[base + j * params.K + k];
  }
  return b[base + k * params.N + j];
}

@compute @workgroup_size(8, 8)
fn pack_a(@builtin(global_invocation_id) g: vec3<u32>) {
  // Lanes walk the operand's contiguous dimension: k in a, or i when a is stored transposed.
  let transposed = params.transA != 0u;
  let i = select(g.y, g.x, transposed);
  let x = select(g.x, g.y, transposed);
  let k = x * 4u;
  if (i >= params.M || k >= params.K) {
    return;
  }
  let v = vec4(elementA(g.z, i, k), elementA(g.z, i, k + 1u), elementA(g.z, i, k + 2u), elementA(g.z, i, k + 3u));
  textureStore(packed, vec2(x, g.z * params.M + i), v);
}

@compute @workgroup_size(8, 8)
fn pack_a_rows(@builtin(global_invocation_id) g: vec3<u32>) {
  let k4 = params.K / 4u;
  if (g.y >= params.M || g.x >= k4) {
    return;
  }
  textureStore(packed, vec2(g.x, g.z * params.M + g.y), a4[(g.z * params.strideA) / 4u + g.y * k4 + g.x]);
}

@compute @workgroup_size(8, 8)
fn pack_b(@builtin(global_invocation_id) g: vec3<u32>) {
  // Lanes walk the operand's contiguous dimension: j in b, or k when b is stored transposed.
  let transposed = params.transB != 0u;
  let k = select(g.y, g.x, transposed);
  let x = select(g.x, g.y, transposed);
  let j = x * 4u;
  let kp = (params.K + 3u) / 4u * 4u;
  if (k >= kp || j >= params.N) {
    return;
  }
  let v = vec4(elementB(g.z, k, j), elementB(g.z, k, j + 1u), elementB(g.z, k, j + 2u), elementB(g.z, k, j + 3u));
  textureStore(packed, vec2(x, g.z * kp + k), v);
}

@compute @workgroup_size(8, 8)
fn pack_b_rows(@builtin(global_invocation_id) g: vec3<u32>) {
  let n4 = params.N / 4u;
  if (g.y >= params.K || g.x >= n4) {
    return;
  }
  textureStore(packed, vec2(g.x, g.z * params.K + g.y), b4[(g.z * params.strideB) / 4u + g.y * n4 + g.x]);
}

// Eight rows of a tile, each a vec4 of four adjacent columns in every lane.
alias Block = array<vec4<f32>, 8>;
// The B operand of one 4-k step for one column group: b[q] = B[k + q][4l .. 4l+3].
alias Step = array<vec4<f32>, 4>;

// Lane r of `v` holds A[row r][k .. k+3]; returns row r's four values in every lane, r = 0..7.
fn spread(v: vec4<f32>) -> Block {
  return Block(subgroupShuffle(v, 0u), subgroupShuffle(v, 1u), subgroupShuffle(v, 2u), subgroupShuffle(v, 3u),
               subgroupShuffle(v, 4u), subgroupShuffle(v, 5u), subgroupShuffle(v, 6u), subgroupShuffle(v, 7u));
}

// acc += Σ_q s[q] · step[q]: one row's four k steps into its four columns.
fn rank4(acc: vec4<f32>, s: vec4<f32>, step: Step) -> vec4<f32> {
  return fma(vec4(s.w), step[3], fma(vec4(s.z), step[2], fma(vec4(s.y), step[1], fma(vec4(s.x), step[0], acc))));
}

fn update(acc: Block, s: Block, step: Step) -> Block {
  return Block(rank4(acc[0], s[0], step), rank4(acc[1], s[1], step), rank4(acc[2], s[2], step), rank4(acc[3], s[3], step),
               rank4(acc[4], s[4], step), rank4(acc[5], s[5], step), rank4(acc[6], s[6], step), rank4(acc[7], s[7], step));
}

// Writes one 8-row block: rows i0 .. i0+7, columns j .. j+3 of batch item z.
fn storeBlock(acc: Block, z: u32, i0: u32, j: u32) {
  let base = z * params.strideOut;
  for (var r = 0u; r < 8u; r++) {
    let i = i0 + r;
    if (i < params.M) {
      let o = base + i * params.N + j;
      let v = acc[r];
      if (j < params.N) { out[o] = v.x; }
      if (j + 1u < params.N) { out[o + 1u] = v.y; }
      if (j + 2u < params.N) { out[o + 2u] = v.z; }
      if (j + 3u < params.N) { out[o + 3u] = v.w; }
    }
  }
}

@compute @workgroup_size(8)
fn matmul_simd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(subgroup_invocation_id) lane: u32) {
  // Row tiles vary fastest across workgroups, so consecutive workgroups share one column panel
  // of packedB (the larger stream) while it is still in cache.
  let z = wid.z;
  let i0 = wid.x * 8u * RA;
  let x0 = wid.y * 8u * CB + lane;
  let x1 = x0 + 8u;
  // Texture rows this lane reads: A row i0 + 8r + lane of batch item z, and B rows from kb.
  let ya = z * params.rowsA + i0 + lane;
  let kb = z * params.rowsB;
  let steps = (params.K + 3u) / 4u;
  var acc00: Block; var acc01: Block;
  var acc10: Block; var acc11: Block;
  var acc20: Block; var acc21: Block;
  var acc30: Block; var acc31: Block;
  for (var t = 0u; t < steps; t++) {
    let k = kb + 4u * t;
    let b0 = Step(textureLoad(packedB, vec2(x0, k)), textureLoad(packedB, vec2(x0, k + 1u)),
                  textureLoad(packedB, vec2(x0, k + 2u)), textureLoad(packedB, vec2(x0, k + 3u)));
    var b1: Step;
    if (CB > 1u) {
      b1 = Step(textureLoad(packedB, vec2(x1, k)), textureLoad(packedB, vec2(x1, k + 1u)),
                textureLoad(packedB, vec2(x1, k + 2u)), textureLoad(packedB, vec2(x1, k + 3u)));
    }
    {
      let s = spread(textureLoad(packedA, vec2(t, ya)));
      acc00 = update(acc00, s, b0);
      if (CB > 1u) { acc01 = update(acc01, s, b1); }
    }
    if (RA > 1u) {
      let s = spread(textureLoad(packedA, vec2(t, ya + 8u)));
      acc10 = update(acc10, s, b0);
      if (CB > 1u) { acc11 = update(acc11, s, b1); }
    }
    if (RA > 2u) {
      let s = spread(textureLoad(packedA, vec2(t, ya + 16u)));
      acc20 = update(acc20, s, b0);
      if (CB > 1u) { acc21 = update(acc21, s, b1); }
    }
    if (RA > 3u) {
      let s = spread(textureLoad(packedA, vec2(t, ya + 24u)));
      acc30 = update(acc30, s, b0);
      if (CB > 1u) { acc31 = update(acc31, s, b1); }
    }
  }
  let j0 = x0 * 4u;
  let j1 = x1 * 4u;
  storeBlock(acc00, z, i0, j0);
  if (CB > 1u) { storeBlock(acc01, z, i0, j1); }
  if (RA > 1u) { storeBlock(acc10, z, i0 + 8u, j0); if (CB > 1u) { storeBlock(acc11, z, i0 + 8u, j1); } }
  if (RA > 2u) { storeBlock(acc20, z, i0 + 16u, j0); if (CB > 1u) { storeBlock(acc21, z, i0 + 16u, j1); } }
  if (RA > 3u) { storeBlock(acc30, z, i0 + 24u, j0); if (CB > 1u) { storeBlock(acc31, z, i0 + 24u, j1); } }
}
