// conv2d's three kernels for CPU adapters that run 8 invocations as one SIMD vector (Mesa's
// lavapipe on AVX2), the convolution counterpart of kernels/matmul_simd.wgsl; src/ops/conv-plan.ts
// picks them over kernels/conv2d.wgsl when the adapter has 8-wide subgroups and the packed
// operands fit in textures. Same math as torch.nn.functional.conv2d and its two gradients.
//
// Why it looks like this: on lavapipe a storage-buffer load whose address differs per lane is a
// per-lane scalar loop, while a read-only storage-texture load is one 16-byte load per lane. So
// every operand is first packed into an rgba32float texture with zero padding around the image
// (the hot loops then need no bounds tests), and values every lane needs (filter taps, dy
// channels) are loaded once per subgroup, one texel per lane, and spread with subgroupShuffle.
//
// conv_simd computes a "generic" convolution out = conv(in, filter) (+ bias), stride s, dilation
// d and a signed padding. It is conv2d_forward with in = x, and, for stride 1, also
// conv2d_backward_input with in = dy, the filter transposed and flipped, padding (K−1)·d − pad.
// Names: in (N, Cin, H, W) → out (N, Cout, Ho, Wo), cin / cout channels per group.
//
// Packed layouts (zeros wherever the source has no value):
//   input   texel (c4·Wp + u, n·Hp + v) = in[n][4·c4 .. 4·c4+3][v − padH][u − padW], where c4 =
//           group · cin4 + (channel in group) / 4; Hp, Wp cover every tap of every output pixel.
//   filter  texel (group · cout4 + o4, tap · 4·cin4 + c) = filter[4·o4 .. 4·o4+3 of the group][c][tap]
//   x       texel ((c · phases + φ) · Wd4 + t, n·Hp + v) = x[n][c][v − padH][φ + (4·t + q)·strideW − padW],
//           q = 0..3: x decimated by the column stride, once per phase φ, conv_weight_simd's x.
//           Output columns 4·w4 … 4·w4 + 3 of tap kw are then components shift … shift + 3 of
//           phase (kw·dilW) mod strideW from texel w4 on, shift = (kw·dilW) div strideW.
//   dy      texel i at (i mod 2^dyShift, i div 2^dyShift), i = ((n · Cout + c) · Ho + oh) · Wo4 + w4,
//           = dy[n][c][oh][4·w4 + q], zero for 4·w4 + q ≥ Wo: when Wo is a multiple of 4 this is
//           dy's own memory, copied in rather than packed.
// Entry points
//   pack_input    grid (ceil(groups·cin4·Wp / 8), ceil(N·Hp / 8)), workgroup 8 × 8
//   pack_filter   grid (ceil(groups·cout4 / 8), ceil(taps·4·cin4 / 8)), workgroup 8 × 8;
//                 flip = 1 reads conv2d's weight (Cin, cout, KH, KW) transposed and flipped.
//                 It writes the texels to out, pitch texels a row, copied into the texture after:
//                 on lavapipe the buffer stores and the copy take about half as long as texture stores
//   pack_x        grid (ceil(Cin·phases·Wd4 / 8), ceil(N·Hp / 8)), workgroup 8 × 8
//   pack_dy       grid (ceil(Ho·Wo4 / 8), ceil(N·Cout / 8)), workgroup 8 × 8
//   conv_simd     one subgroup of 8 lanes: 8·PX output pixels (flattened n, oh, ow; lane l owns
//                 pixels 8j + l) by 8·CB output channels of one group. Workgroup 8; dispatch
//                 (ceil(N·Ho·Wo / (8·PX)), groups · blocks), blocks = ceil(cout / (8·CB)).
//   conv_weight_simd  dw[co, tap] = Σ over (n, oh, ow) of dy · x: 8·TR tap rows (c, kh), each
//                 with its KCOLS columns kw (lane l owns rows 8t + l), by 8·CB output channels,
//                 over one chunk of output rows (n, oh), four columns per step. Workgroup 8;
//                 dispatch (ceil(cin·KH / (8·TR)), groups · blocks, chunks); chunks > 1 writes
//                 partial sums, summed in order after.
// Bindings
//   out:     (N, Cout, Ho, Wo) read_write [conv_simd]; (chunks, Cout, K) [conv_weight_simd];
//            (taps·4·cin4, pitch, 4) the packed filter's texels [pack_filter]
//   src:     (N, C, H, W) read, the tensor being packed            [pack_input, pack_x, pack_dy]
//   weight:  conv2d's weight (Co, Ci/groups, KH, KW) read           [pack_filter]
//   bias:    (Cout) read; any tensor when hasBias = 0               [conv_simd]
//   packed:  rgba32float storage texture, write                     [pack_input, pack_x, pack_dy]
//   texA:    packed input [conv_simd]; packed dy [conv_weight_simd]   (read)
//   texB:    packed filter [conv_simd]; packed x [conv_weight_simd]    (read)
//   params:  uniform Params (below)
// Overrides: PX (pixels per lane, ≤ 8), CB (8-channel blocks, ≤ 4); conv_weight_simd's TR (tap
// rows per lane, ≤ 8, TR·KCOLS ≤ 12), KCOLS = KW, DILW = dilW and STRW = strideW, so that each
// column's phase and shift are constants and the lanes pick components instead of reloading x;
// PHASES and SPAN (x texels per phase and step, PHASES·SPAN·TR ≤ 16) follow from them.

enable subgroups;

struct Params {
  N: u32,
  Cin: u32,
  H: u32,
  W: u32,
  Cout: u32,
  Ho: u32,
  Wo: u32,
  groups: u32,
  KH: u32,
  KW: u32,
  strideH: u32,
  strideW: u32,
  dilH: u32,
  dilW: u32,
  padH: i32,
  padW: i32,
  // Texels of 4 input channels per group; filter texels of 4 output channels per group
  // (blocks · 2·CB, zero past cout).
  cin4: u32,
  cout4: u32,
  blocks: u32,
  Hp: u32,
  Wp: u32,
  Wo4: u32,
  flip: u32,
  hasBias: u32,
  rowsPerChunk: u32,
  // conv_weight_simd's packed x: phases = min(strideW, (KW − 1)·dilW + 1), Wd4 = Wo4 + SPAN − 1
  // texels a phase, so every step's SPAN texels exist; dy's texture is 2^dyShift texels wide.
  phases: u32,
  Wd4: u32,
  dyShift: u32,
  // pack_filter's texels a row of out, groups·cout4 rounded up to 16 (a 256-byte copy row).
  pitch: u32,
}

override PX: u32 = 8u;
override CB: u32 = 2u;
override TR: u32 = 3u;
override KCOLS: u32 = 3u;
override DILW: u32 = 1u;
override STRW: u32 = 1u;
override PHASES: u32 = min(STRW, (KCOLS - 1u) * DILW + 1u);
override SPAN: u32 = ((KCOLS - 1u) * DILW / STRW + 3u) / 4u + 1u;

const MAX_PX: u32 = 8u;
const MAX_O4: u32 = 8u;
const MAX_TR: u32 = 8u;
const MAX_TAPS: u32 = 12u;
const MAX_XT: u32 = 16u;

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var packed: texture_storage_2d<rgba32float, write>;
@group(0) @binding(5) var texA: texture_storage_2d<rgba32float, read>;
@group(0) @binding(6) var texB: texture_storage_2d<rgba32float, read>;
@group(0) @binding(7) var<uniform> params: Params;

// a / d for a texel coordinate a < 2^22: exact in f32 ((a + 0.5) / d stays more than its rounding
// error away from a whole number), and a vector divide where u32 division by a value that is not
// a compile-time constant is a scalar division per lane.
fn divide(a: u32, d: u32) -> u32 {
  return u32((f32(a) + 0.5) / f32(d));
}

@compute @workgroup_size(8, 8)
fn pack_input(@builtin(global_invocation_id) id: vec3<u32>) {
  let p = params;
  if (id.x >= p.groups * p.cin4 * p.Wp || id.y >= p.N * p.Hp) {
    return;
  }
  let cin = p.Cin / p.groups;
  let gc4 = divide(id.x, p.Wp);
  let g = divide(gc4, p.cin4);
  let c0 = (gc4 - g * p.cin4) * 4u;
  let n = divide(id.y, p.Hp);
  let ih = i32(id.y - n * p.Hp) - p.padH;
  let iw = i32(id.x - gc4 * p.Wp) - p.padW;
  var v = vec4(0.0);
  if (ih >= 0 && ih < i32(p.H) && iw >= 0 && iw < i32(p.W)) {
    let HW = p.H * p.W;
    let at = (n * p.Cin + g * cin + c0) * HW + u32(ih) * p.W + u32(iw);
    for (var q = 0u; q < 4u; q++) {
      if (c0 + q < cin) {
        v[q] = src[at + q * HW];
      }
    }
  }
  textureStore(packed, vec2(id.x, id.y), v);
}

@compute @workgroup_size(8, 8)
fn pack_filter(@builtin(global_invocation_id) id: vec3<u32>) {
  let p = params;
  let taps = p.KH * p.KW;
  if (id.x >= p.groups * p.cout4 || id.y >= taps * 4u * p.cin4) {
    return;
  }
  let cin = p.Cin / p.groups;
  let cout = p.Cout / p.groups;
  let g = divide(id.x, p.cout4);
  let o0 = (id.x - g * p.cout4) * 4u;
  // id.y walks (c, tap) with the tap fastest, weight's own order, so that neighbouring
  // invocations read neighbouring floats; the texel goes to row tap · 4·cin4 + c.
  let c = divide(id.y, taps);
  let tap = id.y - c * taps;
  // Branch-free: every lane loads four floats (clamped into the weight) and zeroes those past
  // the group's channels, so the gathers are not split by per-lane conditions.
  var start: u32;
  var step: u32;
  if (p.flip == 1u) {
    // conv2d's weight (Cin, cout, KH, KW): the tap mirrored, the channels exchanged.
    start = (g * cin + min(c, cin - 1u)) * cout * taps + taps - 1u - tap;
    step = taps;
  } else {
    start = ((g * cout) * cin + min(c, cin - 1u)) * taps + tap;
    step = cin * taps;
  }
  var v: vec4<f32>;
  for (var q = 0u; q < 4u; q++) {
    let o = o0 + q;
    v[q] = select(0.0, weight[start + min(o, cout - 1u) * step], o < cout && c < cin);
  }
  let at = 4u * ((tap * 4u * p.cin4 + c) * p.pitch + id.x);
  for (var q = 0u; q < 4u; q++) {
    out[at + q] = v[q];
  }
}

@compute @workgroup_size(8, 8)
fn pack_x(@builtin(global_invocation_id) id: vec3<u32>) {
  let p = params;
  if (id.x >= p.Cin * p.phases * p.Wd4 || id.y >= p.N * p.Hp) {
    return;
  }
  let column = divide(id.x, p.Wd4);
  let t = id.x - column * p.Wd4;
  let c = divide(column, p.phases);
  let phase = column - c * p.phases;
  let n = divide(id.y, p.Hp);
  let ih = i32(id.y - n * p.Hp) - p.padH;
  var v = vec4(0.0);
  if (ih >= 0 && ih < i32(p.H)) {
    let row = ((n * p.Cin + c) * p.H + u32(ih)) * p.W;
    for (var q = 0u; q < 4u; q++) {
      let iw = i32(phase + (4u * t + q) * p.strideW) - p.padW;
      if (iw >= 0 && iw < i32(p.W)) {
        v[q] = src[row + u32(iw)];
      }
    }
  }
  textureStore(packed, vec2(id.x, id.y), v);
}

@compute @workgroup_size(8, 8)
fn pack_dy(@builtin(global_invocation_id) id: vec3<u32>) {
  let p = params;
  let planeTexels = p.Ho * p.Wo4;
  if (id.x >= planeTexels || id.y >= p.N * p.Cout) {
    return;
  }
  let oh = divide(id.x, p.Wo4);
  let w4 = id.x - oh * p.Wo4;
  let row = (id.y * p.Ho + oh) * p.Wo;
  var v = vec4(0.0);
  for (var q = 0u; q < 4u; q++) {
    let ow = 4u * w4 + q;
    if (ow < p.Wo) {
      v[q] = src[row + ow];
    }
  }
  let i = id.y * planeTexels + id.x;
  textureStore(packed, vec2(i & ((1u << p.dyShift) - 1u), i >> p.dyShift), v);
}

// Eight texels, one from each lane, in every lane.
alias Block = array<vec4<f32>, 8>;

fn spread(v: vec4<f32>) -> Block {
  return Block(subgroupShuffle(v, 0u), subgroupShuffle(v, 1u), subgroupShuffle(v, 2u), subgroupShuffle(v, 3u),
               subgroupShuffle(v, 4u), subgroupShuffle(v, 5u), subgroupShuffle(v, 6u), subgroupShuffle(v, 7u));
}

@compute @workgroup_size(8)
fn conv_simd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(subgroup_invocation_id) lane: u32) {
  let p = params;
  let cout = p.Cout / p.groups;
  let g = wid.y / p.blocks;
  let b = wid.y % p.blocks;
  let outHW = p.Ho * p.Wo;
  let total = p.N * outHW;
  let first = wid.x * 8u * PX + lane;

  // Each pixel's top-left tap in the packed input; pixels past the end repeat the last one and
  // are not stored.
  var px: array<u32, MAX_PX>;
  var py: array<u32, MAX_PX>;
  for (var j = 0u; j < PX; j++) {
    let q = min(first + 8u * j, total - 1u);
    let r = q % outHW;
    px[j] = g * p.cin4 * p.Wp + (r % p.Wo) * p.strideW;
    py[j] = (q / outHW) * p.Hp + (r / p.Wo) * p.strideH;
  }
  // Lane l loads filter texel (o4 = 2r + l / 4, input channel 4·c4 + l % 4) of block r, so that
  // after spread s[i] holds output channels 4·(2r + i / 4) … + 3 at input channel 4·c4 + i % 4.
  let fx = g * p.cout4 + b * 2u * CB + lane / 4u;

  // acc[j * MAX_O4 + o4]: output channels 4·o4 … 4·o4 + 3 of the block at pixel j.
  var acc: array<vec4<f32>, MAX_PX * MAX_O4>;
  for (var kh = 0u; kh < p.KH; kh++) {
    for (var kw = 0u; kw < p.KW; kw++) {
      var tx: array<u32, MAX_PX>;
      var ty: array<u32, MAX_PX>;
      for (var j = 0u; j < PX; j++) {
        tx[j] = px[j] + kw * p.dilW;
        ty[j] = py[j] + kh * p.dilH;
      }
      var row = (kh * p.KW + kw) * 4u * p.cin4 + lane % 4u;
      for (var c4 = 0u; c4 < p.cin4; c4++) {
        var xv: array<vec4<f32>, MAX_PX>;
        for (var j = 0u; j < PX; j++) {
          xv[j] = textureLoad(texA, vec2(tx[j] + c4 * p.Wp, ty[j]));
        }
        for (var r = 0u; r < CB; r++) {
          let s = spread(textureLoad(texB, vec2(fx + 2u * r, row)));
          for (var j = 0u; j < PX; j++) {
            for (var i = 0u; i < 8u; i++) {
              let a = j * MAX_O4 + 2u * r + i / 4u;
              acc[a] = fma(vec4(xv[j][i % 4u]), s[i], acc[a]);
            }
          }
        }
        row += 4u;
      }
    }
  }

  for (var j = 0u; j < PX; j++) {
    let q = first + 8u * j;
    if (q < total) {
      let at = (q / outHW) * p.Cout * outHW + q % outHW;
      for (var o4 = 0u; o4 < 2u * CB; o4++) {
        for (var c = 0u; c < 4u; c++) {
          let o = (b * 2u * CB + o4) * 4u + c;
          if (o < cout) {
            let co = g * cout + o;
            var v = acc[j * MAX_O4 + o4][c];
            if (p.hasBias == 1u) {
              v += bias[co];
            }
            out[at + co * outHW] = v;
          }
        }
      }
    }
  }
}

@compute @workgroup_size(8)
fn conv_weight_simd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(subgroup_invocation_id) lane: u32) {
  let p = params;
  let cin = p.Cin / p.groups;
  let cout = p.Cout / p.groups;
  let g = wid.y / p.blocks;
  let b = wid.y % p.blocks;
  let rows = cin * p.KH;
  let K = rows * KCOLS;
  let first = wid.x * 8u * TR + lane;

  // Each tap row's first texel column and row offset in the packed x; rows past the end repeat
  // the last one and are not stored.
  var bx: array<u32, MAX_TR>;
  var by: array<u32, MAX_TR>;
  for (var t = 0u; t < TR; t++) {
    let row = min(first + 8u * t, rows - 1u);
    let c = row / p.KH;
    bx[t] = (g * cin + c) * PHASES * p.Wd4;
    by[t] = (row - c * p.KH) * p.dilH;
  }
  // Lane l loads dy for output channel 8r + l of the block; past the group's end it reads the
  // group's last channel and weighs it 0.
  let planeTexels = p.Ho * p.Wo4;
  var dyc: array<u32, 4>;
  var live: array<bool, 4>;
  for (var r = 0u; r < CB; r++) {
    let o = b * 8u * CB + 8u * r + lane;
    live[r] = o < cout;
    dyc[r] = (g * cout + min(o, cout - 1u)) * planeTexels;
  }
  let dyMask = (1u << p.dyShift) - 1u;

  // acc[(t · KCOLS + kw) * MAX_O4 + o4]: output channels 4·o4 … 4·o4 + 3 of the block at tap
  // (tap row t, column kw).
  var acc: array<vec4<f32>, MAX_TAPS * MAX_O4>;
  // One loop over the chunk's (row, four-column texel) steps, with its counters kept by hand:
  // a short inner loop over Wo / 4 texels would cost more in loop overhead than in work.
  let rowStart = wid.z * p.rowsPerChunk;
  let steps = (min(rowStart + p.rowsPerChunk, p.N * p.Ho) - rowStart) * p.Wo4;
  var oh = rowStart % p.Ho;
  var xrow = (rowStart / p.Ho) * p.Hp + oh * p.strideH;
  var dyAt = (rowStart / p.Ho) * p.Cout * planeTexels + oh * p.Wo4;
  var w4 = 0u;
  for (var step = 0u; step < steps; step++) {
    // SPAN consecutive texels of each phase: every kernel column's four inputs are four
    // consecutive components of them, at offsets known when the pipeline is built.
    var xt: array<vec4<f32>, MAX_XT>;
    for (var t = 0u; t < TR; t++) {
      for (var ph = 0u; ph < PHASES; ph++) {
        for (var i = 0u; i < SPAN; i++) {
          xt[(t * PHASES + ph) * SPAN + i] = textureLoad(texB, vec2(bx[t] + ph * p.Wd4 + w4 + i, xrow + by[t]));
        }
      }
    }
    for (var r = 0u; r < CB; r++) {
      let at = dyc[r] + dyAt;
      let s = spread(select(vec4(0.0), textureLoad(texA, vec2(at & dyMask, at >> p.dyShift)), live[r]));
      for (var t = 0u; t < TR; t++) {
        for (var kw = 0u; kw < KCOLS; kw++) {
          let ph = (kw * DILW) % STRW;
          let shift = (kw * DILW) / STRW;
          for (var h = 0u; h < 2u; h++) {
            let a = (t * KCOLS + kw) * MAX_O4 + 2u * r + h;
            // Σ over the four output columns q of x[q] · dy[channel 4h + c][q], c = 0..3.
            for (var q = 0u; q < 4u; q++) {
              let u = shift + q;
              let xv = xt[(t * PHASES + ph) * SPAN + u / 4u][u % 4u];
              let d = vec4(s[4u * h][q], s[4u * h + 1u][q], s[4u * h + 2u][q], s[4u * h + 3u][q]);
              acc[a] = fma(vec4(xv), d, acc[a]);
            }
          }
        }
      }
    }
    w4++;
    dyAt++;
    if (w4 == p.Wo4) {
      w4 = 0u;
      oh++;
      xrow += p.strideH;
      if (oh == p.Ho) {
        oh = 0u;
        xrow += p.Hp - p.Ho * p.strideH;
        dyAt += (p.Cout - 1u) * planeTexels;
      }
    }
  }

  let out0 = wid.z * p.Cout * K;
  for (var t = 0u; t < TR; t++) {
    let row = first + 8u * t;
    if (row < rows) {
      for (var kw = 0u; kw < KCOLS; kw++) {
        let k = row * KCOLS + kw;
        for (var o4 = 0u; o4 < 2u * CB; o4++) {
          for (var c = 0u; c < 4u; c++) {
            let o = b * 8u * CB + 4u * o4 + c;
            if (o < cout) {
              out[out0 + (g * cout + o) * K + k] = acc[(t * KCOLS + kw) * MAX_O4 + o4][c];
            }
          }
        }
      }
    }
  }
}
