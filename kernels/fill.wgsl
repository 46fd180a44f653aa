// Tensor creation and layout on the GPU: constant fills and the
// transpose of the last two dimensions.
//
// Entry points
//   fill              out[i] = value                         (torch.full / zeros / ones)
//   transpose_last2   out[b, j, i] = x[b, i, j] for x (B, R, C) (torch.transpose(-2, -1).contiguous())
//   add_count         count[0] += n, one invocation (num_batches_tracked += 1 without a readback)
//   accumulate        out[i] += x[i]: sums across binding windows, added in window order
// Bindings
//   out: (n) read_write, or (B, C, R) for transpose
//   x:   (B, R, C) read [transpose_last2]; (n) read [accumulate]
//   count: (1) i32 read_write                                [add_count]
//   params: uniform Params { n, rows, cols, value }
// Dispatch: 1-D, ceil(n / WG) workgroups, folded into y past 65,535; add_count: 1 workgroup.

struct Params {
  n: u32,
  rows: u32,
  cols: u32,
  value: f32,
}

override WG: u32 = 256;

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;
@group(0) @binding(3) var<storage, read_write> count: array<i32>;

@compute @workgroup_size(WG)
fn fill(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * WG;
  if (i < params.n) {
    out[i] = params.value;
  }
}

@compute @workgroup_size(WG)
fn transpose_last2(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let k = gid.x + gid.y * groups.x * WG;
  if (k >= params.n) {
    return;
  }
  // k indexes the output (B, cols, rows).
  let plane = params.rows * params.cols;
  let b = k / plane;
  let r = k % params.rows;
  let c = (k / params.rows) % params.cols;
  out[k] = x[b * plane + r * params.cols + c];
}

@compute @workgroup_size(WG)
fn accumulate(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * WG;
  if (i < params.n) {
    out[i] += x[i];
  }
}

@compute @workgroup_size(1)
fn add_count() {
  count[0] += i32(params.n);
}
