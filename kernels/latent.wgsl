// A VAE's latent code: the reparameterisation z = μ + exp(½·log σ²)·ε with counter-based normal
// noise, the KL divergence of N(μ, σ²) from N(0, 1), and the triplet margin loss on codes. Each
// loss writes per-row terms; the reduction is reduce.wgsl's fixed-order sum, so losses are
// bitwise repeatable.
//
// Entry points
//   reparameterize_forward   out[i] = a[i] + exp(b[i] / 2) · ε(base + i)   (a = μ, b = log σ²)
//   reparameterize_backward  da[i] = dout[i];  db[i] = dout[i] · exp(b[i] / 2) · ε(base + i) / 2
//   kl_forward               out[n] = −½ Σ_d (1 + b − a² − exp(b))   (the PyTorch VAE example's KLD, per row)
//   kl_backward              da[i] = dout[0]·scale·a[i];  db[i] = dout[0]·scale·(exp(b[i]) − 1) / 2
//   triplet_forward          out[n] = max(d(a, b) − d(a, c) + margin, 0), d(x, y) = ‖x − y + eps‖₂
//                            (torch.nn.TripletMarginLoss, p = 2, swap = False), stats[n] = (d_ap, d_an)
//   triplet_backward         da, db, dc of dout[0]·scale·out[n]: (u_ap − u_an, −u_ap, u_an) on rows
//                            whose hinge is ≥ 0 (torch's clamp_min mask), u = (x − y + eps) / d (0 at d = 0)
// Bindings (rows N, dim D; the reparameterisation's rows are single elements, dim 1)
//   out:   (N) read_write           z, or per-row loss terms
//   stats: (N, 2) read_write [triplet_forward] / stats_in read [triplet_backward]
//   a, b, c: (N, D) read            μ, log σ² (reparameterize, kl); anchor, positive, negative (triplet)
//   dout:  (N, D) or (1) read       gradient of z, or of the reduced loss
//   da, db, dc: (N, D) read_write
//   params: uniform Params { rows, dim, seed0, seed1, base, margin, eps, scale }
//           base: index of the first element bound (non-zero in a binding window), so that the
//           noise depends on the element's index in the whole tensor; scale: 1/N for a mean
// Dispatch: 1-D, ceil(rows / WG) (per-row entries) or ceil(rows·dim / WG), folded into y past 65,535.
// ε is Box–Muller on two lowbias32 hashes of (2i, 2i + 1) and the seed, mirrored in src/ops/latent.ts.

struct Params {
  rows: u32,
  dim: u32,
  seed0: u32,
  seed1: u32,
  base: u32,
  margin: f32,
  eps: f32,
  scale: f32,
}

override WG: u32 = 64;

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read_write> stats: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read> c: array<f32>;
@group(0) @binding(5) var<storage, read> dout: array<f32>;
@group(0) @binding(6) var<storage, read> stats_in: array<f32>;
@group(0) @binding(7) var<storage, read_write> da: array<f32>;
@group(0) @binding(8) var<storage, read_write> db: array<f32>;
@group(0) @binding(9) var<storage, read_write> dc: array<f32>;
@group(0) @binding(10) var<uniform> params: Params;

fn linear_id(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
  return gid.x + gid.y * groups.x * WG;
}

// Chris Wellons' lowbias32, as kernels/dropout.wgsl.
fn mix(v: u32) -> u32 {
  var h = v;
  h ^= h >> 16u;
  h *= 0x7feb352du;
  h ^= h >> 15u;
  h *= 0x846ca68bu;
  h ^= h >> 16u;
  return h;
}

fn hash(k: u32) -> u32 {
  return mix(mix(k ^ params.seed0) ^ params.seed1);
}

// A standard normal sample for element i: 24-bit uniforms are exact in f32, u1 in (0, 1).
fn noise(i: u32) -> f32 {
  let k = 2u * (params.base + i);
  let u1 = (f32(hash(k) >> 8u) + 0.5) * 5.9604645e-8;
  let u2 = f32(hash(k + 1u) >> 8u) * 5.9604645e-8;
  return sqrt(-2.0 * log(u1)) * cos(6.2831853 * u2);
}

@compute @workgroup_size(WG)
fn reparameterize_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = linear_id(gid, groups);
  if (i < params.rows) {
    out[i] = a[i] + exp(0.5 * b[i]) * noise(i);
  }
}

@compute @workgroup_size(WG)
fn reparameterize_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = linear_id(gid, groups);
  if (i < params.rows) {
    da[i] = dout[i];
    db[i] = dout[i] * 0.5 * exp(0.5 * b[i]) * noise(i);
  }
}

@compute @workgroup_size(WG)
fn kl_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let n = linear_id(gid, groups);
  if (n >= params.rows) {
    return;
  }
  var total = 0.0;
  for (var d = 0u; d < params.dim; d++) {
    let m = a[n * params.dim + d];
    let lv = b[n * params.dim + d];
    total += 1.0 + lv - m * m - exp(lv);
  }
  out[n] = -0.5 * total;
}

@compute @workgroup_size(WG)
fn kl_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = linear_id(gid, groups);
  if (i >= params.rows * params.dim) {
    return;
  }
  let g = dout[0] * params.scale;
  da[i] = g * a[i];
  db[i] = g * 0.5 * (exp(b[i]) - 1.0);
}

fn distance(y: u32, n: u32) -> f32 {
  var total = 0.0;
  for (var d = 0u; d < params.dim; d++) {
    let i = n * params.dim + d;
    let other = select(c[i], b[i], y == 0u);
    let v = a[i] - other + params.eps;
    total += v * v;
  }
  return sqrt(total);
}

@compute @workgroup_size(WG)
fn triplet_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let n = linear_id(gid, groups);
  if (n >= params.rows) {
    return;
  }
  let ap = distance(0u, n);
  let an = distance(1u, n);
  stats[2u * n] = ap;
  stats[2u * n + 1u] = an;
  out[n] = max(ap - an + params.margin, 0.0);
}

@compute @workgroup_size(WG)
fn triplet_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = linear_id(gid, groups);
  if (i >= params.rows * params.dim) {
    return;
  }
  let n = i / params.dim;
  let ap = stats_in[2u * n];
  let an = stats_in[2u * n + 1u];
  let hinged = ap - an + params.margin >= 0.0;
  let g = select(0.0, dout[0] * params.scale, hinged);
  let up = select(0.0, (a[i] - b[i] + params.eps) / ap, ap > 0.0);
  let un = select(0.0, (a[i] - c[i] + params.eps) / an, an > 0.0);
  da[i] = g * (up - un);
  db[i] = -g * up;
  dc[i] = g * un;
}
