// Tensor creation and layout on the GPU: constant fills and the
// transpose of the last two dimensions.
//
// Entry points
//   fill              out[i] = value                         (torch.full / zeros / ones)
//   transpose_last2   out[b, j, i] = x[b, i, j] for x (B, R, C) (torch.transpose(-2, -1).contiguous())
// Bindings
//   out: (n) read_write, or (B, C, R) for transpose
//   x:   (B, R, C) read                                     [transpose_last2]
//   params: uniform Params { n, rows, cols, value }
// Dispatch: 1-D, ceil(n / WG) workgroups, folded into y past 65,535.

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
