// Reductions over one axis of a tensor viewed as (outer, R, inner), and their gradients.
// Every sum runs in a fixed order (no atomics), so the same input always gives the same bits.
//
// Entry points
//   sum_rows      out[o, i] = scale · Σ_r x[o, r, i]; one invocation per output
//                 (torch.sum / torch.mean over a dim; mean passes scale = 1/R)
//   sum_wide      the same with one workgroup per output, for few outputs over a long axis:
//                 WG lanes stride over r, then a fixed tree in workgroup memory
//   max_rows      out[o, i] = max_r x[o, r, i], argmax[o, i] = first r attaining it (torch.max(dim))
//   max_backward  dx[o, r, i] = dout[o, i] where r == argmax[o, i], else 0
//   expand_rows   dx[o, r, i] = scale · dout[o, i] (the gradient of sum and mean)
// Bindings
//   out:    (outer, inner) read_write          [sum_rows, sum_wide, max_rows]
//   argmax: (outer, inner) i32                 [max_rows read_write, max_backward read]
//   x:      (outer, R, inner) read             [sum_rows, sum_wide, max_rows]
//   dx:     (outer, R, inner) read_write       [max_backward, expand_rows]
//   dout:   (outer, inner) read                [max_backward, expand_rows]
//   params: uniform Params { outer, reduce, inner, scale }
// Dispatch: sum_rows, max_rows: ceil(outer·inner / WG) workgroups; sum_wide: outer·inner
// workgroups; max_backward, expand_rows: ceil(outer·R·inner / WG). All folded into y past 65,535.

struct Params {
  outer: u32,
  reduce: u32,
  inner: u32,
  scale: f32,
}

override WG: u32 = 256;

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read_write> argmax: array<i32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
@group(0) @binding(4) var<storage, read> dout: array<f32>;
@group(0) @binding(5) var<storage, read> argmax_in: array<i32>;
@group(0) @binding(6) var<uniform> params: Params;

var<workgroup> partial: array<f32, WG>;

fn linear_id(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
  return gid.x + gid.y * groups.x * WG;
}

@compute @workgroup_size(WG)
fn sum_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let j = linear_id(gid, groups);
  if (j >= params.outer * params.inner) {
    return;
  }
  let o = j / params.inner;
  let i = j % params.inner;
  var base = o * params.reduce * params.inner + i;
  var acc = 0.0;
  for (var r = 0u; r < params.reduce; r++) {
    acc += x[base];
    base += params.inner;
  }
  out[j] = acc * params.scale;
}

@compute @workgroup_size(WG)
fn sum_wide(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
            @builtin(num_workgroups) groups: vec3<u32>) {
  let j = wid.x + wid.y * groups.x;
  let valid = j < params.outer * params.inner;
  var acc = 0.0;
  if (valid) {
    let o = j / params.inner;
    let i = j % params.inner;
    let base = o * params.reduce * params.inner + i;
    for (var r = lid.x; r < params.reduce; r += WG) {
      acc += x[base + r * params.inner];
    }
  }
  partial[lid.x] = acc;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    if (lid.x < stride) {
      partial[lid.x] += partial[lid.x + stride];
    }
    workgroupBarrier();
  }
  if (valid && lid.x == 0u) {
    out[j] = partial[0] * params.scale;
  }
}

@compute @workgroup_size(WG)
fn max_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let j = linear_id(gid, groups);
  if (j >= params.outer * params.inner) {
    return;
  }
  let o = j / params.inner;
  let i = j % params.inner;
  let base = o * params.reduce * params.inner + i;
  var best = x[base];
  var at = 0u;
  for (var r = 1u; r < params.reduce; r++) {
    let v = x[base + r * params.inner];
    // NaN wins and stays, as in torch.max.
    if ((v > best || v != v) && best == best) {
      best = v;
      at = r;
    }
  }
  out[j] = best;
  argmax[j] = i32(at);
}

@compute @workgroup_size(WG)
fn max_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let k = linear_id(gid, groups);
  if (k >= params.outer * params.reduce * params.inner) {
    return;
  }
  let i = k % params.inner;
  let r = (k / params.inner) % params.reduce;
  let o = k / (params.inner * params.reduce);
  let j = o * params.inner + i;
  dx[k] = select(0.0, dout[j], u32(argmax_in[j]) == r);
}

@compute @workgroup_size(WG)
fn expand_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let k = linear_id(gid, groups);
  if (k >= params.outer * params.reduce * params.inner) {
    return;
  }
  let i = k % params.inner;
  let o = k / (params.inner * params.reduce);
  dx[k] = dout[o * params.inner + i] * params.scale;
}
