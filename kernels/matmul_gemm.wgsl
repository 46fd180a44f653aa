// Batched matrix multiply for GPUs, out = op(a) · op(b) (+ bias, then ReLU when asked) with
// op = identity or transpose (torch.matmul; with bias and ReLU, relu(F.linear)), over
// workgroup-memory tiles with a register block per invocation.
//
// Entry points
//   matmul_gemm       scalar global loads: any shape.
//   matmul_gemm_vec4  vec4 global loads along each operand's contiguous dimension: K (or M when
//                     transA) and N (or K when transB) multiples of 4.
// One workgroup computes a BM × BN tile of one batch item, BM = TM·WG_Y and BN = 4·TN4·WG_X.
// Each invocation keeps TM × 4·TN4 outputs in registers: rows ty + i·WG_Y, vec4 columns
// tx + j·WG_X, strided so that neighbouring invocations read neighbouring workgroup words. K
// advances BK at a time through two k-major tiles filled cooperatively along each operand's
// contiguous dimension; the next step's global loads are issued into registers before the
// current step's multiply-adds (register prefetch), so their latency hides behind them.
// Subgroup-free: it runs the same on any subgroup width, or none.
// Bindings
//   out:    (batch, M, N) read_write
//   a, a4:  (batchA, M, K), or (batchA, K, M) when transA, read; strideA = 0 broadcasts one matrix
//   b, b4:  (batchB, K, N), or (batchB, N, K) when transB, read; strideB = 0 likewise
//   bias:   (N) read, added to every row when hasBias (any tensor otherwise)
//   params: uniform Params { M, N, K, transA, transB, strideA, strideB, strideOut, hasBias, relu }
// Overrides: WG_X, WG_Y (invocations), TM ≤ 8 (rows per invocation), TN4 ≤ 2 (vec4 columns per
//   invocation), BK (K per step, a multiple of 4); each invocation loads at most 8 values of
//   each tile per step: BK·BM and BK·BN ≤ 8·WG_X·WG_Y. src/ops/matmul-plan.ts picks them
//   (gemmTileFits checks them), or the tuner's table.
// Dispatch: (ceil(N / BN), ceil(M / BM), batch).

struct Params {
  M: u32,
  N: u32,
  K: u32,
  transA: u32,
  transB: u32,
  strideA: u32,
  strideB: u32,
  strideOut: u32,
  hasBias: u32,
  relu: u32,
}

override WG_X: u32 = 16;
override WG_Y: u32 = 16;
override TM: u32 = 4;
override TN4: u32 = 1;
override BK: u32 = 16;

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> b4: array<vec4<f32>>;

// tileA[k][m] and tileB[k][n / 4], both k-major whatever the operands' layouts, so that the
// multiply-add loop is one loop for every transpose.
var<workgroup> tileA: array<f32, BK * TM * WG_Y>;
var<workgroup> tileB: array<vec4<f32>, BK * TN4 * WG_X>;

const LOADS = 8u;
alias Block = array<vec4<f32>, 16>;

// Per invocation: its place in the tile, and the next step's loads held in registers.
var<private> me: u32;
var<private> lx: u32;
var<private> ly: u32;
var<private> row0: u32;
var<private> col0: u32;
var<private> baseA: u32;
var<private> baseB: u32;
var<private> ra: array<f32, LOADS>;
var<private> rb: array<f32, LOADS>;
var<private> ra4: array<vec4<f32>, 2>;
var<private> rb4: array<vec4<f32>, 2>;

fn threads() -> u32 {
  return WG_X * WG_Y;
}

fn start(wid: vec3<u32>, lid: vec3<u32>) {
  lx = lid.x;
  ly = lid.y;
  me = lid.y * WG_X + lid.x;
  row0 = wid.y * TM * WG_Y;
  col0 = wid.x * 4u * TN4 * WG_X;
  baseA = wid.z * params.strideA;
  baseB = wid.z * params.strideB;
}

/** Slot i's element of the A tile: (k, m) along a's contiguous dimension. */
fn slotA(s: u32) -> vec2<u32> {
  let BM = TM * WG_Y;
  if (params.transA == 0u) {
    return vec2(s % BK, s / BK);
  }
  return vec2(s / BM, s % BM);
}

/** Slot i's element of the B tile: (k, n) along b's contiguous dimension. */
fn slotB(s: u32) -> vec2<u32> {
  let BN = 4u * TN4 * WG_X;
  if (params.transB == 0u) {
    return vec2(s / BN, s % BN);
  }
  return vec2(s % BK, s / BK);
}

fn fetch(k0: u32) {
  let M = params.M;
  let N = params.N;
  let K = params.K;
  for (var i = 0u; i < LOADS; i++) {
    let s = me + i * threads();
    var va = 0.0;
    var vb = 0.0;
    if (s < BK * TM * WG_Y) {
      let km = slotA(s);
      let k = k0 + km.x;
      let m = row0 + km.y;
      if (k < K && m < M) {
        va = a[baseA + select(m * K + k, k * M + m, params.transA != 0u)];
      }
    }
    if (s < BK * 4u * TN4 * WG_X) {
      let kn = slotB(s);
      let k = k0 + kn.x;
      let n = col0 + kn.y;
      if (k < K && n < N) {
        vb = b[baseB + select(k * N + n, n * K + k, params.transB != 0u)];
      }
    }
    ra[i] = va;
    rb[i] = vb;
  }
}

fn store() {
  let BM = TM * WG_Y;
  for (var i = 0u; i < LOADS; i++) {
    let s = me + i * threads();
    if (s < BK * BM) {
      let km = slotA(s);
      tileA[km.x * BM + km.y] = ra[i];
    }
    if (s < BK * 4u * TN4 * WG_X) {
      let kn = slotB(s);
      tileB[kn.x * TN4 * WG_X + kn.y / 4u][kn.y % 4u] = rb[i];
    }
  }
}

/** The vec4 slots: four consecutive elements along the operand's contiguous dimension. */
fn fetch4(k0: u32) {
  let M = params.M;
  let N = params.N;
  let K = params.K;
  for (var i = 0u; i < 2u; i++) {
    let s = me + i * threads();
    var va = vec4(0.0);
    var vb = vec4(0.0);
    if (s < BK * TM * WG_Y / 4u) {
      let km = slotA4(s);
      let k = k0 + km.x;
      let m = row0 + km.y;
      if (k < K && m < M) {
        va = a4[(baseA + select(m * K + k, k * M + m, params.transA != 0u)) / 4u];
      }
    }
    if (s < BK * TN4 * WG_X) {
      let kn = slotB4(s);
      let k = k0 + kn.x;
      let n = col0 + kn.y;
      if (k < K && n < N) {
        vb = b4[(baseB + select(k * N + n, n * K + k, params.transB != 0u)) / 4u];
      }
    }
    ra4[i] = va;
    rb4[i] = vb;
  }
}

/** (k, m) of the first of vec4 slot s's four elements. */
fn slotA4(s: u32) -> vec2<u32> {
  let BM4 = TM * WG_Y / 4u;
  if (params.transA == 0u) {
    return vec2(4u * (s % (BK / 4u)), s / (BK / 4u));
  }
  return vec2(s / BM4, 4u * (s % BM4));
}

fn slotB4(s: u32) -> vec2<u32> {
  let BN4 = TN4 * WG_X;
  if (params.transB == 0u) {
    return vec2(s / BN4, 4u * (s % BN4));
  }
  return vec2(4u * (s % (BK / 4u)), s / (BK / 4u));
}

fn store4() {
  let BM = TM * WG_Y;
  let BN4 = TN4 * WG_X;
  for (var i = 0u; i < 2u; i++) {
    let s = me + i * threads();
    if (s < BK * BM / 4u) {
      let km = slotA4(s);
      for (var c = 0u; c < 4u; c++) {
        if (params.transA == 0u) {
          tileA[(km.x + c) * BM + km.y] = ra4[i][c];
        } else {
          tileA[km.x * BM + km.y + c] = ra4[i][c];
        }
      }
    }
    if (s < BK * BN4) {
      let kn = slotB4(s);
      if (params.transB == 0u) {
        tileB[kn.x * BN4 + kn.y / 4u] = rb4[i];
      } else {
        for (var c = 0u; c < 4u; c++) {
          tileB[(kn.x + c) * BN4 + kn.y / 4u][kn.y % 4u] = rb4[i][c];
        }
      }
    }
  }
}

/** acc += tileA · tileB for one BK step. */
fn multiply(acc: ptr<function, Block>) {
  let BM = TM * WG_Y;
  let BN4 = TN4 * WG_X;
  for (var k = 0u; k < BK; k++) {
    var bv: array<vec4<f32>, 2>;
    for (var j = 0u; j < TN4; j++) {
      bv[j] = tileB[k * BN4 + lx + j * WG_X];
    }
    for (var i = 0u; i < TM; i++) {
      let av = vec4(tileA[k * BM + ly + i * WG_Y]);
      for (var j = 0u; j < TN4; j++) {
        (*acc)[i * 2u + j] = fma(av, bv[j], (*acc)[i * 2u + j]);
      }
    }
  }
}

/** out = acc (+ bias[col]) (then max(·, 0)), for the outputs inside (M, N). */
fn finish(acc: ptr<function, Block>, batch: u32) {
  let baseOut = batch * params.strideOut;
  for (var i = 0u; i < TM; i++) {
    let row = row0 + ly + i * WG_Y;
    if (row >= params.M) {
      continue;
    }
    for (var j = 0u; j < TN4; j++) {
      let col = col0 + 4u * (lx + j * WG_X);
      for (var c = 0u; c < 4u; c++) {
        if (col + c < params.N) {
          var v = (*acc)[i * 2u + j][c];
          if (params.hasBias != 0u) {
            v += bias[col + c];
          }
          if (params.relu != 0u) {
            v = max(v, 0.0);
          }
          out[baseOut + row * params.N + col + c] = v;
        }
      }
    }
  }
}

// Both entries: prefetch step 0; then per step, the barrier that ends the previous multiply,
// the registers into the tiles, the barrier, the next step's loads, this step's multiply-adds.
@compute @workgroup_size(WG_X, WG_Y)
fn matmul_gemm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  start(wid, lid);
  var acc: Block;
  fetch(0u);
  for (var k0 = 0u; k0 < params.K; k0 += BK) {
    workgroupBarrier();
    store();
    workgroupBarrier();
    if (k0 + BK < params.K) {
      fetch(k0 + BK);
    }
    multiply(&acc);
  }
  finish(&acc, wid.z);
}

@compute @workgroup_size(WG_X, WG_Y)
fn matmul_gemm_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  start(wid, lid);
  var acc: Block;
  fetch4(0u);
  for (var k0 = 0u; k0 < params.K; k0 += BK) {
    workgroupBarrier();
    store4();
    workgroupBarrier();
    if (k0 + BK < params.K) {
      fetch4(k0 + BK);
    }
    multiply(&acc);
  }
  finish(&acc, wid.z);
}
