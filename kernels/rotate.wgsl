// The K-way rotation pretext's batch (RotNet with --rotations 3: 0°, 120°, 240°): every image
// becomes K consecutive samples rotated counter-clockwise by k·360°/K about its centre, resampled
// bilinearly (torchvision.transforms.functional.rotate with InterpolationMode.BILINEAR, fill
// outside the image). At multiples of 90° it gives torch.rot90's pixels exactly.
//
// Per output element (n·K + k, c, y, x), with centre m = (S − 1) / 2, (cos, sin) of angle k:
//   source x = m + (x − m)·cos − (y − m)·sin,  source y = m + (x − m)·sin + (y − m)·cos
//   then the four neighbours' bilinear weights, a neighbour outside the image reading fill[c]
//   (the normalised value of black, −mean / std, when the images are already normalised).
//
// Entry point: rotate_bilinear
// Bindings
//   out:    (N·K, C, S, S) f32 read_write
//   src:    (N, C, S, S) f32 read
//   params: uniform Params: count (elements of out), channels, size (S), copies (K ≤ 4),
//           cos, sin (vec4: angle k in lane k, rounded on the CPU so 90° turns are exact), fill (vec4)
// Workgroup: 64 invocations, one output element each; dispatch ceil(count / 64) workgroups,
// folded into y past 65,535.

struct Params {
  count: u32,
  channels: u32,
  size: u32,
  copies: u32,
  cos: vec4<f32>,
  sin: vec4<f32>,
  fill: vec4<f32>,
}

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

fn tap(plane: u32, c: u32, y: i32, x: i32) -> f32 {
  let s = i32(params.size);
  if (y < 0 || x < 0 || y >= s || x >= s) {
    return params.fill[c];
  }
  return src[plane + u32(y * s + x)];
}

@compute @workgroup_size(64)
fn rotate_bilinear(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = (wid.x + wid.y * groups.x) * 64u + lid;
  if (i >= params.count) {
    return;
  }
  let s = params.size;
  let x = i % s;
  let y = (i / s) % s;
  let c = (i / (s * s)) % params.channels;
  let sample = i / (s * s * params.channels);
  let k = sample % params.copies;
  let plane = ((sample / params.copies) * params.channels + c) * s * s;
  let m = (f32(s) - 1.0) * 0.5;
  let dx = f32(x) - m;
  let dy = f32(y) - m;
  let fx = m + dx * params.cos[k] - dy * params.sin[k];
  let fy = m + dx * params.sin[k] + dy * params.cos[k];
  let x0 = floor(fx);
  let y0 = floor(fy);
  let lx = fx - x0;
  let ly = fy - y0;
  let xi = i32(x0);
  let yi = i32(y0);
  out[i] = (1.0 - ly) * ((1.0 - lx) * tap(plane, c, yi, xi) + lx * tap(plane, c, yi, xi + 1))
    + ly * ((1.0 - lx) * tap(plane, c, yi + 1, xi) + lx * tap(plane, c, yi + 1, xi + 1));
}
