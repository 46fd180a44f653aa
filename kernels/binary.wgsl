// Elementwise binary ops with NumPy/PyTorch broadcasting, and the per-operand gradients before
// they are summed back to the operand's shape.
//
// Entry points
//   binary_forward   out = a ∘ b                  (torch.add, sub, mul, div with broadcasting)
//   binary_backward  d = dout · ∂(a ∘ b)/∂a or ∂b, at the output's shape (`which` picks a or b)
// Bindings
//   out:  (n) read_write   output of either entry
//   a:    broadcastable to the output, read
//   b:    broadcastable to the output, read
//   dout: (n) read         gradient of the output      [binary_backward]
//   params: uniform Params { n, op, which, rank, shape[8], aStride[8], bStride[8] }
//           shape is the output's, right-aligned to `rank` dims; a stride of 0 broadcasts.
// Dispatch: 1-D, WG invocations each; ceil(n / WG) workgroups, folded into y past 65,535.

struct Params {
  n: u32,
  op: u32,
  which: u32,
  rank: u32,
  shape: array<vec4<u32>, 2>,
  aStride: array<vec4<u32>, 2>,
  bStride: array<vec4<u32>, 2>,
}

// Op codes: BINARY_CODES in src/ops/binary.ts, the one source (test/ops.test.ts checks these).
const OP_ADD: u32 = 0u;
const OP_SUB: u32 = 1u;
const OP_MUL: u32 = 2u;
const OP_DIV: u32 = 3u;

override WG: u32 = 256;

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> dout: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

fn lane(v: array<vec4<u32>, 2>, d: u32) -> u32 {
  return v[d / 4u][d % 4u];
}

// Maps an output index to the flat indices of a and b.
fn operands(i: u32) -> vec2<u32> {
  var rest = i;
  var ia = 0u;
  var ib = 0u;
  for (var d = i32(params.rank) - 1; d >= 0; d--) {
    let size = lane(params.shape, u32(d));
    let coord = rest % size;
    rest = rest / size;
    ia += coord * lane(params.aStride, u32(d));
    ib += coord * lane(params.bStride, u32(d));
  }
  return vec2<u32>(ia, ib);
}

@compute @workgroup_size(WG)
fn binary_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * WG;
  if (i >= params.n) {
    return;
  }
  let idx = operands(i);
  let u = a[idx.x];
  let v = b[idx.y];
  var r: f32;
  switch params.op {
    case OP_ADD: { r = u + v; }
    case OP_SUB: { r = u - v; }
    case OP_MUL: { r = u * v; }
    default: { r = u / v; }
  }
  out[i] = r;
}

@compute @workgroup_size(WG)
fn binary_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * WG;
  if (i >= params.n) {
    return;
  }
  let idx = operands(i);
  let u = a[idx.x];
  let v = b[idx.y];
  let g = dout[i];
  let wrt_a = params.which == 0u;
  var r: f32;
  switch params.op {
    case OP_ADD: { r = g; }
    case OP_SUB: { r = select(-g, g, wrt_a); }
    case OP_MUL: { r = select(g * u, g * v, wrt_a); }
    default: { r = select(-g * u / (v * v), g / v, wrt_a); }
  }
  out[i] = r;
}
