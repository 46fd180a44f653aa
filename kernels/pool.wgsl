// 2-D pooling over the last two dimensions of (planes, H, W) tensors, planes = N·C:
// torch.nn.functional.max_pool2d (kernel, stride, padding, dilation, ceil_mode; padding counts
// as −∞), avg_pool2d (count_include_pad, divisor_override), adaptive_max_pool2d and
// adaptive_avg_pool2d (window i spans [⌊i·In/Out⌋, ⌈(i+1)·In/Out⌉)). Backward kernels gather:
// each input element sums the output gradients of the windows that hold it, so nothing is
// accumulated with atomics and the result is bitwise repeatable.
//
// Entry points
//   max_pool_forward    out = window maximum; argmax = ih·W + iw of the first maximum (NaN wins)
//   max_pool_backward   dx[ih, iw] = Σ dout over the windows whose argmax is (ih, iw)
//   avg_pool_forward    out = window sum / divisor
//   avg_pool_backward   dx[ih, iw] = Σ dout / divisor over the windows that hold (ih, iw)
// Bindings
//   out:     (planes, Ho, Wo) read_write       [max_pool_forward, avg_pool_forward]
//   argmax:  (planes, Ho, Wo) i32 read_write   [max_pool_forward]
//   x:       (planes, H, W) read               [max_pool_forward, avg_pool_forward]
//   dx:      (planes, H, W) read_write         [max_pool_backward, avg_pool_backward]
//   dout:    (planes, Ho, Wo) read             [max_pool_backward, avg_pool_backward]
//   argmaxIn:(planes, Ho, Wo) i32 read         [max_pool_backward]
//   params:  uniform Params (below)
// Dispatch: 1-D, WG invocations each, one per output (forward) or input (backward) element:
//   ceil(planes·Ho·Wo / WG) or ceil(planes·H·W / WG), folded into y past 65,535.

struct Params {
  planes: u32,
  H: u32,
  W: u32,
  Ho: u32,
  Wo: u32,
  kH: u32,
  kW: u32,
  strideH: u32,
  strideW: u32,
  padH: u32,
  padW: u32,
  dilH: u32,
  dilW: u32,
  // 1: adaptive windows (kernel, stride, padding and dilation unused).
  adaptive: u32,
  // avg_pool2d: count padding in the divisor (count_include_pad); a non-zero divisor_override.
  countIncludePad: u32,
  divisorOverride: u32,
}

override WG: u32 = 64;

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read_write> argmax: array<i32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
@group(0) @binding(4) var<storage, read> dout: array<f32>;
@group(0) @binding(5) var<storage, read> argmaxIn: array<i32>;
@group(0) @binding(6) var<uniform> params: Params;

// Window o along one axis of `size` inputs: first position, number of taps, tap spacing.
struct Window {
  start: i32,
  taps: u32,
  step: u32,
}

fn window(o: u32, size: u32, outSize: u32, k: u32, stride: u32, pad: u32, dil: u32) -> Window {
  if (params.adaptive == 1u) {
    let start = (o * size) / outSize;
    let end = ((o + 1u) * size + outSize - 1u) / outSize;
    return Window(i32(start), end - start, 1u);
  }
  return Window(i32(o * stride) - i32(pad), k, dil);
}

fn window_h(oh: u32) -> Window {
  return window(oh, params.H, params.Ho, params.kH, params.strideH, params.padH, params.dilH);
}

fn window_w(ow: u32) -> Window {
  return window(ow, params.W, params.Wo, params.kW, params.strideW, params.padW, params.dilW);
}

// Whether window o (along an axis) holds input position i.
fn holds(win: Window, i: i32) -> bool {
  let t = i - win.start;
  return t >= 0 && u32(t) % win.step == 0u && u32(t) / win.step < win.taps;
}

// The outputs whose windows may hold input i along an axis: [first, last].
fn candidates(i: u32, size: u32, outSize: u32, k: u32, stride: u32, pad: u32, dil: u32) -> vec2<u32> {
  if (params.adaptive == 1u) {
    // Window o holds i when ⌊o·size/out⌋ ≤ i < ⌈(o+1)·size/out⌉.
    let lo = (i * outSize) / size;
    let hi = min(((i + 1u) * outSize + size - 1u) / size, outSize);
    return vec2(select(lo - 1u, 0u, lo == 0u), hi - 1u);
  }
  // o·stride − pad ≤ i ≤ o·stride − pad + (k − 1)·dil.
  let reach = i32(i) + i32(pad) - i32((k - 1u) * dil);
  let lo = select(0u, u32(reach + i32(stride) - 1) / stride, reach > 0);
  let hi = min((i + pad) / stride, outSize - 1u);
  return vec2(lo, hi);
}

// The divisor of avg_pool2d's window, as PyTorch computes it.
fn divisor(wh: Window, ww: Window) -> f32 {
  if (params.divisorOverride != 0u) {
    return f32(params.divisorOverride);
  }
  if (params.adaptive == 1u) {
    return f32(wh.taps * ww.taps);
  }
  let h0 = wh.start;
  let w0 = ww.start;
  let h1 = min(h0 + i32(wh.taps), i32(params.H + params.padH));
  let w1 = min(w0 + i32(ww.taps), i32(params.W + params.padW));
  if (params.countIncludePad == 1u) {
    return f32((h1 - h0) * (w1 - w0));
  }
  let inH = min(h1, i32(params.H)) - max(h0, 0);
  let inW = min(w1, i32(params.W)) - max(w0, 0);
  return f32(inH * inW);
}

@compute @workgroup_size(WG)
fn max_pool_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let o = gid.x + gid.y * groups.x * WG;
  if (o >= params.planes * params.Ho * params.Wo) {
    return;
  }
  let ow = o % params.Wo;
  let oh = (o / params.Wo) % params.Ho;
  let plane = o / (params.Wo * params.Ho);
  let wh = window_h(oh);
  let ww = window_w(ow);
  // Padding never wins: the first element inside the input seeds the maximum.
  var best = 0.0;
  var at = -1;
  for (var kh = 0u; kh < wh.taps; kh++) {
    let ih = wh.start + i32(kh * wh.step);
    if (ih < 0 || ih >= i32(params.H)) {
      continue;
    }
    for (var kw = 0u; kw < ww.taps; kw++) {
      let iw = ww.start + i32(kw * ww.step);
      if (iw < 0 || iw >= i32(params.W)) {
        continue;
      }
      let index = ih * i32(params.W) + iw;
      let v = x[plane * params.H * params.W + u32(index)];
      // The first maximum wins ties; a NaN wins and stays, as in PyTorch.
      if (at < 0 || ((v > best || v != v) && best == best)) {
        best = v;
        at = index;
      }
    }
  }
  out[o] = best;
  argmax[o] = at;
}

@compute @workgroup_size(WG)
fn max_pool_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * WG;
  if (i >= params.planes * params.H * params.W) {
    return;
  }
  let iw = i % params.W;
  let ih = (i / params.W) % params.H;
  let plane = i / (params.W * params.H);
  let index = i32(ih * params.W + iw);
  let rows = candidates(ih, params.H, params.Ho, params.kH, params.strideH, params.padH, params.dilH);
  let cols = candidates(iw, params.W, params.Wo, params.kW, params.strideW, params.padW, params.dilW);
  var g = 0.0;
  for (var oh = rows.x; oh <= rows.y && oh < params.Ho; oh++) {
    for (var ow = cols.x; ow <= cols.y && ow < params.Wo; ow++) {
      let o = (plane * params.Ho + oh) * params.Wo + ow;
      if (argmaxIn[o] == index) {
        g += dout[o];
      }
    }
  }
  dx[i] = g;
}

@compute @workgroup_size(WG)
fn avg_pool_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let o = gid.x + gid.y * groups.x * WG;
  if (o >= params.planes * params.Ho * params.Wo) {
    return;
  }
  let ow = o % params.Wo;
  let oh = (o / params.Wo) % params.Ho;
  let plane = o / (params.Wo * params.Ho);
  let wh = window_h(oh);
  let ww = window_w(ow);
  var total = 0.0;
  for (var kh = 0u; kh < wh.taps; kh++) {
    let ih = wh.start + i32(kh);
    if (ih < 0 || ih >= i32(params.H)) {
      continue;
    }
    for (var kw = 0u; kw < ww.taps; kw++) {
      let iw = ww.start + i32(kw);
      if (iw >= 0 && iw < i32(params.W)) {
        total += x[(plane * params.H + u32(ih)) * params.W + u32(iw)];
      }
    }
  }
  out[o] = total / divisor(wh, ww);
}

@compute @workgroup_size(WG)
fn avg_pool_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * WG;
  if (i >= params.planes * params.H * params.W) {
    return;
  }
  let iw = i % params.W;
  let ih = (i / params.W) % params.H;
  let plane = i / (params.W * params.H);
  let rows = candidates(ih, params.H, params.Ho, params.kH, params.strideH, params.padH, 1u);
  let cols = candidates(iw, params.W, params.Wo, params.kW, params.strideW, params.padW, 1u);
  var g = 0.0;
  for (var oh = rows.x; oh <= rows.y && oh < params.Ho; oh++) {
    let wh = window_h(oh);
    if (!holds(wh, i32(ih))) {
      continue;
    }
    for (var ow = cols.x; ow <= cols.y && ow < params.Wo; ow++) {
      let ww = window_w(ow);
      if (holds(ww, i32(iw))) {
        g += dout[(plane * params.Ho + oh) * params.Wo + ow] / divisor(wh, ww);
      }
    }
  }
  dx[i] = g;
}
