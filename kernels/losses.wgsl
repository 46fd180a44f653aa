// Losses: softmax cross-entropy with integer labels (fused), binary cross-entropy on
// probabilities and on logits, and top-k accuracy. Each writes per-row (or per-element) terms;
// the mean is taken by reduce.wgsl's fixed-order sum, so losses are bitwise repeatable.
//
// Entry points
//   cross_entropy_forward   loss[n] = logsumexp(x[n, :]) − x[n, label[n]], lse[n] saved
//                           (torch.nn.functional.cross_entropy, before the mean); a label outside
//                           [0, C) gives NaN, so a bad label cannot pass silently
//   cross_entropy_backward  dx[n, c] = dout[0] · (exp(x[n, c] − lse[n]) − [c = label[n]]) / N
//   bce_forward             loss[i] = −(t log p + (1 − t) log(1 − p)), logs clamped at −100
//                           (binary_cross_entropy); with logits = 1 the stable form
//                           max(x, 0) − x t + log(1 + exp(−|x|)) (binary_cross_entropy_with_logits)
//   bce_backward            dx[i] = dout[0] · (p − t) / max(p (1 − p), 1e-12) / n, or
//                           dout[0] · (sigmoid(x) − t) / n with logits
//   bce_backward_target     dt[i] = dout[0] · (log(1 − p) − log(p)) / n (logs clamped), or
//                           dout[0] · (−x) / n with logits
//   mse_forward             loss[i] = (x − t)² (torch.nn.functional.mse_loss, before the mean)
//   mse_backward            dx[i] = ±dout[0] · 2 (x − t) / n: + for the input, − for the target (logits = 1)
//   topk_correct            hit[n] = 1 when fewer than k classes score strictly above the label's
//   label_check             label_error[0] += 1 for each label outside [0, C) and label_error[1]
//                           = one of them (PyTorch raises an IndexError; the host reads this flag
//                           at its next report, so no readback per step)
// Bindings
//   loss:  (N) or (n) read_write       per-row / per-element terms, or hits
//   lse:   (N) read_write [forward] / lse_in read [backward]
//   x:     (N, C) or (n) read          logits or probabilities
//   label: (N) i32 read
//   targets: (n) read                   BCE targets in [0, 1]
//   dx:    like x, read_write
//   dout:  (1) read                    gradient of the mean loss
//   label_error: (2) i32 atomic read_write   [count of bad labels, one bad label]
//   params: uniform Params { rows, classes, k, logits, scale } (scale = 1/N or 1/n)
// Dispatch: 1-D, ceil(rows / WG) (per-row entries) or ceil(rows·classes / WG), folded past 65,535.

struct Params {
  rows: u32,
  classes: u32,
  k: u32,
  logits: u32,
  scale: f32,
}

override WG: u32 = 64;

@group(0) @binding(0) var<storage, read_write> loss: array<f32>;
@group(0) @binding(1) var<storage, read_write> lse: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> label: array<i32>;
@group(0) @binding(4) var<storage, read> targets: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;
@group(0) @binding(6) var<storage, read> dout: array<f32>;
@group(0) @binding(7) var<storage, read> lse_in: array<f32>;
@group(0) @binding(8) var<uniform> params: Params;
@group(0) @binding(9) var<storage, read_write> label_error: array<atomic<i32>>;

fn linear_id(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
  return gid.x + gid.y * groups.x * WG;
}

fn nan() -> f32 {
  let zero = f32(params.rows) * 0.0;
  return zero / zero;
}

@compute @workgroup_size(WG)
fn cross_entropy_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let n = linear_id(gid, groups);
  if (n >= params.rows) {
    return;
  }
  let base = n * params.classes;
  var m = x[base];
  for (var c = 1u; c < params.classes; c++) {
    m = max(m, x[base + c]);
  }
  var total = 0.0;
  for (var c = 0u; c < params.classes; c++) {
    total += exp(x[base + c] - m);
  }
  let s = m + log(total);
  lse[n] = s;
  let t = label[n];
  if (t < 0 || u32(t) >= params.classes) {
    loss[n] = nan();
    return;
  }
  loss[n] = s - x[base + u32(t)];
}

@compute @workgroup_size(WG)
fn cross_entropy_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let k = linear_id(gid, groups);
  if (k >= params.rows * params.classes) {
    return;
  }
  let n = k / params.classes;
  let c = k % params.classes;
  let hot = select(0.0, 1.0, label[n] == i32(c));
  dx[k] = dout[0] * params.scale * (exp(x[k] - lse_in[n]) - hot);
}

@compute @workgroup_size(WG)
fn bce_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = linear_id(gid, groups);
  if (i >= params.rows) {
    return;
  }
  let v = x[i];
  let t = targets[i];
  if (params.logits == 1u) {
    loss[i] = max(v, 0.0) - v * t + log(1.0 + exp(-abs(v)));
  } else {
    // PyTorch clamps each log at −100 so that p = 0 or 1 gives a finite loss.
    loss[i] = -(t * max(log(v), -100.0) + (1.0 - t) * max(log(1.0 - v), -100.0));
  }
}

@compute @workgroup_size(WG)
fn bce_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = linear_id(gid, groups);
  if (i >= params.rows) {
    return;
  }
  let v = x[i];
  let t = targets[i];
  var d: f32;
  if (params.logits == 1u) {
    let e = exp(-abs(v));
    let p = select(e / (1.0 + e), 1.0 / (1.0 + e), v >= 0.0);
    d = p - t;
  } else {
    d = (v - t) / max(v * (1.0 - v), 1e-12);
  }
  dx[i] = dout[0] * params.scale * d;
}

@compute @workgroup_size(WG)
fn bce_backward_target(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = linear_id(gid, groups);
  if (i >= params.rows) {
    return;
  }
  let v = x[i];
  var d = -v;
  if (params.logits == 0u) {
    d = max(log(1.0 - v), -100.0) - max(log(v), -100.0);
  }
  dx[i] = dout[0] * params.scale * d;
}

@compute @workgroup_size(WG)
fn mse_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = linear_id(gid, groups);
  if (i < params.rows) {
    let d = x[i] - targets[i];
    loss[i] = d * d;
  }
}

@compute @workgroup_size(WG)
fn mse_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = linear_id(gid, groups);
  if (i < params.rows) {
    let d = dout[0] * params.scale * 2.0 * (x[i] - targets[i]);
    dx[i] = select(d, -d, params.logits == 1u);
  }
}

@compute @workgroup_size(WG)
fn topk_correct(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let n = linear_id(gid, groups);
  if (n >= params.rows) {
    return;
  }
  let base = n * params.classes;
  let t = label[n];
  if (t < 0 || u32(t) >= params.classes) {
    loss[n] = 0.0;
    return;
  }
  let score = x[base + u32(t)];
  var above = 0u;
  for (var c = 0u; c < params.classes; c++) {
    above += select(0u, 1u, x[base + c] > score);
  }
  loss[n] = select(0.0, 1.0, above < params.k);
}

@compute @workgroup_size(WG)
fn label_check(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let n = linear_id(gid, groups);
  if (n >= params.rows) {
    return;
  }
  let t = label[n];
  if (t < 0 || u32(t) >= params.classes) {
    atomicAdd(&label_error[0], 1);
    atomicStore(&label_error[1], t);
  }
}
