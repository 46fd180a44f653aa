// Optimizer updates over flat arenas (src/optim/): every parameter of a group lives in one buffer
// at 256-byte-aligned offsets, its gradient at the same offset of a gradient arena, its moments
// at the same offset of moment arenas, so one dispatch updates a whole parameter group in place
// (llm.c's gpt2_update). Hyperparameters and the derived scalars PyTorch computes in Python
// floats (1 − dampening, 1 − β, lr / (1 − β₁ᵗ), …) arrive as uniforms, so a schedule never
// compiles a new pipeline. Padding between parameters holds zeros and stays zero.
//
// Entry points
//   sgd_step        torch.optim.SGD with momentum (foreach=False semantics):
//                     d = g + λ·p
//                     b = d                         on the buffer's first step
//                     b = μ·b + (1 − τ)·d            afterwards
//                     d = d + μ·b  (Nesterov)   or   d = b
//                     p = p − lr·d
//   sgd_step_plain  the same without momentum: p = p − lr·(g + λ·p)
//   adam_step       torch.optim.Adam / AdamW:
//                     p = p·(1 − lr·λ_decoupled)    (AdamW; the factor is 1 for Adam)
//                     g = g + λ·p                    (Adam's coupled decay; λ = 0 for AdamW)
//                     m = β₁·m + (1 − β₁)·g
//                     v = β₂·v + (1 − β₂)·g²
//                     p = p − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)
//   grad_norm_partial  partials[partial_offset + w] = Σ grad² over workgroup w's ITEMS·WG elements
//   grad_norm_final    one workgroup: ‖g‖ = √Σ partials; norm_out[0] = ‖g‖;
//                      clip_out = [‖g‖, min(max_norm / (‖g‖ + 1e-6), 1)]
//                      (torch.nn.utils.clip_grad_norm_; the update kernels apply the factor)
//   grad_zero       grad_rw[start … start + count) = 0 (a parameter without a gradient, before a norm)
// Every sum has a fixed order (strided lanes, then a fixed tree), so norms are bitwise repeatable.
// Bindings (n = the arena's length in f32)
//   param:        (n) read_write   parameters                       [sgd_step, sgd_step_plain, adam_step]
//   grad:         (n) read         gradients                        [sgd_step, sgd_step_plain, adam_step, grad_norm_partial]
//   grad_rw:      (n) read_write   gradients                        [grad_zero]
//   momentum_buf: (n) read_write   SGD momentum buffers             [sgd_step]
//   exp_avg:      (n) read_write   Adam first moments               [adam_step]
//   exp_avg_sq:   (n) read_write   Adam second moments              [adam_step]
//   clip_coef:    (2) read         [‖g‖, clip factor]               [sgd_step, sgd_step_plain, adam_step]
//   partials:     (P) read_write   per-workgroup sums of squares    [grad_norm_partial, grad_norm_final]
//   norm_out:     (1) read_write   the total norm (a tensor)        [grad_norm_final]
//   clip_out:     (2) read_write   [‖g‖, clip factor]               [grad_norm_final]
//   params: uniform Params (below)
// Dispatch: updates and grad_zero: ceil(count / WG) workgroups over elements start … start + count;
// grad_norm_partial: ceil(count / (ITEMS·WG)); grad_norm_final: 1. Folded into y past 65,535.

struct Params {
  // The run of the arena this dispatch covers (updates, grad_zero); count also for grad_norm_*.
  start: u32,
  count: u32,
  lr: f32,
  // Coupled weight decay λ, added to the gradient (SGD, Adam); 0 for AdamW.
  weight_decay: f32,
  momentum: f32,
  // 1 − dampening.
  one_minus_dampening: f32,
  nesterov: u32,
  // 1 when the momentum buffers of this run are not initialised yet (PyTorch's `buf is None`).
  first: u32,
  beta1: f32,
  beta2: f32,
  one_minus_beta1: f32,
  one_minus_beta2: f32,
  eps: f32,
  // lr / (1 − β₁ᵗ).
  step_size: f32,
  // √(1 − β₂ᵗ).
  bias_correction2_sqrt: f32,
  // 1 − lr·λ for AdamW, 1 for Adam.
  decay: f32,
  // 1 when the gradients are scaled by clip_coef[1].
  clip: u32,
  partial_offset: u32,
  max_norm: f32,
}

override WG: u32 = 256;
const ITEMS: u32 = 8u;

@group(0) @binding(0) var<storage, read_write> param: array<f32>;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> grad_rw: array<f32>;
@group(0) @binding(3) var<storage, read_write> momentum_buf: array<f32>;
@group(0) @binding(4) var<storage, read_write> exp_avg: array<f32>;
@group(0) @binding(5) var<storage, read_write> exp_avg_sq: array<f32>;
@group(0) @binding(6) var<storage, read> clip_coef: array<f32>;
@group(0) @binding(7) var<storage, read_write> partials: array<f32>;
@group(0) @binding(8) var<storage, read_write> norm_out: array<f32>;
@group(0) @binding(9) var<storage, read_write> clip_out: array<f32>;
@group(0) @binding(10) var<uniform> params: Params;

var<workgroup> tree: array<f32, WG>;

fn linear_id(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
  return gid.x + gid.y * groups.x * WG;
}

// The gradient as the update sees it: scaled by the clipping factor when one was computed.
fn gradient(j: u32) -> f32 {
  if (params.clip != 0u) {
    return grad[j] * clip_coef[1];
  }
  return grad[j];
}

@compute @workgroup_size(WG)
fn sgd_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = linear_id(gid, groups);
  if (i >= params.count) {
    return;
  }
  let j = params.start + i;
  let p = param[j];
  var d = gradient(j);
  if (params.weight_decay != 0.0) {
    d = d + params.weight_decay * p;
  }
  var b = d;
  if (params.first == 0u) {
    b = params.momentum * momentum_buf[j] + params.one_minus_dampening * d;
  }
  momentum_buf[j] = b;
  if (params.nesterov != 0u) {
    d = d + params.momentum * b;
  } else {
    d = b;
  }
  param[j] = p - params.lr * d;
}

@compute @workgroup_size(WG)
fn sgd_step_plain(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = linear_id(gid, groups);
  if (i >= params.count) {
    return;
  }
  let j = params.start + i;
  let p = param[j];
  var d = gradient(j);
  if (params.weight_decay != 0.0) {
    d = d + params.weight_decay * p;
  }
  param[j] = p - params.lr * d;
}

@compute @workgroup_size(WG)
fn adam_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = linear_id(gid, groups);
  if (i >= params.count) {
    return;
  }
  let j = params.start + i;
  let p = param[j] * params.decay;
  var g = gradient(j);
  if (params.weight_decay != 0.0) {
    g = g + params.weight_decay * p;
  }
  let m = params.beta1 * exp_avg[j] + params.one_minus_beta1 * g;
  let v = params.beta2 * exp_avg_sq[j] + params.one_minus_beta2 * (g * g);
  exp_avg[j] = m;
  exp_avg_sq[j] = v;
  let denom = sqrt(v) / params.bias_correction2_sqrt + params.eps;
  param[j] = p - params.step_size * (m / denom);
}

@compute @workgroup_size(WG)
fn grad_zero(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = linear_id(gid, groups);
  if (i < params.count) {
    grad_rw[params.start + i] = 0.0;
  }
}

// Halves `tree` until tree[0] holds the workgroup's sum; the order never changes.
fn tree_sum(lane: u32) -> f32 {
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    workgroupBarrier();
    if (lane < stride) {
      tree[lane] = tree[lane] + tree[lane + stride];
    }
  }
  workgroupBarrier();
  return tree[0];
}

@compute @workgroup_size(WG)
fn grad_norm_partial(
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
) {
  let w = wid.x + wid.y * groups.x;
  let base = w * ITEMS * WG;
  var acc = 0.0;
  for (var k = 0u; k < ITEMS; k++) {
    let j = base + k * WG + lid.x;
    if (j < params.count) {
      let g = grad[j];
      acc = acc + g * g;
    }
  }
  tree[lid.x] = acc;
  let total = tree_sum(lid.x);
  if (lid.x == 0u) {
    partials[params.partial_offset + w] = total;
  }
}

@compute @workgroup_size(WG)
fn grad_norm_final(@builtin(local_invocation_id) lid: vec3<u32>) {
  var acc = 0.0;
  for (var r = lid.x; r < params.count; r += WG) {
    acc = acc + partials[r];
  }
  tree[lid.x] = acc;
  let total = sqrt(tree_sum(lid.x));
  if (lid.x == 0u) {
    norm_out[0] = total;
    clip_out[0] = total;
    clip_out[1] = min(params.max_norm / (total + 1e-6), 1.0);
  }
}
