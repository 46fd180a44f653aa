// Dropout with a counter-based mask (torch.nn.functional.dropout in training mode): element i
// is kept when hash(i, seed) ≥ p·2³², and kept values are scaled by 1/(1 − p) (inverted
// dropout). The mask is a pure function of (seed, i), so backward regenerates it instead of
// storing it, and the same seed always drops the same elements.
//
// Entry points
//   dropout_forward   out = x · keep(i) / (1 − p)
//   dropout_backward  dx = dout · keep(i) / (1 − p), the same mask
// Bindings
//   out:  (n) read_write   [dropout_forward]      x:    (n) read   [dropout_forward]
//   dx:   (n) read_write   [dropout_backward]     dout: (n) read   [dropout_backward]
//   params: uniform Params { n, threshold, seed0, seed1, scale, base }
//           base: the index of the first element bound (non-zero in a binding window), so
//           the mask depends on the element's index in the whole tensor
//           threshold = round(p·2³²) clamped to 2³² − 1; scale = 1/(1 − p), or 0 when p = 1
// Dispatch: 1-D, WG invocations each; ceil(n / WG) workgroups, folded into y past 65,535.
// The hash is mirrored in src/ops/dropout.ts, whose float64 reference draws the same mask.

struct Params {
  n: u32,
  threshold: u32,
  seed0: u32,
  seed1: u32,
  scale: f32,
  base: u32,
}

override WG: u32 = 256;

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<storage, read> dout: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

// Chris Wellons' lowbias32: a bijective 32-bit mixer with low bias.
fn mix(v: u32) -> u32 {
  var h = v;
  h ^= h >> 16u;
  h *= 0x7feb352du;
  h ^= h >> 15u;
  h *= 0x846ca68bu;
  h ^= h >> 16u;
  return h;
}

fn keep_scale(i: u32) -> f32 {
  let h = mix(mix((params.base + i) ^ params.seed0) ^ params.seed1);
  return select(0.0, params.scale, h >= params.threshold);
}

@compute @workgroup_size(WG)
fn dropout_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * WG;
  if (i < params.n) {
    out[i] = x[i] * keep_scale(i);
  }
}

@compute @workgroup_size(WG)
fn dropout_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * WG;
  if (i < params.n) {
    dx[i] = dout[i] * keep_scale(i);
  }
}
