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
// The _vec4 entries load A as vec4s along k: the weight when taps is a multiple of 4 (forward),
// dy when Ho·Wo is (weight gradient, chunks of whole vec4s); the gathered operands stay scalar.
// One workgroup computes a BM × BN tile, BM = TM·WG_Y, BN = 4·TN4·WG_X; an invocation keeps
// TM × 4·TN4 outputs in registers (rows ty + i·WG_Y, vec4 columns tx + j·WG_X). The next k
// step's global loads go into registers before the current step's multiply-adds (register
// prefetch). y and dx get bias, then ReLU when relu = 1, in the epilogue (relu(conv2d(x) + b)).
// Subgroup-free: the same on any subgroup width, or none.
// Bindings
//   y:      (N, Co, Ho, Wo) read_write                 [conv2d_forward]
//   x:      (N, Ci, H, W) read                         [conv2d_forward, conv2d_backward_weight]
//   weight: (Co, Ci/groups, KH, KW) read               [conv2d_forward, conv2d_backward_input]
//   weight4: the same as vec4s                         [conv2d_forward_vec4]
//   bias:   (Co), or (Ci) for backward_input; any tensor when hasBias = 0
//   dx:     (N, Ci, H, W) read_write                   [conv2d_backward_input]
//   dy:     (N, Co, Ho, Wo) read                       [conv2d_backward_input, conv2d_backward_weight]
//   dy4:    the same as vec4s                          [conv2d_backward_weight_vec4]
//   dw:     (chunks, Co, taps) read_write              [conv2d_backward_weight]
//   params: uniform Params (below)
// Overrides: WG_X, WG_Y (invocations), TM ≤ 8, TN4 ≤ 2, BK (k per step, a multiple of 4), with
//   BK·BM and BK·BN ≤ 8·WG_X·WG_Y (gemmTileProblem in src/ops/matmul-plan.ts); src/ops/conv-plan.ts.
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
  relu: u32,
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
@group(0) @binding(8) var<storage, read> weight4: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read> dy4: array<vec4<f32>>;

// tileA[k][row] and tileB[k][col / 4], k-major.
var<workgroup> tileA: array<f32, BK * TM * WG_Y>;
var<workgroup> tileB: array<vec4<f32>, BK * TN4 * WG_X>;

const TN4_MAX = 2u;
const LOADS = 8u;
alias Block = array<vec4<f32>, 16>;

// Per invocation: its place in the tile, its group, and the next step's loads in registers.
// Slot i of A is tile element s = me + i·threads at (k = s % BK, row = s / BK); of B at
// (col = s % BN, k = s / BN), so that neighbouring invocations load along the k of A (the
// weight's taps, dy's pixels) and along the columns of B (output or input pixels, taps).
var<private> me: u32;
var<private> lx: u32;
var<private> ly: u32;
var<private> row0: u32;
var<private> col0: u32;
var<private> grp: u32;
var<private> ra: array<f32, LOADS>;
var<private> rb: array<f32, LOADS>;
var<private> ra4: array<vec4<f32>, 2>;

fn start(wid: vec3<u32>, lid: vec3<u32>) {
  lx = lid.x;
  ly = lid.y;
  me = lid.y * WG_X + lid.x;
  row0 = wid.y * TM * WG_Y;
  col0 = wid.x * 4u * TN4 * WG_X;
  grp = wid.z % params.groups;
}

fn slots() -> u32 {
  return WG_X * WG_Y;
}

/** The registers into the tiles; ra4 instead of ra when vec4. */
fn store(vec4: bool) {
  let BM = TM * WG_Y;
  let BN = 4u * TN4 * WG_X;
  for (var i = 0u; i < LOADS; i++) {
    let s = me + i * slots();
    if (!vec4 && s < BK * BM) {
      tileA[(s % BK) * BM + s / BK] = ra[i];
    }
    if (vec4 && i < 2u && s < BK * BM / 4u) {
      let k = 4u * (s % (BK / 4u));
      for (var c = 0u; c < 4u; c++) {
        tileA[(k + c) * BM + s / (BK / 4u)] = ra4[i][c];
      }
    }
    if (s < BK * BN) {
      tileB[s / 4u][s % 4u] = rb[i];
    }
  }
}

/** acc += tileA · tileB for one BK step. */
fn multiply(acc: ptr<function, Block>) {
  let BM = TM * WG_Y;
  let BN4 = TN4 * WG_X;
  for (var k = 0u; k < BK; k++) {
    var bv: array<vec4<f32>, TN4_MAX>;
    for (var j = 0u; j < TN4; j++) {
      bv[j] = tileB[k * BN4 + lx + j * WG_X];
    }
    for (var i = 0u; i < TM; i++) {
      let av = vec4(tileA[k * BM + ly + i * WG_Y]);
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

/** bias[channel], then ReLU, as the forward passes store them. */
fn epilogue(v: f32, channel: u32) -> f32 {
  var r = v;
  if (params.hasBias != 0u) {
    r += bias[channel];
  }
  if (params.relu != 0u) {
    r = max(r, 0.0);
  }
  return r;
}

// ---- conv2d_forward: rows co, cols p = (n, oh, ow), k = tap ------------------------------

/** B[tap][p] = x gathered at the tap's input position for output pixel p. */
fn fetchForwardB(k0: u32) {
  let cin = params.Ci / params.groups;
  let taps = cin * params.KH * params.KW;
  let kk = params.KH * params.KW;
  let plane = params.Ho * params.Wo;
  let BN = 4u * TN4 * WG_X;
  for (var i = 0u; i < LOADS; i++) {
    let s = me + i * slots();
    let p = col0 + s % BN;
    let k = k0 + s / BN;
    var v = 0.0;
    if (s < BK * BN && k < taps && p < params.N * plane) {
      let r = p % plane;
      let t = k % kk;
      v = gatherX(p / plane, grp * cin + k / kk, t / params.KW, t % params.KW, r / params.Wo, r % params.Wo);
    }
    rb[i] = v;
  }
}

/** A[co][tap] = weight[g·cout + co][tap]: rows contiguous along the taps. */
fn fetchForward(k0: u32) {
  let cout = params.Co / params.groups;
  let taps = (params.Ci / params.groups) * params.KH * params.KW;
  for (var i = 0u; i < LOADS; i++) {
    let s = me + i * slots();
    let k = k0 + s % BK;
    let co = row0 + s / BK;
    var v = 0.0;
    if (s < BK * TM * WG_Y && k < taps && co < cout) {
      v = weight[(grp * cout + co) * taps + k];
    }
    ra[i] = v;
  }
  fetchForwardB(k0);
}

fn fetchForward4(k0: u32) {
  let cout = params.Co / params.groups;
  let taps = (params.Ci / params.groups) * params.KH * params.KW;
  for (var i = 0u; i < 2u; i++) {
    let s = me + i * slots();
    let k = k0 + 4u * (s % (BK / 4u));
    let co = row0 + s / (BK / 4u);
    var v = vec4(0.0);
    if (s < BK * TM * WG_Y / 4u && k < taps && co < cout) {
      v = weight4[((grp * cout + co) * taps + k) / 4u];
    }
    ra4[i] = v;
  }
  fetchForwardB(k0);
}

fn storeForward(acc: ptr<function, Block>) {
  let cout = params.Co / params.groups;
  let plane = params.Ho * params.Wo;
  for (var i = 0u; i < TM; i++) {
    let co = row0 + ly + i * WG_Y;
    if (co >= cout) {
      continue;
    }
    let oc = grp * cout + co;
    for (var j = 0u; j < TN4; j++) {
      let col = col0 + 4u * (lx + j * WG_X);
      for (var c = 0u; c < 4u; c++) {
        let p = col + c;
        if (p < params.N * plane) {
          y[((p / plane) * params.Co + oc) * plane + p % plane] = epilogue((*acc)[i * TN4_MAX + j][c], oc);
        }
      }
    }
  }
}

// Every entry: prefetch step 0; then per step, the barrier that ends the previous multiply, the
// registers into the tiles, the barrier, the next step's loads, this step's multiply-adds.
@compute @workgroup_size(WG_X, WG_Y)
fn conv2d_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  start(wid, lid);
  let taps = (params.Ci / params.groups) * params.KH * params.KW;
  var acc: Block;
  fetchForward(0u);
  for (var k0 = 0u; k0 < taps; k0 += BK) {
    workgroupBarrier();
    store(false);
    workgroupBarrier();
    if (k0 + BK < taps) {
      fetchForward(k0 + BK);
    }
    multiply(&acc);
  }
  storeForward(&acc);
}

@compute @workgroup_size(WG_X, WG_Y)
fn conv2d_forward_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  start(wid, lid);
  let taps = (params.Ci / params.groups) * params.KH * params.KW;
  var acc: Block;
  fetchForward4(0u);
  for (var k0 = 0u; k0 < taps; k0 += BK) {
    workgroupBarrier();
    store(true);
    workgroupBarrier();
    if (k0 + BK < taps) {
      fetchForward4(k0 + BK);
    }
    multiply(&acc);
  }
  storeForward(&acc);
}

// ---- conv2d_backward_input: rows ci, cols p = (n, ih, iw), k = (co, kh, kw) -------------

fn fetchBackwardInput(k0: u32) {
  let cin = params.Ci / params.groups;
  let cout = params.Co / params.groups;
  let kk = params.KH * params.KW;
  let depth = cout * kk;
  let plane = params.H * params.W;
  let BN = 4u * TN4 * WG_X;
  for (var i = 0u; i < LOADS; i++) {
    let s = me + i * slots();
    // A[ci][(co, t)] = weight[g·cout + co][ci][t]: consecutive k are consecutive taps t.
    let ka = k0 + s % BK;
    let ci = row0 + s / BK;
    var va = 0.0;
    if (s < BK * TM * WG_Y && ka < depth && ci < cin) {
      va = weight[((grp * cout + ka / kk) * cin + ci) * kk + ka % kk];
    }
    ra[i] = va;
    // B[(co, kh, kw)][(n, ih, iw)] = dy[n, co, oh, ow] where ih = oh·stride − pad + kh·dil.
    let p = col0 + s % BN;
    let k = k0 + s / BN;
    var v = 0.0;
    if (s < BK * BN && k < depth && p < params.N * plane) {
      let r = p % plane;
      let t = k % kk;
      let th = i32(r / params.W + params.padH) - i32((t / params.KW) * params.dilH);
      let tw = i32(r % params.W + params.padW) - i32((t % params.KW) * params.dilW);
      if (th >= 0 && tw >= 0 && u32(th) % params.strideH == 0u && u32(tw) % params.strideW == 0u) {
        let oh = u32(th) / params.strideH;
        let ow = u32(tw) / params.strideW;
        if (oh < params.Ho && ow < params.Wo) {
          v = dy[(((p / plane) * params.Co + grp * cout + k / kk) * params.Ho + oh) * params.Wo + ow];
        }
      }
    }
    rb[i] = v;
  }
}

@compute @workgroup_size(WG_X, WG_Y)
fn conv2d_backward_input(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  start(wid, lid);
  let cin = params.Ci / params.groups;
  let depth = (params.Co / params.groups) * params.KH * params.KW;
  let plane = params.H * params.W;
  var acc: Block;
  fetchBackwardInput(0u);
  for (var k0 = 0u; k0 < depth; k0 += BK) {
    workgroupBarrier();
    store(false);
    workgroupBarrier();
    if (k0 + BK < depth) {
      fetchBackwardInput(k0 + BK);
    }
    multiply(&acc);
  }
  for (var i = 0u; i < TM; i++) {
    let ci = row0 + ly + i * WG_Y;
    if (ci >= cin) {
      continue;
    }
    let ic = grp * cin + ci;
    for (var j = 0u; j < TN4; j++) {
      let col = col0 + 4u * (lx + j * WG_X);
      for (var c = 0u; c < 4u; c++) {
        let p = col + c;
        if (p < params.N * plane) {
          dx[((p / plane) * params.Ci + ic) * plane + p % plane] = epilogue(acc[i * TN4_MAX + j][c], ic);
        }
      }
    }
  }
}

// ---- conv2d_backward_weight: rows co, cols tap, k = p over one chunk -------------------

/** B[p][tap] = x gathered at the tap's input position for output pixel p < p1. */
fn fetchWeightB(k0: u32, p1: u32) {
  let cin = params.Ci / params.groups;
  let kk = params.KH * params.KW;
  let plane = params.Ho * params.Wo;
  let BN = 4u * TN4 * WG_X;
  for (var i = 0u; i < LOADS; i++) {
    let s = me + i * slots();
    let t = col0 + s % BN;
    let p = k0 + s / BN;
    var v = 0.0;
    if (s < BK * BN && p < p1 && t < cin * kk) {
      let r = p % plane;
      let u = t % kk;
      v = gatherX(p / plane, grp * cin + t / kk, u / params.KW, u % params.KW, r / params.Wo, r % params.Wo);
    }
    rb[i] = v;
  }
}

/** A[co][p] = dy[n, g·cout + co, oh, ow]: consecutive p are contiguous within an image. */
fn fetchWeight(k0: u32, p1: u32) {
  let cout = params.Co / params.groups;
  let plane = params.Ho * params.Wo;
  for (var i = 0u; i < LOADS; i++) {
    let s = me + i * slots();
    let p = k0 + s % BK;
    let co = row0 + s / BK;
    var v = 0.0;
    if (s < BK * TM * WG_Y && p < p1 && co < cout) {
      v = dy[((p / plane) * params.Co + grp * cout + co) * plane + p % plane];
    }
    ra[i] = v;
  }
  fetchWeightB(k0, p1);
}

fn fetchWeight4(k0: u32, p1: u32) {
  let cout = params.Co / params.groups;
  let plane = params.Ho * params.Wo;
  for (var i = 0u; i < 2u; i++) {
    let s = me + i * slots();
    let p = k0 + 4u * (s % (BK / 4u));
    let co = row0 + s / (BK / 4u);
    var v = vec4(0.0);
    if (s < BK * TM * WG_Y / 4u && p < p1 && co < cout) {
      v = dy4[(((p / plane) * params.Co + grp * cout + co) * plane + p % plane) / 4u];
    }
    ra4[i] = v;
  }
  fetchWeightB(k0, p1);
}

/** dw[chunk] = the chunk's partial sum: z = chunk · groups + g. */
fn storeWeight(acc: ptr<function, Block>, chunk: u32) {
  let cout = params.Co / params.groups;
  let taps = (params.Ci / params.groups) * params.KH * params.KW;
  let base = chunk * params.Co * taps;
  for (var i = 0u; i < TM; i++) {
    let co = row0 + ly + i * WG_Y;
    if (co >= cout) {
      continue;
    }
    for (var j = 0u; j < TN4; j++) {
      let col = col0 + 4u * (lx + j * WG_X);
      for (var c = 0u; c < 4u; c++) {
        if (col + c < taps) {
          dw[base + (grp * cout + co) * taps + col + c] = (*acc)[i * TN4_MAX + j][c];
        }
      }
    }
  }
}

@compute @workgroup_size(WG_X, WG_Y)
fn conv2d_backward_weight(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  start(wid, lid);
  let chunk = wid.z / params.groups;
  let p0 = chunk * params.rowsPerChunk;
  let p1 = min(p0 + params.rowsPerChunk, params.N * params.Ho * params.Wo);
  var acc: Block;
  fetchWeight(p0, p1);
  for (var k0 = p0; k0 < p1; k0 += BK) {
    workgroupBarrier();
    store(false);
    workgroupBarrier();
    if (k0 + BK < p1) {
      fetchWeight(k0 + BK, p1);
    }
    multiply(&acc);
  }
  storeWeight(&acc, chunk);
}

@compute @workgroup_size(WG_X, WG_Y)
fn conv2d_backward_weight_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  start(wid, lid);
  let chunk = wid.z / params.groups;
  let p0 = chunk * params.rowsPerChunk;
  let p1 = min(p0 + params.rowsPerChunk, params.N * params.Ho * params.Wo);
  var acc: Block;
  fetchWeight4(p0, p1);
  for (var k0 = p0; k0 < p1; k0 += BK) {
    workgroupBarrier();
    store(true);
    workgroupBarrier();
    if (k0 + BK < p1) {
      fetchWeight4(k0 + BK, p1);
    }
    multiply(&acc);
  }
  storeWeight(&acc, chunk);
}
