// Batched matrix multiply, out = op(a) · op(b), op = identity or transpose (torch.matmul, and
// the two gradients of torch.nn.functional.linear with no copies).
//
// Entry point
//   matmul   one workgroup computes a BM × BN tile of one batch item. BM = 4·WG_Y and
//            BN = 4·WG_X; each invocation keeps a 4 × 4 block of the tile in registers.
//            K advances BK columns at a time through workgroup memory, where both operands
//            are stored k-major whatever their layout, so the inner loop is the same for every
//            transpose: per k, one vec4 of A, one vec4 of B, sixteen multiply-adds.
// Bindings
//   out:    (batch, M, N) read_write
//   a:      (batchA, M, K), or (batchA, K, M) when transA; strideA = 0 broadcasts one matrix
//   b:      (batchB, K, N), or (batchB, N, K) when transB; strideB = 0 likewise
//   params: uniform Params { M, N, K, transA, transB, strideA, strideB, strideOut }
// Overrides: WG_X, WG_Y (invocations per workgroup, BN = 4·WG_X, BM = 4·WG_Y), BK (K per step).
//   BK·BM and BK·BN must be multiples of WG_X·WG_Y (src/ops/matmul-plan.ts picks them).
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
override BK: u32 = 16;

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

// tileA[k][m / 4] holds rows m..m+3 of column k; tileB[k][n / 4] columns n..n+3 of row k.
var<workgroup> tileA: array<vec4<f32>, BK * WG_Y>;
var<workgroup> tileB: array<vec4<f32>, BK * WG_X>;

// Element (row, col) of a rows × cols matrix at `base`, or 0 outside it: the zero padding
// lets the inner loop run without bounds checks on any shape.
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
fn matmul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let M = params.M;
  let N = params.N;
  let K = params.K;
  let BM = 4u * WG_Y;
  let BN = 4u * WG_X;
  let threads = WG_X * WG_Y;
  let me = lid.y * WG_X + lid.x;
  let row0 = wid.y * BM;
  let col0 = wid.x * BN;
  let baseA = wid.z * params.strideA;
  let baseB = wid.z * params.strideB;

  var acc: array<vec4<f32>, 4>;
  for (var k0 = 0u; k0 < K; k0 += BK) {
    // Each invocation fills whole vec4s; consecutive invocations walk the operand's contiguous
    // dimension so that global reads coalesce on a GPU.
    for (var s = me; s < BK * WG_Y; s += threads) {
      var v: vec4<f32>;
      if (params.transA == 0u) {
        // a is (M, K): s runs along k fastest.
        let k = s % BK;
        let m = (s / BK) * 4u;
        for (var r = 0u; r < 4u; r++) {
          v[r] = loadA(baseA, row0 + m + r, k0 + k, M, K);
        }
        tileA[k * WG_Y + m / 4u] = v;
      } else {
        // a is (K, M): s runs along m fastest.
        let m = (s % WG_Y) * 4u;
        let k = s / WG_Y;
        for (var r = 0u; r < 4u; r++) {
          v[r] = loadA(baseA, k0 + k, row0 + m + r, K, M);
        }
        tileA[k * WG_Y + m / 4u] = v;
      }
    }
    for (var s = me; s < BK * WG_X; s += threads) {
      var v: vec4<f32>;
      if (params.transB == 0u) {
        // b is (K, N): s runs along n fastest.
        let n = (s % WG_X) * 4u;
        let k = s / WG_X;
        for (var c = 0u; c < 4u; c++) {
          v[c] = loadB(baseB, k0 + k, col0 + n + c, K, N);
        }
        tileB[k * WG_X + n / 4u] = v;
      } else {
        // b is (N, K): s runs along k fastest.
        let k = s % BK;
        let n = (s / BK) * 4u;
        for (var c = 0u; c < 4u; c++) {
          v[c] = loadB(baseB, col0 + n + c, k0 + k, N, K);
        }
        tileB[k * WG_X + n / 4u] = v;
      }
    }
    workgroupBarrier();

    for (var k = 0u; k < BK; k++) {
      let av = tileA[k * WG_Y + lid.y];
      let bv = tileB[k * WG_X + lid.x];
      acc[0] = fma(vec4(av.x), bv, acc[0]);
      acc[1] = fma(vec4(av.y), bv, acc[1]);
      acc[2] = fma(vec4(av.z), bv, acc[2]);
      acc[3] = fma(vec4(av.w), bv, acc[3]);
    }
    workgroupBarrier();
  }

  let col = col0 + lid.x * 4u;
  let baseOut = wid.z * params.strideOut;
  for (var r = 0u; r < 4u; r++) {
    let row = row0 + lid.y * 4u + r;
    if (row < M) {
      for (var c = 0u; c < 4u; c++) {
        if (col + c < N) {
          out[baseOut + row * N + col + c] = acc[r][c];
        }
      }
    }
  }
}
