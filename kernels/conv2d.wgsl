// 2-D convolution and its two gradients as implicit GEMMs over NCHW tensors and OIHW weights
// (torch.nn.functional.conv2d with stride, padding, dilation and groups). The transposed
// convolution (conv_transpose2d) is the same three kernels with the roles exchanged: its forward
// is conv2d_backward_input, its input gradient conv2d_forward, its weight gradient
// conv2d_backward_weight with x and dy swapped (src/ops/conv.ts).
//
// Names follow the convolution: x (N, Ci, H, W) → y (N, Co, Ho, Wo), weight (Co, Ci/groups, KH,
// KW); a "tap" is one (ci, kh, kw) of a filter, K = Ci/groups · KH · KW taps in all.
//
// Entry points
//   pack_weight              weight → wp, channels of the tiled side innermost in blocks of
//                            R = 4·R4 (zero-padded), so that a block is read as R4 vec4s:
//                            transposed = 0: wp[g][co block][kh][kw][ci][R]  (for conv2d_forward)
//                            transposed = 1: wp[g][ci block][kh][kw][co][R]  (for conv2d_backward_input)
//   conv2d_forward           y = conv(x, w) + bias; an invocation computes R output channels of
//                            one group at P consecutive output pixels (flattened n, oh, ow)
//   conv2d_backward_input    dx = Σ over (co, kh, kw) of dy · w (+ bias, for conv_transpose2d):
//                            R input channels at P input pixels; a pixel takes the taps whose
//                            output position is whole
//   conv2d_backward_weight   dw[co, tap] = Σ over (n, oh, ow) of dy · x for R output channels
//                            and T consecutive taps, over one chunk of output rows (n, oh);
//                            chunks > 1 writes partial sums (chunk, Co, K), summed in order after
// Bindings
//   y:       (N, Co, Ho, Wo) read_write                      [conv2d_forward]
//   x:       (N, Ci, H, W) read                              [conv2d_forward, conv2d_backward_weight]
//   wp:      packed weight, vec4 read                        [conv2d_forward, conv2d_backward_input]
//   bias:    (Co), or (Ci) for backward_input; any tensor when hasBias = 0
//                                                            [conv2d_forward, conv2d_backward_input]
//   dx:      (N, Ci, H, W) read_write                        [conv2d_backward_input]
//   dy:      (N, Co, Ho, Wo) read                            [conv2d_backward_input, conv2d_backward_weight]
//   dw:      (chunks, Co, K) read_write                      [conv2d_backward_weight]
//   packed:  vec4 read_write, blocks·R/4 per group and tap   [pack_weight]
//   weight:  (Co, Ci/groups, KH, KW) read                    [pack_weight]
//   params:  uniform Params (below)
// Overrides: WG invocations per workgroup; R4 (channels per invocation / 4, ≤ 8); P (pixels per
//   invocation, ≤ 16); T (taps per invocation in conv2d_backward_weight, ≤ 16).
// Speed: each invocation keeps a 4·R4 × P (or × T) block of outputs in registers, and every
// loaded value feeds 4·R4 or P multiply-adds. On lavapipe a storage load whose offset is not a
// compile-time constant is a per-lane scalar loop, so loads, not multiply-adds, set the speed;
// the loops load first and then run one unrolled multiply-add nest (src/ops/conv.ts picks sizes).
// Dispatch
//   pack_weight:             ceil(groups · blocks · KH · KW · other · R4 / WG)  (1-D, folded past 65,535)
//   conv2d_forward:          (ceil(N·Ho·Wo / (P·WG)), groups · blocks)
//   conv2d_backward_input:   (ceil(N·H·W / (P·WG)), groups · blocks)
//   conv2d_backward_weight:  (ceil(ceil(K / T) / WG), groups · blocks, chunks)
// where blocks = ceil(channels per group on the tiled side / R).

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
  // Channel blocks of R per group on the tiled side (Co for forward and weight, Ci for input).
  blocks: u32,
  hasBias: u32,
  // pack_weight: 1 packs for conv2d_backward_input.
  transposed: u32,
  // conv2d_backward_weight: output rows (n, oh) per chunk.
  rowsPerChunk: u32,
}

override WG: u32 = 64;
override R4: u32 = 2;
override P: u32 = 4;
override T: u32 = 4;

// Function-scope arrays need constant sizes: these bound the overrides, and the loops over
// R4, P and T unroll to constant indices, so unused slots cost nothing.
const MAX_R4: u32 = 8u;
const MAX_P: u32 = 16u;
const MAX_T: u32 = 16u;

@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> wp: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;
@group(0) @binding(5) var<storage, read> dy: array<f32>;
@group(0) @binding(6) var<storage, read_write> dw: array<f32>;
@group(0) @binding(7) var<storage, read_write> packed: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read> weight: array<f32>;
@group(0) @binding(9) var<uniform> params: Params;

@compute @workgroup_size(WG)
fn pack_weight(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * WG;
  let p = params;
  let cin = p.Ci / p.groups;
  let cout = p.Co / p.groups;
  let R = 4u * R4;
  let taps = p.KH * p.KW;
  // Tiled side (channels in blocks of R) and other side (the loop inside each tap).
  let tiled = select(cout, cin, p.transposed == 1u);
  let other = select(cin, cout, p.transposed == 1u);
  let total = p.groups * p.blocks * taps * other * R4;
  if (i >= total) {
    return;
  }
  let i4 = i % R4;
  let o = (i / R4) % other;
  let tap = (i / (R4 * other)) % taps;
  let gb = i / (R4 * other * taps);
  let g = gb / p.blocks;
  let b = gb % p.blocks;
  var v = vec4(0.0);
  for (var c = 0u; c < 4u; c++) {
    let t = b * R + 4u * i4 + c;
    if (t < tiled) {
      let co = select(t, o, p.transposed == 1u);
      let ci = select(o, t, p.transposed == 1u);
      v[c] = weight[((g * cout + co) * cin + ci) * taps + tap];
    }
  }
  packed[i] = v;
}

@compute @workgroup_size(WG)
fn conv2d_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let p = params;
  let cin = p.Ci / p.groups;
  let cout = p.Co / p.groups;
  let g = wid.y / p.blocks;
  let b = wid.y % p.blocks;
  let HW = p.H * p.W;
  let outHW = p.Ho * p.Wo;
  let total = p.N * outHW;
  let first = (wid.x * WG + lid) * P;
  if (first >= total) {
    return;
  }

  // Where each pixel's receptive field starts; pixels past the end repeat the last one and are
  // not stored, so every load below stays in bounds.
  var ih0: array<i32, MAX_P>;
  var iw0: array<i32, MAX_P>;
  var base: array<u32, MAX_P>;
  for (var j = 0u; j < P; j++) {
    let q = min(first + j, total - 1u);
    let n = q / outHW;
    let r = q % outHW;
    ih0[j] = i32((r / p.Wo) * p.strideH) - i32(p.padH);
    iw0[j] = i32((r % p.Wo) * p.strideW) - i32(p.padW);
    base[j] = (n * p.Ci + g * cin) * HW;
  }

  // acc[i * MAX_P + j]: channels b·R + 4i … 4i + 3 at pixel j.
  var acc: array<vec4<f32>, MAX_R4 * MAX_P>;
  for (var kh = 0u; kh < p.KH; kh++) {
    for (var kw = 0u; kw < p.KW; kw++) {
      // The tap's input offset for each pixel, fixed across input channels.
      var at: array<u32, MAX_P>;
      var inside: array<bool, MAX_P>;
      for (var j = 0u; j < P; j++) {
        let ih = ih0[j] + i32(kh * p.dilH);
        let iw = iw0[j] + i32(kw * p.dilW);
        inside[j] = ih >= 0 && ih < i32(p.H) && iw >= 0 && iw < i32(p.W);
        at[j] = select(0u, base[j] + u32(ih) * p.W + u32(iw), inside[j]);
      }
      var w4 = ((wid.y * p.KH + kh) * p.KW + kw) * cin * R4;
      for (var ci = 0u; ci < cin; ci++) {
        var xv: array<f32, MAX_P>;
        for (var j = 0u; j < P; j++) {
          xv[j] = select(0.0, x[at[j] + ci * HW], inside[j]);
        }
        for (var i = 0u; i < R4; i++) {
          let wv = wp[w4 + i];
          for (var j = 0u; j < P; j++) {
            acc[i * MAX_P + j] = fma(wv, vec4(xv[j]), acc[i * MAX_P + j]);
          }
        }
        w4 += R4;
      }
    }
  }

  for (var j = 0u; j < P; j++) {
    let q = first + j;
    if (q < total) {
      let n = q / outHW;
      let r = q % outHW;
      for (var i = 0u; i < R4; i++) {
        for (var c = 0u; c < 4u; c++) {
          let t = b * 4u * R4 + 4u * i + c;
          if (t < cout) {
            let co = g * cout + t;
            var v = acc[i * MAX_P + j][c];
            if (p.hasBias == 1u) {
              v += bias[co];
            }
            y[(n * p.Co + co) * outHW + r] = v;
          }
        }
      }
    }
  }
}

@compute @workgroup_size(WG)
fn conv2d_backward_input(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let p = params;
  let cin = p.Ci / p.groups;
  let cout = p.Co / p.groups;
  let g = wid.y / p.blocks;
  let b = wid.y % p.blocks;
  let HW = p.H * p.W;
  let outHW = p.Ho * p.Wo;
  let total = p.N * HW;
  let first = (wid.x * WG + lid) * P;
  if (first >= total) {
    return;
  }

  var ih: array<i32, MAX_P>;
  var iw: array<i32, MAX_P>;
  var base: array<u32, MAX_P>;
  for (var j = 0u; j < P; j++) {
    let q = min(first + j, total - 1u);
    let n = q / HW;
    let r = q % HW;
    ih[j] = i32(r / p.W) + i32(p.padH);
    iw[j] = i32(r % p.W) + i32(p.padW);
    base[j] = (n * p.Co + g * cout) * outHW;
  }

  var acc: array<vec4<f32>, MAX_R4 * MAX_P>;
  for (var kh = 0u; kh < p.KH; kh++) {
    for (var kw = 0u; kw < p.KW; kw++) {
      // Pixel (ih, iw) meets tap (kh, kw) from output (oh, ow) when oh·s = ih + pad − kh·dil.
      var at: array<u32, MAX_P>;
      var hit: array<bool, MAX_P>;
      for (var j = 0u; j < P; j++) {
        let th = ih[j] - i32(kh * p.dilH);
        let tw = iw[j] - i32(kw * p.dilW);
        let uh = u32(max(th, 0));
        let uw = u32(max(tw, 0));
        let oh = uh / p.strideH;
        let ow = uw / p.strideW;
        hit[j] = th >= 0 && tw >= 0 && oh * p.strideH == uh && ow * p.strideW == uw && oh < p.Ho && ow < p.Wo;
        at[j] = select(0u, base[j] + oh * p.Wo + ow, hit[j]);
      }
      var w4 = ((wid.y * p.KH + kh) * p.KW + kw) * cout * R4;
      for (var co = 0u; co < cout; co++) {
        var gv: array<f32, MAX_P>;
        for (var j = 0u; j < P; j++) {
          gv[j] = select(0.0, dy[at[j] + co * outHW], hit[j]);
        }
        for (var i = 0u; i < R4; i++) {
          let wv = wp[w4 + i];
          for (var j = 0u; j < P; j++) {
            acc[i * MAX_P + j] = fma(wv, vec4(gv[j]), acc[i * MAX_P + j]);
          }
        }
        w4 += R4;
      }
    }
  }

  for (var j = 0u; j < P; j++) {
    let q = first + j;
    if (q < total) {
      let n = q / HW;
      let r = q % HW;
      for (var i = 0u; i < R4; i++) {
        for (var c = 0u; c < 4u; c++) {
          let t = b * 4u * R4 + 4u * i + c;
          if (t < cin) {
            var v = acc[i * MAX_P + j][c];
            if (p.hasBias == 1u) {
              v += bias[g * cin + t];
            }
            dx[(n * p.Ci + g * cin + t) * HW + r] = v;
          }
        }
      }
    }
  }
}

@compute @workgroup_size(WG)
fn conv2d_backward_weight(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let p = params;
  let cin = p.Ci / p.groups;
  let cout = p.Co / p.groups;
  let g = wid.y / p.blocks;
  let b = wid.y % p.blocks;
  let HW = p.H * p.W;
  let outHW = p.Ho * p.Wo;
  let taps = p.KH * p.KW;
  let K = cin * taps;
  let R = 4u * R4;
  let first = (wid.x * WG + lid) * T;
  if (first >= K) {
    return;
  }

  // Each tap's input channel offset and kernel offsets; taps past K repeat the last one.
  var chan: array<u32, MAX_T>;
  var offH: array<i32, MAX_T>;
  var offW: array<i32, MAX_T>;
  for (var t = 0u; t < T; t++) {
    let k = min(first + t, K - 1u);
    let tap = k % taps;
    chan[t] = (g * cin + k / taps) * HW;
    offH[t] = i32((tap / p.KW) * p.dilH) - i32(p.padH);
    offW[t] = i32((tap % p.KW) * p.dilW) - i32(p.padW);
  }
  // The block's output channels; those past the group's end read channel 0 and weigh 0.
  var dyChan: array<u32, MAX_R4 * 4>;
  var live: array<f32, MAX_R4 * 4>;
  for (var c = 0u; c < R; c++) {
    let t = b * R + c;
    live[c] = select(0.0, 1.0, t < cout);
    dyChan[c] = select(0u, g * cout + t, t < cout) * outHW;
  }

  var acc: array<vec4<f32>, MAX_R4 * MAX_T>;
  let rows = p.N * p.Ho;
  let rowEnd = min((wid.z + 1u) * p.rowsPerChunk, rows);
  for (var row = wid.z * p.rowsPerChunk; row < rowEnd; row++) {
    let n = row / p.Ho;
    let oh = row % p.Ho;
    var rowAt: array<u32, MAX_T>;
    var rowIn: array<bool, MAX_T>;
    for (var t = 0u; t < T; t++) {
      let ihh = i32(oh * p.strideH) + offH[t];
      rowIn[t] = ihh >= 0 && ihh < i32(p.H);
      rowAt[t] = n * p.Ci * HW + chan[t] + u32(max(ihh, 0)) * p.W;
    }
    let dyRow = n * p.Co * outHW + oh * p.Wo;
    for (var ow = 0u; ow < p.Wo; ow++) {
      var gv: array<vec4<f32>, MAX_R4>;
      for (var i = 0u; i < R4; i++) {
        for (var c = 0u; c < 4u; c++) {
          gv[i][c] = dy[dyRow + dyChan[4u * i + c] + ow] * live[4u * i + c];
        }
      }
      var xv: array<f32, MAX_T>;
      for (var t = 0u; t < T; t++) {
        let iww = i32(ow * p.strideW) + offW[t];
        let inside = rowIn[t] && iww >= 0 && iww < i32(p.W);
        xv[t] = select(0.0, x[select(0u, rowAt[t] + u32(iww), inside)], inside);
      }
      for (var i = 0u; i < R4; i++) {
        for (var t = 0u; t < T; t++) {
          acc[i * MAX_T + t] = fma(gv[i], vec4(xv[t]), acc[i * MAX_T + t]);
        }
      }
    }
  }

  let out0 = wid.z * p.Co * K;
  for (var t = 0u; t < T; t++) {
    let k = first + t;
    if (k < K) {
      for (var i = 0u; i < R4; i++) {
        for (var c = 0u; c < 4u; c++) {
          let co = b * R + 4u * i + c;
          if (co < cout) {
            dw[out0 + (g * cout + co) * K + k] = acc[i * MAX_T + t][c];
          }
        }
      }
    }
  }
}
