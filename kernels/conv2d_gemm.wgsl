// 2-D convolution and its two gradients for GPUs, as implicit GEMMs over workgroup-memory tiles
// with a register block per invocation (torch.nn.functional.conv2d: NCHW input, OIHW weight,
// stride, padding, dilation, groups). The transposed convolution uses the same entries with the
// roles exchanged, as kernels/conv2d.wgsl (src/ops/conv.ts).
//
// Names: x (N, Ci, H, W) → y (N, Co, Ho, Wo), weight (Co, Ci/groups, KH, KW); a tap is one
// (ci, kh, kw) of a filter, taps = Ci/groups · KH · KW. Per group g, each entry is one GEMM
// out[row][col] = Σ_k A[row][k] · B[k][col], its operands gathered on the fly (no im2col buffer):
//   conv2d_forward          rows co, cols p = (n, oh, ow), k = tap:  A = weight, B = x gathered;
//                           y = GEMM + bias[co]
//   conv2d_backward_input   rows ci, cols p = (n, ih, iw), k = (co, kh, kw): A = weight read
//                           transposed, B = dy at (ih + pad − kh·dil) / stride where that is whole;
//                           dx = GEMM (+ bias[ci] for conv_transpose2d)
//   conv2d_backward_weight  rows co, cols tap, k = p over one chunk of rowsPerChunk output pixels:
//                           A = dy, B = x gathered; chunk c writes dw[c] (split-K), and the
//                           chunks are summed afterwards in increasing order (fixed order)
// One workgroup computes a BM × BN tile, BM = TM·WG_Y, BN = 4·TN4·WG_X; an invocation keeps
// TM × 4·TN4 outputs in registers (rows ty + i·WG_Y, vec4 columns tx + j·WG_X). Subgroup-free:
// the same on any subgroup width, or none.
// Bindings
//   y:      (N, Co, Ho, Wo) read_write                 [conv2d_forward]
//   x:      (N, Ci, H, W) read                         [conv2d_forward, conv2d_backward_weight]
//   weight: (Co, Ci/groups, KH, KW) read               [conv2d_forward, conv2d_backward_input]
//   bias:   (Co), or (Ci) for backward_input; any tensor when hasBias = 0
//   dx:     (N, Ci, H, W) read_write                   [conv2d_backward_input]
//   dy:     (N, Co, Ho, Wo) read                       [conv2d_backward_input, conv2d_backward_weight]
//   dw:     (chunks, Co, taps) read_write              [conv2d_backward_weight]
//   params: uniform Params (below)
// Overrides: WG_X, WG_Y (invocations), TM ≤ 8, TN4 ≤ 2, BK (k per step); src/ops/conv-plan.ts.
// Dispatch: (ceil(cols / BN), ceil(rows / BM), groups), and groups · chunks for the weight
//   gradient (z = chunk · groups + g).

struct Params {
  N: u32,
  Ci: u32,
  H: u32,
  W: u32,
  Co: u32,
  Ho: u32,
  Wo: u32,
  groups: u32,
  KH: u32,
  KW: u32,
  strideH: u32,
  strideW: u32,
  padH: u32,
  padW: u32,
  dilH: u32,
  dilW: u32,
  hasBias: u32,
  // conv2d_backward_weight: output pixels (n, oh, ow) summed by one chunk.
  rowsPerChunk: u32,
}

override WG_X: u32 = 16;
override WG_Y: u32 = 16;
override TM: u32 = 4;
override TN4: u32 = 1;
override BK: u32 = 16;

@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;
@group(0) @binding(5) var<storage, read> dy: array<f32>;
@group(0) @binding(6) var<storage, read_write> dw: array<f32>;
@group(0) @binding(7) var<uniform> params: Params;

// tileA[k][row] and tileB[k][col], k-major.
var<workgroup> tileA: array<f32, BK * TM * WG_Y>;
var<workgroup> tileB: array<f32, BK * 4 * TN4 * WG_X>;

const TM_MAX = 8u;
const TN4_MAX = 2u;
alias Block = array<vec4<f32>, 16>;

/** acc += tileA · tileB for one BK step; the caller brackets it with barriers. */
fn multiply(acc: ptr<function, Block>, tx: u32, ty: u32) {
  let BM = TM * WG_Y;
  let BN = 4u * TN4 * WG_X;
  for (var k = 0u; k < BK; k++) {
    var bv: array<vec4<f32>, TN4_MAX>;
    for (var j = 0u; j < TN4; j++) {
      let at = k * BN + 4u * (tx + j * WG_X);
      bv[j] = vec4(tileB[at], tileB[at + 1u], tileB[at + 2u], tileB[at + 3u]);
    }
    for (var i = 0u; i < TM; i++) {
      let av = vec4(tileA[k * BM + ty + i * WG_Y]);
      for (var j = 0u; j < TN4; j++) {
        (*acc)[i * TN4_MAX + j] = fma(av, bv[j], (*acc)[i * TN4_MAX + j]);
      }
    }
  }
}

/** x[n, ci, ih, iw] with ih, iw the tap's input position for output (oh, ow), or 0 in the padding. */
fn gatherX(n: u32, ci: u32, kh: u32, kw: u32, oh: u32, ow: u32) -> f32 {
  let ih = i32(oh * params.strideH + kh * params.dilH) - i32(params.padH);
  let iw = i32(ow * params.strideW + kw * params.dilW) - i32(params.padW);
  if (ih < 0 || iw < 0 || ih >= i32(params.H) || iw >= i32(params.W)) {
    return 0.0;
  }
  return x[((n * params.Ci + ci) * params.H + u32(ih)) * params.W + u32(iw)];
}

@compute @workgroup_size(WG_X, WG_Y)
fn conv2d_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let BM = TM * WG_Y;
  let BN = 4u * TN4 * WG_X;
  let threads = WG_X * WG_Y;
  let me = lid.y * WG_X + lid.x;
  let cin = params.Ci / params.groups;
  let cout = params.Co / params.groups;
  let taps = cin * params.KH * params.KW;
  let kk = params.KH * params.KW;
  let plane = params.Ho * params.Wo;
  let cols = params.N * plane;
  let g = wid.z;
  let row0 = wid.y * BM;
  let col0 = wid.x * BN;

  var acc: Block;
  for (var k0 = 0u; k0 < taps; k0 += BK) {
    // weight rows are contiguous along the taps.
    for (var s = me; s < BK * BM; s += threads) {
      let k = k0 + s % BK;
      let co = row0 + s / BK;
      var v = 0.0;
      if (k < taps && co < cout) {
        v = weight[(g * cout + co) * taps + k];
      }
      tileA[(s % BK) * BM + s / BK] = v;
    }
    // x gathered along output pixels, which are the nearest to contiguous.
    for (var s = me; s < BK * BN; s += threads) {
      let p = col0 + s % BN;
      let k = k0 + s / BN;
      var v = 0.0;
      if (k < taps && p < cols) {
        let n = p / plane;
        let r = p % plane;
        let c = k / kk;
        let t = k % kk;
        v = gatherX(n, g * cin + c, t / params.KW, t % params.KW, r / params.Wo, r % params.Wo);
      }
      tileB[s] = v;
    }
    workgroupBarrier();
    multiply(&acc, lid.x, lid.y);
    workgroupBarrier();
  }

  for (var i = 0u; i < TM; i++) {
    let co = row0 + lid.y + i * WG_Y;
    if (co >= cout) {
      continue;
    }
    let oc = g * cout + co;
    var b = 0.0;
    if (params.hasBias != 0u) {
      b = bias[oc];
    }
    for (var j = 0u; j < TN4; j++) {
      let col = col0 + 4u * (lid.x + j * WG_X);
      for (var c = 0u; c < 4u; c++) {
        let p = col + c;
        if (p < cols) {
          y[((p / plane) * params.Co + oc) * plane + p % plane] = acc[i * TN4_MAX + j][c] + b;
        }
      }
    }
  }
}

@compute @workgroup_size(WG_X, WG_Y)
fn conv2d_backward_input(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let BM = TM * WG_Y;
  let BN = 4u * TN4 * WG_X;
  let threads = WG_X * WG_Y;
  let me = lid.y * WG_X + lid.x;
  let cin = params.Ci / params.groups;
  let cout = params.Co / params.groups;
  let kk = params.KH * params.KW;
  let depth = cout * kk;
  let plane = params.H * params.W;
  let cols = params.N * plane;
  let g = wid.z;
  let row0 = wid.y * BM;
  let col0 = wid.x * BN;

  var acc: Block;
  for (var k0 = 0u; k0 < depth; k0 += BK) {
    // A[ci][(co, t)] = weight[g·cout + co][ci][t]: consecutive k are consecutive taps t.
    for (var s = me; s < BK * BM; s += threads) {
      let k = k0 + s % BK;
      let ci = row0 + s / BK;
      var v = 0.0;
      if (k < depth && ci < cin) {
        v = weight[((g * cout + k / kk) * cin + ci) * kk + k % kk];
      }
      tileA[(s % BK) * BM + s / BK] = v;
    }
    // B[(co, kh, kw)][(n, ih, iw)] = dy[n, co, oh, ow] where ih = oh·stride − pad + kh·dil.
    for (var s = me; s < BK * BN; s += threads) {
      let p = col0 + s % BN;
      let k = k0 + s / BN;
      var v = 0.0;
      if (k < depth && p < cols) {
        let n = p / plane;
        let r = p % plane;
        let t = k % kk;
        let th = i32(r / params.W + params.padH) - i32((t / params.KW) * params.dilH);
        let tw = i32(r % params.W + params.padW) - i32((t % params.KW) * params.dilW);
        if (th >= 0 && tw >= 0 && u32(th) % params.strideH == 0u && u32(tw) % params.strideW == 0u) {
          let oh = u32(th) / params.strideH;
          let ow = u32(tw) / params.strideW;
          if (oh < params.Ho && ow < params.Wo) {
            v = dy[((n * params.Co + g * cout + k / kk) * params.Ho + oh) * params.Wo + ow];
          }
        }
      }
      tileB[s] = v;
    }
    workgroupBarrier();
    multiply(&acc, lid.x, lid.y);
    workgroupBarrier();
  }

  for (var i = 0u; i < TM; i++) {
    let ci = row0 + lid.y + i * WG_Y;
    if (ci >= cin) {
      continue;
    }
    let ic = g * cin + ci;
    var b = 0.0;
    if (params.hasBias != 0u) {
      b = bias[ic];
    }
    for (var j = 0u; j < TN4; j++) {
      let col = col0 + 4u * (lid.x + j * WG_X);
      for (var c = 0u; c < 4u; c++) {
        let p = col + c;
        if (p < cols) {
          dx[((p / plane) * params.Ci + ic) * plane + p % plane] = acc[i * TN4_MAX + j][c] + b;
        }
      }
    }
  }
}

@compute @workgroup_size(WG_X, WG_Y)
fn conv2d_backward_weight(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let BM = TM * WG_Y;
  let BN = 4u * TN4 * WG_X;
  let threads = WG_X * WG_Y;
  let me = lid.y * WG_X + lid.x;
  let cin = params.Ci / params.groups;
  let cout = params.Co / params.groups;
  let kk = params.KH * params.KW;
  let taps = cin * kk;
  let plane = params.Ho * params.Wo;
  let g = wid.z % params.groups;
  let chunk = wid.z / params.groups;
  let p0 = chunk * params.rowsPerChunk;
  let p1 = min(p0 + params.rowsPerChunk, params.N * plane);
  let row0 = wid.y * BM;
  let col0 = wid.x * BN;

  var acc: Block;
  for (var k0 = p0; k0 < p1; k0 += BK) {
    // A[co][p] = dy[n, g·cout + co, oh, ow]: consecutive p are contiguous within an image.
    for (var s = me; s < BK * BM; s += threads) {
      let p = k0 + s % BK;
      let co = row0 + s / BK;
      var v = 0.0;
      if (p < p1 && co < cout) {
        v = dy[((p / plane) * params.Co + g * cout + co) * plane + p % plane];
      }
      tileA[(s % BK) * BM + s / BK] = v;
    }
    // B[p][tap] = x gathered at the tap's input position for output pixel p.
    for (var s = me; s < BK * BN; s += threads) {
      let t = col0 + s % BN;
      let p = k0 + s / BN;
      var v = 0.0;
      if (p < p1 && t < taps) {
        let r = p % plane;
        let u = t % kk;
        v = gatherX(p / plane, g * cin + t / kk, u / params.KW, u % params.KW, r / params.Wo, r % params.Wo);
      }
      tileB[s] = v;
    }
    workgroupBarrier();
    multiply(&acc, lid.x, lid.y);
    workgroupBarrier();
  }

  let base = chunk * params.Co * taps;
  for (var i = 0u; i < TM; i++) {
    let co = row0 + lid.y + i * WG_Y;
    if (co >= cout) {
      continue;
    }
    for (var j = 0u; j < TN4; j++) {
      let col = col0 + 4u * (lid.x + j * WG_X);
      for (var c = 0u; c < 4u; c++) {
        if (col + c < taps) {
          dw[base + (g * cout + co) * taps + col + c] = acc[i * TN4_MAX + j][c];
        }
      }
    }
  }
}
