// Batch conversion and data augmentation on the GPU: uint8 pixels uploaded as packed words (or
// float32 images) become float32 NCHW images, each output sample a rotated, flipped, cropped or
// resized-cropped view of one source image, then gamma-corrected and normalised. Every random
// choice is drawn per sample on the CPU and arrives in `samples`, so results are reproducible.
//
// Per output pixel (n, c, y, x), with s = samples[n]:
//   1. undo the rotation: (y, x) in torch.rot90(img, s.rot, dims=(2, 3)) (counter-clockwise)
//      comes from (x, W−1−y) for rot 1, (H−1−y, W−1−x) for 2, (H−1−x, y) for 3 (square only)
//   2. undo the flip: x → W−1−x (torchvision hflip)
//   3. with (y, x) now a position in the crop: bilinear = 0: source pixel (s.top + y, s.left + x),
//      zero outside the image (torchvision RandomCrop with zero padding: top and left are
//      negative inside the padding);
//      bilinear = 1: the crop box (s.top, s.left, s.crop_h, s.crop_w) resized to out_h × out_w,
//      torch.nn.functional.interpolate(mode='bilinear', align_corners=False) semantics
//      (torchvision resized_crop; no antialiasing)
//   4. use_gamma: v = clamp(v^s.gamma, 0, 1) (torchvision adjust_gamma, gain 1)
//   5. normalize: v = (v − mean[c]) / std[c] (torchvision Normalize)
// uint8 bytes become v = byte · f32(1/255): within one ulp of torch's byte / 255, exactly 0 and
// 1 at the ends, and the same bits on every device (a multiply is correctly rounded in WGSL; a
// divide is not). Steps 1–3 in exact mode only move values, so rotations are bit-exact.
//
// Entry points
//   augment_u8   from uint8 pixels
//   augment_f32  from float32 images
//   convert_u8   the plain conversion (no augmentation), 4 bytes → one vec4 per invocation
// Bindings
//   out:     (N, C, out_h, out_w) f32 read_write
//   src_u8:  (ceil(Ns·C·src_h·src_w / 4)) u32 read: bytes of (Ns, C, src_h, src_w), 4 per word,
//            the first byte in the low bits                                    [augment_u8]
//   src_f32: (Ns, C, src_h, src_w) f32 read                                    [augment_f32]
//   samples: (N) Sample read: the source image and random choices of each output sample
//   out4:    (N·C·H·W / 4) vec4<f32> read_write: the output of convert_u8 (a multiple of 4 elements)
//   params:  uniform Params (below; stdev holds Normalize's std)
// Workgroup: WX × WY (8 × 8) invocations; each writes 4 consecutive outputs of one row (lavapipe
// runs one invocation per SIMD lane, so amortising the per-invocation work over 4 outputs is
// what makes this kernel fast there). Dispatch (ceil(out_w / (4·WX)), ceil(out_h / WY), planes),
// a plane being one channel of one output sample: output sample sample_base + z / channels,
// channel z % channels (at most 65,535 planes per dispatch). convert_u8: 1-D, one vec4 per
// invocation, ceil(vec4s / (WX·WY)) workgroups, folded into y past 65,535.

struct Sample {
  // Index of the source image.
  src: u32,
  // Quarter turns counter-clockwise, 0…3.
  rot: u32,
  // 1: mirror left-right.
  flip: u32,
  // Crop origin in source pixels (negative inside the zero padding).
  top: i32,
  left: i32,
  // Crop size in source pixels (bilinear mode only).
  crop_h: u32,
  crop_w: u32,
  gamma: f32,
}

struct Params {
  // The output sample of plane z = 0 (dispatches of more than 65,535 planes are split).
  sample_base: u32,
  channels: u32,
  src_h: u32,
  src_w: u32,
  out_h: u32,
  out_w: u32,
  bilinear: u32,
  use_gamma: u32,
  normalize: u32,
  // convert_u8: the number of vec4 outputs.
  vec4s: u32,
  mean: vec4<f32>,
  stdev: vec4<f32>,
}

override WX: u32 = 8;
override WY: u32 = 8;

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> src_u8: array<u32>;
@group(0) @binding(2) var<storage, read> src_f32: array<f32>;
@group(0) @binding(3) var<storage, read> samples: array<Sample>;
@group(0) @binding(4) var<uniform> params: Params;
@group(0) @binding(5) var<storage, read_write> out4: array<vec4<f32>>;

// The run of up to 4 outputs one invocation writes, and where it reads from.
struct Run {
  ok: bool,
  // Outputs in the run (fewer than 4 at the end of a row).
  count: u32,
  // Flat index of the run's first output.
  o: u32,
  s: Sample,
  c: u32,
  // Index of the sample's plane c in the source, in elements.
  plane: u32,
  // Position of the first output in the unrotated, unflipped crop, and its step along the run.
  p: vec2<i32>,
  dp: vec2<i32>,
}

fn run_of(gid: vec3<u32>) -> Run {
  var r: Run;
  let x = gid.x * 4u;
  let y = gid.y;
  let ow = params.out_w;
  let oh = params.out_h;
  r.ok = x < ow && y < oh;
  if (!r.ok) {
    return r;
  }
  r.count = min(4u, ow - x);
  let n = params.sample_base + gid.z / params.channels;
  r.c = gid.z % params.channels;
  r.o = ((n * params.channels + r.c) * oh + y) * ow + x;
  r.s = samples[n];
  r.plane = (r.s.src * params.channels + r.c) * params.src_h * params.src_w;
  // 1. Undo the rotation: (row, column) in the unrotated image, and its step as x grows.
  let xi = i32(x);
  let yi = i32(y);
  let wi = i32(ow);
  let hi = i32(oh);
  switch r.s.rot {
    case 1u: { r.p = vec2<i32>(xi, wi - 1 - yi); r.dp = vec2<i32>(1, 0); }
    case 2u: { r.p = vec2<i32>(hi - 1 - yi, wi - 1 - xi); r.dp = vec2<i32>(0, -1); }
    case 3u: { r.p = vec2<i32>(hi - 1 - xi, yi); r.dp = vec2<i32>(-1, 0); }
    default: { r.p = vec2<i32>(yi, xi); r.dp = vec2<i32>(0, 1); }
  }
  // 2. Undo the flip.
  if (r.s.flip != 0u) {
    r.p.y = wi - 1 - r.p.y;
    r.dp.y = -r.dp.y;
  }
  return r;
}

// 3a. Exact mode: the source element of crop position p, or -1 inside the zero padding.
fn exact_index(r: Run, p: vec2<i32>) -> i32 {
  let sy = r.s.top + p.x;
  let sx = r.s.left + p.y;
  if (sy < 0 || sx < 0 || sy >= i32(params.src_h) || sx >= i32(params.src_w)) {
    return -1;
  }
  return i32(r.plane) + sy * i32(params.src_w) + sx;
}

// 3b. Bilinear mode: torch's area_pixel_compute_source_index (align_corners=False) inside the
// crop box; the four source elements and their weights.
struct Taps {
  idx: vec4<u32>,
  w: vec4<f32>,
}

fn bilinear_taps(r: Run, p: vec2<i32>) -> Taps {
  let fy = max((f32(p.x) + 0.5) * (f32(r.s.crop_h) / f32(params.out_h)) - 0.5, 0.0);
  let fx = max((f32(p.y) + 0.5) * (f32(r.s.crop_w) / f32(params.out_w)) - 0.5, 0.0);
  let y0 = min(u32(fy), r.s.crop_h - 1u);
  let x0 = min(u32(fx), r.s.crop_w - 1u);
  let y1 = min(y0 + 1u, r.s.crop_h - 1u);
  let x1 = min(x0 + 1u, r.s.crop_w - 1u);
  let ly = fy - f32(y0);
  let lx = fx - f32(x0);
  let row0 = r.plane + (u32(r.s.top) + y0) * params.src_w + u32(r.s.left);
  let row1 = r.plane + (u32(r.s.top) + y1) * params.src_w + u32(r.s.left);
  var t: Taps;
  t.idx = vec4<u32>(row0 + x0, row0 + x1, row1 + x0, row1 + x1);
  t.w = vec4<f32>((1.0 - ly) * (1.0 - lx), (1.0 - ly) * lx, ly * (1.0 - lx), ly * lx);
  return t;
}

// Steps 4 and 5.
fn finish(r: Run, v: f32) -> f32 {
  var result = v;
  if (params.use_gamma != 0u) {
    result = select(0.0, clamp(pow(result, r.s.gamma), 0.0, 1.0), result > 0.0);
  }
  if (params.normalize != 0u) {
    result = (result - params.mean[r.c]) / params.stdev[r.c];
  }
  return result;
}

fn load_u8(i: u32) -> f32 {
  let byte = (src_u8[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu;
  // f32(1/255), spelled as bits so that no compiler rounds the constant differently.
  return f32(byte) * bitcast<f32>(0x3b808081u);
}

@compute @workgroup_size(WX, WY)
fn augment_u8(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r = run_of(gid);
  if (!r.ok) {
    return;
  }
  // A constant trip count lets the compiler unroll the run.
  for (var k = 0u; k < 4u; k++) {
    if (k >= r.count) {
      break;
    }
    let p = r.p + i32(k) * r.dp;
    var v = 0.0;
    if (params.bilinear == 0u) {
      let i = exact_index(r, p);
      if (i >= 0) {
        v = load_u8(u32(i));
      }
    } else {
      let t = bilinear_taps(r, p);
      v = t.w.x * load_u8(t.idx.x) + t.w.y * load_u8(t.idx.y) + t.w.z * load_u8(t.idx.z) + t.w.w * load_u8(t.idx.w);
    }
    out[r.o + k] = finish(r, v);
  }
}

@compute @workgroup_size(WX, WY)
fn augment_f32(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r = run_of(gid);
  if (!r.ok) {
    return;
  }
  // A constant trip count lets the compiler unroll the run.
  for (var k = 0u; k < 4u; k++) {
    if (k >= r.count) {
      break;
    }
    let p = r.p + i32(k) * r.dp;
    var v = 0.0;
    if (params.bilinear == 0u) {
      let i = exact_index(r, p);
      if (i >= 0) {
        v = src_f32[u32(i)];
      }
    } else {
      let t = bilinear_taps(r, p);
      v = t.w.x * src_f32[t.idx.x] + t.w.y * src_f32[t.idx.y] + t.w.z * src_f32[t.idx.z] + t.w.w * src_f32[t.idx.w];
    }
    out[r.o + k] = finish(r, v);
  }
}

@compute @workgroup_size(WX, WY)
fn convert_u8(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
  @builtin(num_workgroups) groups: vec3<u32>,
) {
  let i = (wid.x + wid.y * groups.x) * WX * WY + lid;
  if (i >= params.vec4s) {
    return;
  }
  let word = src_u8[i];
  let bytes = vec4<u32>(word & 0xffu, (word >> 8u) & 0xffu, (word >> 16u) & 0xffu, word >> 24u);
  out4[i] = vec4<f32>(bytes) * bitcast<f32>(0x3b808081u);
}
