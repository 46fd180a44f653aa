// Softmax and log-softmax over one axis of a tensor viewed as (outer, C, inner), with their
// gradients. Each invocation owns one (outer, inner) row and walks its C values in order.
//
// Entry points
//   softmax_forward   y = softmax(x) or log_softmax(x) along C (torch.softmax / log_softmax)
//   softmax_backward  softmax:     dx = y · (dout − Σ_c dout·y)
//                     log_softmax: dx = dout − exp(y) · Σ_c dout
// Bindings
//   y:    (outer, C, inner) read_write [forward] / read [backward as y_in]
//   x:    (outer, C, inner) read       [softmax_forward]
//   dx:   (outer, C, inner) read_write [softmax_backward]
//   dout: (outer, C, inner) read       [softmax_backward]
//   params: uniform Params { outer, classes, inner, log } (log = 1 for log_softmax)
// Dispatch: 1-D, ceil(outer·inner / WG) workgroups, folded into y past 65,535.

struct Params {
  outer: u32,
  classes: u32,
  inner: u32,
  log: u32,
}

override WG: u32 = 64;

@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<storage, read> dout: array<f32>;
@group(0) @binding(4) var<storage, read> y_in: array<f32>;
@group(0) @binding(5) var<uniform> params: Params;

@compute @workgroup_size(WG)
fn softmax_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let j = gid.x + gid.y * groups.x * WG;
  if (j >= params.outer * params.inner) {
    return;
  }
  let step = params.inner;
  let base = (j / params.inner) * params.classes * params.inner + j % params.inner;
  // Subtracting the row's max keeps exp() finite.
  var m = x[base];
  for (var c = 1u; c < params.classes; c++) {
    m = max(m, x[base + c * step]);
  }
  var total = 0.0;
  for (var c = 0u; c < params.classes; c++) {
    total += exp(x[base + c * step] - m);
  }
  let log_total = log(total);
  for (var c = 0u; c < params.classes; c++) {
    let shifted = x[base + c * step] - m;
    y[base + c * step] = select(exp(shifted) / total, shifted - log_total, params.log == 1u);
  }
}

@compute @workgroup_size(WG)
fn softmax_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let j = gid.x + gid.y * groups.x * WG;
  if (j >= params.outer * params.inner) {
    return;
  }
  let step = params.inner;
  let base = (j / params.inner) * params.classes * params.inner + j % params.inner;
  var dot = 0.0;
  for (var c = 0u; c < params.classes; c++) {
    let k = base + c * step;
    dot += select(dout[k] * y_in[k], dout[k], params.log == 1u);
  }
  for (var c = 0u; c < params.classes; c++) {
    let k = base + c * step;
    dx[k] = select(y_in[k] * (dout[k] - dot), dout[k] - exp(y_in[k]) * dot, params.log == 1u);
  }
}
