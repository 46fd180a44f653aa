// Elementwise unary ops and their gradients. One op code selects the function, so the whole
// family compiles to two pipelines (LLVM compiles are what lavapipe spends its seconds on).
//
// Entry points
//   unary_forward   out = f(x)                      (torch.neg, exp, log, sqrt, pow, relu,
//                                                    leaky_relu, sigmoid, tanh, and a·x + b)
//   unary_backward  dx = dout · f'(·), from the forward input or output as `saved` holds
// Bindings
//   out:   (n) read_write   forward output              [unary_forward]
//   x:     (n) read         forward input               [unary_forward]
//   dx:    (n) read_write   gradient of the input       [unary_backward]
//   dout:  (n) read         gradient of the output      [unary_backward]
//   saved: (n) read         x or y, per op (see OP_*)   [unary_backward]
//   params: uniform Params { n, op, alpha, beta }
// Dispatch: 1-D, WG invocations each; ceil(n / WG) workgroups, folded into y past 65,535.

struct Params {
  n: u32,
  op: u32,
  // pow: the exponent; leaky_relu: the negative slope; affine: the scale.
  alpha: f32,
  // affine: the shift.
  beta: f32,
}

// Op codes: UNARY_CODES in src/ops/unary.ts, the one source (test/ops.test.ts checks these
// against it). The comment names what backward reads as `saved`.
const OP_NEG: u32 = 0u;         // nothing
const OP_EXP: u32 = 1u;         // y
const OP_LOG: u32 = 2u;         // x
const OP_SQRT: u32 = 3u;        // y
const OP_POW: u32 = 4u;         // x
const OP_RELU: u32 = 5u;        // y
const OP_LEAKY_RELU: u32 = 6u;  // x
const OP_SIGMOID: u32 = 7u;     // y
const OP_TANH: u32 = 8u;        // y
const OP_AFFINE: u32 = 9u;      // nothing

override WG: u32 = 256;

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<storage, read> dout: array<f32>;
@group(0) @binding(4) var<storage, read> saved: array<f32>;
@group(0) @binding(5) var<uniform> params: Params;

// torch.pow semantics for a negative base and an integral exponent, which WGSL's pow leaves undefined.
fn power(v: f32, p: f32) -> f32 {
  if (v >= 0.0 || p != floor(p)) {
    return pow(v, p);
  }
  let magnitude = pow(-v, p);
  if (fract(p * 0.5) != 0.0) {
    return -magnitude;
  }
  return magnitude;
}

// Saturates instead of overflowing exp(-v) for large negative inputs.
fn sigmoid(v: f32) -> f32 {
  if (v >= 0.0) {
    return 1.0 / (1.0 + exp(-v));
  }
  let e = exp(v);
  return e / (1.0 + e);
}

// tanh through exp(-2|v|) stays finite where the textbook (e^2v - 1)/(e^2v + 1) overflows.
fn tanh_stable(v: f32) -> f32 {
  let e = exp(-2.0 * abs(v));
  return sign(v) * (1.0 - e) / (1.0 + e);
}

@compute @workgroup_size(WG)
fn unary_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * WG;
  if (i >= params.n) {
    return;
  }
  let v = x[i];
  var r: f32;
  switch params.op {
    case OP_NEG: { r = -v; }
    case OP_EXP: { r = exp(v); }
    case OP_LOG: { r = log(v); }
    case OP_SQRT: { r = sqrt(v); }
    case OP_POW: { r = power(v, params.alpha); }
    // torch.relu keeps NaN; WGSL's max(NaN, 0) may give 0 and hide it from the loss check.
    case OP_RELU: { r = select(0.0, v, !(v <= 0.0)); }
    case OP_LEAKY_RELU: { r = select(v * params.alpha, v, v > 0.0); }
    case OP_SIGMOID: { r = sigmoid(v); }
    case OP_TANH: { r = tanh_stable(v); }
    default: { r = params.alpha * v + params.beta; }
  }
  out[i] = r;
}

@compute @workgroup_size(WG)
fn unary_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * WG;
  if (i >= params.n) {
    return;
  }
  let g = dout[i];
  let s = saved[i];
  var r: f32;
  switch params.op {
    case OP_NEG: { r = -g; }
    case OP_EXP: { r = g * s; }
    case OP_LOG: { r = g / s; }
    case OP_SQRT: { r = g * 0.5 / s; }
    case OP_POW: { r = g * params.alpha * power(s, params.alpha - 1.0); }
    case OP_RELU: { r = select(0.0, g, s > 0.0); }
    case OP_LEAKY_RELU: { r = select(g * params.alpha, g, s > 0.0); }
    case OP_SIGMOID: { r = g * s * (1.0 - s); }
    case OP_TANH: { r = g * (1.0 - s * s); }
    default: { r = g * params.alpha; }
  }
  dx[i] = r;
}
