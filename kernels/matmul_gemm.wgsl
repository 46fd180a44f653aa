// Batched matrix multiply for GPUs, out = op(a) · op(b) with op = identity or transpose
// (torch.matmul), over workgroup-memory tiles with a register block per invocation.
//
// Entry point
//   matmul_gemm  one workgroup computes a BM × BN tile of one batch item, BM = TM·WG_Y and
//                BN = 4·TN4·WG_X. Each invocation keeps TM × 4·TN4 outputs in registers: rows
//                ty + i·WG_Y, vec4 columns tx + j·WG_X, strided so that neighbouring invocations
//                read neighbouring workgroup words. K advances BK at a time through two k-major
//                tiles, filled cooperatively along each operand's contiguous dimension.
//                Subgroup-free: it runs the same on any subgroup width, or none.
// Bindings
//   out:    (batch, M, N) read_write
//   a:      (batchA, M, K), or (batchA, K, M) when transA; strideA = 0 broadcasts one matrix
//   b:      (batchB, K, N), or (batchB, N, K) when transB; strideB = 0 likewise
//   params: uniform Params { M, N, K, transA, transB, strideA, strideB, strideOut }
// Overrides: WG_X, WG_Y (invocations), TM ≤ 8 (rows per invocation), TN4 ≤ 2 (vec4 columns per
//   invocation), BK (K per step). src/ops/matmul-plan.ts picks them, or the tuner's table.
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

// tileA[k][m] and tileB[k][n], both k-major whatever the operands' layouts, so that the
// multiply-add loop is one loop for every transpose.
var<workgroup> tileA: array<f32, BK * TM * WG_Y>;
var<workgroup> tileB: array<f32, BK * 4 * TN4 * WG_X>;

fn loadA(base: u32, row: u32, col: u32, rows: u32, cols: u32) -> f32 {
  if (row < rows && col < cols) {
    return a[base + row * cols + col];
  }
  return 0.0;
}

fn loadB(base: u32, row: u32, col: u32, rows: u32, cols: u32) -> f32 {
  if (row < rows && col < cols) {
    return b[base + row * cols + col];
  }
  return 0.0;
}

@compute @workgroup_size(WG_X, WG_Y)
fn matmul_gemm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let M = params.M;
  let N = params.N;
  let K = params.K;
  let BM = TM * WG_Y;
  let BN = 4u * TN4 * WG_X;
  let threads = WG_X * WG_Y;
  let me = lid.y * WG_X + lid.x;
  let row0 = wid.y * BM;
  let col0 = wid.x * BN;
  let baseA = wid.z * params.strideA;
  let baseB = wid.z * params.strideB;

  // TM ≤ 8 rows × TN4 ≤ 2 vec4s.
  var acc: array<vec4<f32>, 16>;
  for (var k0 = 0u; k0 < K; k0 += BK) {
    for (var s = me; s < BK * BM; s += threads) {
      if (params.transA == 0u) {
        let k = s % BK;
        let m = s / BK;
        tileA[k * BM + m] = loadA(baseA, row0 + m, k0 + k, M, K);
      } else {
        let m = s % BM;
        let k = s / BM;
        tileA[k * BM + m] = loadA(baseA, k0 + k, row0 + m, K, M);
      }
    }
    for (var s = me; s < BK * BN; s += threads) {
      if (params.transB == 0u) {
        let n = s % BN;
        let k = s / BN;
        tileB[k * BN + n] = loadB(baseB, k0 + k, col0 + n, K, N);
      } else {
        let k = s % BK;
        let n = s / BK;
        tileB[k * BN + n] = loadB(baseB, col0 + n, k0 + k, N, K);
      }
    }
    workgroupBarrier();
    for (var k = 0u; k < BK; k++) {
      var bv: array<vec4<f32>, 2>;
      for (var j = 0u; j < TN4; j++) {
        let at = k * BN + 4u * (lid.x + j * WG_X);
        bv[j] = vec4(tileB[at], tileB[at + 1u], tileB[at + 2u], tileB[at + 3u]);
      }
      for (var i = 0u; i < TM; i++) {
        let av = vec4(tileA[k * BM + lid.y + i * WG_Y]);
        for (var j = 0u; j < TN4; j++) {
          acc[i * 2u + j] = fma(av, bv[j], acc[i * 2u + j]);
        }
      }
    }
    workgroupBarrier();
  }

  let baseOut = wid.z * params.strideOut;
  for (var i = 0u; i < TM; i++) {
    let row = row0 + lid.y + i * WG_Y;
    if (row >= M) {
      continue;
    }
    for (var j = 0u; j < TN4; j++) {
      let col = col0 + 4u * (lid.x + j * WG_X);
      for (var c = 0u; c < 4u; c++) {
        if (col + c < N) {
          out[baseOut + row * N + col + c] = acc[i * 2u + j][c];
        }
      }
    }
  }
}
