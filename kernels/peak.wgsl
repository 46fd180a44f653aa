// The device's multiply-add ceiling: a kernel that touches memory once per invocation and
// otherwise only chains fused multiply-adds through registers (bench/matmul.bench.ts).
//
// Entry point
//   fma_peak   each invocation runs `iters` rounds of 8 independent vec4 multiply-adds
//              (64 floating-point operations a round), then writes one sum so nothing is elided
// Bindings
//   out:    (invocations) read_write
//   params: uniform Params { iters, seed }
// Dispatch: any grid of WG-wide workgroups; FLOPs = 64 · iters · invocations.

struct Params {
  iters: u32,
  seed: f32,
}

override WG: u32 = 256;

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<uniform> params: Params;

@compute @workgroup_size(WG)
fn fma_peak(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let id = gid.x + gid.y * groups.x * WG;
  // Values stay bounded: x·0.999 + 0.001 converges to 1 instead of overflowing.
  let m = vec4(0.999);
  let c = vec4(0.001);
  var r0 = vec4(params.seed * f32(id & 7u));
  var r1 = r0 + 1.0;
  var r2 = r0 + 2.0;
  var r3 = r0 + 3.0;
  var r4 = r0 + 4.0;
  var r5 = r0 + 5.0;
  var r6 = r0 + 6.0;
  var r7 = r0 + 7.0;
  for (var i = 0u; i < params.iters; i++) {
    r0 = fma(r0, m, c);
    r1 = fma(r1, m, c);
    r2 = fma(r2, m, c);
    r3 = fma(r3, m, c);
    r4 = fma(r4, m, c);
    r5 = fma(r5, m, c);
    r6 = fma(r6, m, c);
    r7 = fma(r7, m, c);
  }
  let s = (r0 + r1) + (r2 + r3) + (r4 + r5) + (r6 + r7);
  out[id] = s.x + s.y + s.z + s.w;
}
