// Batch normalisation over (N, C, S) tensors (S = H·W for BatchNorm2d, L or 1 for BatchNorm1d),
// as torch.nn.functional.batch_norm. Training normalises with the batch's biased variance and
// updates the running statistics in place with the unbiased one (PyTorch's momentum rule);
// eval normalises with the running statistics. Every reduction is a fixed-order sum per lane
// followed by a fixed tree across the workgroup, so the same input gives the same bits.
//
// Entry points
//   bn_stats            per channel (one workgroup each): mean and biased variance by Welford's
//                       update per lane and Chan's combination across lanes; writes mean and
//                       invstd = 1/sqrt(var + eps); with hasRunning, running_mean and
//                       running_var ← (1 − momentum)·running + momentum·batch (unbiased var)
//                       (partial = 1: writes the window's mean and M2 = Σ(x − mean)² instead)
//   bn_stats_merge      per channel, for x bound in windows along N: folds one window's mean
//                       and M2 (meanIn, invstdIn, from bn_stats with partial = 1) into mean and
//                       invstd (holding M2) by Chan's rule, window after window in order; with
//                       finish = 1 writes invstd and updates the running statistics as bn_stats
//   bn_stats_sync       per channel, --syncBN: mean, invstd and the running statistics as bn_stats,
//                       from the global batch's (mean, M2, count) the host combined from every
//                       device's partial statistics (syncIn)
//   bn_eval_stats       mean = running_mean, invstd = 1/sqrt(running_var + eps), per channel
//   bn_normalize        y = (x − mean)·invstd·weight + bias, E consecutive elements per invocation
//   bn_backward_reduce  per channel (one workgroup each): dbias = Σ dy, dweight = Σ dy·x̂,
//                       x̂ = (x − mean)·invstd
//   bn_backward_input   training: dx = weight·invstd·(dy − Σdy/M − x̂·Σ(dy·x̂)/M), M = N·S;
//                       eval (training = 0): dx = weight·invstd·dy
//   bn_running_grads    eval only, the gradients of the running statistics used as inputs:
//                       drunning_mean = −weight·invstd·Σdy, drunning_var = −½·weight·invstd²·Σ(dy·x̂)
//   bn_stats4, bn_normalize4, bn_backward_reduce4, bn_backward_input4
//                       the same through vec4 bindings, for S a multiple of 4: on lavapipe a
//                       vec4 load costs about half as much per float as four scalar loads
// Bindings
//   x:        (N, C, S) read                     [bn_stats, bn_normalize, bn_backward_reduce, bn_backward_input]
//   mean, invstd:         (C) read_write         [bn_stats, bn_stats_merge, bn_stats_sync, bn_eval_stats]
//   runMean, runVar:      (C) read_write         [bn_stats, bn_stats_merge, bn_stats_sync with hasRunning; bn_eval_stats]
//   meanIn, invstdIn:     (C) read               [bn_normalize, bn_backward_*, bn_running_grads, bn_stats_merge]
//   weight, bias:         (C) read; any tensor when absent (hasWeight / hasBias = 0)
//   y:        (N, C, S) read_write               [bn_normalize]
//   dy:       (N, C, S) read                     [bn_backward_reduce, bn_backward_input]
//   dx:       (N, C, S) read_write               [bn_backward_input]
//   dweight, dbias:       (C) read_write         [bn_backward_reduce]
//   sumDyXhat, sumDy:     (C) read               [bn_backward_input, bn_running_grads]
//   dmean, dvar:          (C) read_write         [bn_running_grads]
//   syncIn:   (2·C + 1) read: mean (C), M2 (C), count [bn_stats_sync]
//   x4, y4, dy4, dx4:     x, y, dy, dx as vec4s  [the …4 entries]
//   params:   uniform Params { N, C, S, hasWeight, hasBias, hasRunning, training, momentum, eps,
//                              partial, merged, window, finish, images } (merged, window: values
//                              merged so far and in this window, for bn_stats_merge; images: the
//                              images bn_normalize and bn_backward_input cover, N or a window's)
// Overrides: WG invocations per workgroup (a power of two); E elements per step, dividing S
//   (a multiple of 4 for the …4 entries).
// Dispatch: bn_stats, bn_backward_reduce: C workgroups; bn_eval_stats, bn_running_grads, bn_stats_merge, bn_stats_sync:
//   ceil(C / WG); bn_normalize, bn_backward_input: ceil(N·C·S / (E·WG)), folded past 65,535.

struct Params {
  N: u32,
  C: u32,
  S: u32,
  hasWeight: u32,
  hasBias: u32,
  hasRunning: u32,
  training: u32,
  momentum: f32,
  eps: f32,
  partial: u32,
  merged: u32,
  window: u32,
  finish: u32,
  images: u32,
}

override WG: u32 = 64;
override E: u32 = 4;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> mean: array<f32>;
@group(0) @binding(2) var<storage, read_write> invstd: array<f32>;
@group(0) @binding(3) var<storage, read_write> runMean: array<f32>;
@group(0) @binding(4) var<storage, read_write> runVar: array<f32>;
@group(0) @binding(5) var<storage, read> meanIn: array<f32>;
@group(0) @binding(6) var<storage, read> invstdIn: array<f32>;
@group(0) @binding(7) var<storage, read> weight: array<f32>;
@group(0) @binding(8) var<storage, read> bias: array<f32>;
@group(0) @binding(9) var<storage, read_write> y: array<f32>;
@group(0) @binding(10) var<storage, read> dy: array<f32>;
@group(0) @binding(11) var<storage, read_write> dx: array<f32>;
@group(0) @binding(12) var<storage, read_write> dweight: array<f32>;
@group(0) @binding(13) var<storage, read_write> dbias: array<f32>;
@group(0) @binding(14) var<storage, read> sumDyXhat: array<f32>;
@group(0) @binding(15) var<storage, read> sumDy: array<f32>;
@group(0) @binding(16) var<storage, read_write> dmean: array<f32>;
@group(0) @binding(17) var<storage, read_write> dvar: array<f32>;
@group(0) @binding(18) var<uniform> params: Params;
@group(0) @binding(19) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(20) var<storage, read_write> y4: array<vec4<f32>>;
@group(0) @binding(21) var<storage, read> dy4: array<vec4<f32>>;
@group(0) @binding(22) var<storage, read_write> dx4: array<vec4<f32>>;
@group(0) @binding(23) var<storage, read> syncIn: array<f32>;

// Per-lane partial statistics, combined pairwise in a fixed tree.
var<workgroup> count: array<f32, WG>;
var<workgroup> first: array<f32, WG>;
var<workgroup> second: array<f32, WG>;

// The start of the k-th E-element run of channel c: runs are numbered along (n, s).
struct Cursor {
  n: u32,
  run: u32,
}

fn runs_per_row() -> u32 {
  return params.S / E;
}

// Lane `lane` starts at run `lane` of the channel; every step advances WG runs.
fn cursor_start(lane: u32) -> Cursor {
  let perRow = runs_per_row();
  return Cursor(lane / perRow, lane % perRow);
}

fn cursor_next(cur: Cursor) -> Cursor {
  let perRow = runs_per_row();
  var next = Cursor(cur.n + WG / perRow, cur.run + WG % perRow);
  if (next.run >= perRow) {
    next.run -= perRow;
    next.n += 1u;
  }
  return next;
}

fn run_offset(cur: Cursor, c: u32) -> u32 {
  return (cur.n * params.C + c) * params.S + cur.run * E;
}

fn weight_of(c: u32) -> f32 {
  return select(1.0, weight[c], params.hasWeight == 1u);
}

// Welford's update of (count, mean, M2) with one value.
fn welford(state: vec3<f32>, v: f32) -> vec3<f32> {
  let k = state.x + 1.0;
  let delta = v - state.y;
  let mu = state.y + delta / k;
  return vec3(k, mu, state.z + delta * (v - mu));
}

// Combines the lanes' (count, mean, M2) pairwise in a fixed tree (Chan et al.), then writes
// the channel's mean and invstd and updates its running statistics.
fn finish_stats(c: u32, lane: u32, state: vec3<f32>) {
  count[lane] = state.x;
  first[lane] = state.y;
  second[lane] = state.z;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lane < stride) {
      let kA = count[lane];
      let kB = count[lane + stride];
      let total = kA + kB;
      if (kB > 0.0) {
        let delta = first[lane + stride] - first[lane];
        first[lane] += delta * kB / total;
        second[lane] += second[lane + stride] + delta * delta * kA * kB / total;
        count[lane] = total;
      }
    }
    workgroupBarrier();
  }
  if (lane == 0u) {
    if (params.partial == 1u) {
      mean[c] = first[0];
      invstd[c] = second[0];
    } else {
      write_stats(c, count[0], first[0], second[0]);
    }
  }
}

// The channel's mean and invstd from M values with mean batchMean and M2 = Σ(x − mean)²; the
// running statistics take the unbiased variance.
fn write_stats(c: u32, M: f32, batchMean: f32, M2: f32) {
  mean[c] = batchMean;
  invstd[c] = inverseSqrt(M2 / M + params.eps);
  if (params.hasRunning == 1u) {
    let m = params.momentum;
    runMean[c] = (1.0 - m) * runMean[c] + m * batchMean;
    runVar[c] = (1.0 - m) * runVar[c] + m * M2 / (M - 1.0);
  }
}

// Sums the lanes' (Σdy, Σdy·(x − mean)) in a fixed tree; writes dbias and dweight = Σdy·x̂.
fn finish_backward_reduce(c: u32, lane: u32, sums: vec2<f32>) {
  first[lane] = sums.x;
  second[lane] = sums.y;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lane < stride) {
      first[lane] += first[lane + stride];
      second[lane] += second[lane + stride];
    }
    workgroupBarrier();
  }
  if (lane == 0u) {
    dbias[c] = first[0];
    dweight[c] = second[0] * invstdIn[c];
  }
}

@compute @workgroup_size(WG)
fn bn_stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let c = wid.x;
  var state = vec3(0.0);
  for (var cur = cursor_start(lane); cur.n < params.N; cur = cursor_next(cur)) {
    let at = run_offset(cur, c);
    for (var e = 0u; e < E; e++) {
      state = welford(state, x[at + e]);
    }
  }
  finish_stats(c, lane, state);
}

@compute @workgroup_size(WG)
fn bn_stats4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let c = wid.x;
  var state = vec3(0.0);
  for (var cur = cursor_start(lane); cur.n < params.N; cur = cursor_next(cur)) {
    let at = run_offset(cur, c) / 4u;
    for (var e = 0u; e < E / 4u; e++) {
      let v = x4[at + e];
      state = welford(welford(welford(welford(state, v.x), v.y), v.z), v.w);
    }
  }
  finish_stats(c, lane, state);
}

@compute @workgroup_size(WG)
fn bn_stats_merge(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= params.C) {
    return;
  }
  let kA = f32(params.merged);
  let kB = f32(params.window);
  var mu = meanIn[c];
  var m2 = invstdIn[c];
  if (params.merged > 0u) {
    let delta = mu - mean[c];
    mu = mean[c] + delta * kB / (kA + kB);
    m2 = invstd[c] + m2 + delta * delta * kA * kB / (kA + kB);
  }
  if (params.finish == 1u) {
    write_stats(c, kA + kB, mu, m2);
  } else {
    mean[c] = mu;
    invstd[c] = m2;
  }
}

@compute @workgroup_size(WG)
fn bn_stats_sync(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c < params.C) {
    write_stats(c, syncIn[2u * params.C], syncIn[c], syncIn[params.C + c]);
  }
}

@compute @workgroup_size(WG)
fn bn_eval_stats(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c < params.C) {
    mean[c] = runMean[c];
    invstd[c] = inverseSqrt(runVar[c] + params.eps);
  }
}

// The channel's y = x·scale + shift.
fn normalize_coefficients(c: u32) -> vec2<f32> {
  let scale = invstdIn[c] * weight_of(c);
  return vec2(scale, select(0.0, bias[c], params.hasBias == 1u) - meanIn[c] * scale);
}

@compute @workgroup_size(WG)
fn bn_normalize(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let at = (gid.x + gid.y * groups.x * WG) * E;
  if (at >= params.images * params.C * params.S) {
    return;
  }
  // E divides S, so the run stays in one channel.
  let k = normalize_coefficients((at / params.S) % params.C);
  for (var e = 0u; e < E; e++) {
    y[at + e] = fma(x[at + e], k.x, k.y);
  }
}

@compute @workgroup_size(WG)
fn bn_normalize4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let at = (gid.x + gid.y * groups.x * WG) * E;
  if (at >= params.images * params.C * params.S) {
    return;
  }
  let k = normalize_coefficients((at / params.S) % params.C);
  for (var e = 0u; e < E / 4u; e++) {
    y4[at / 4u + e] = fma(x4[at / 4u + e], vec4(k.x), vec4(k.y));
  }
}

@compute @workgroup_size(WG)
fn bn_backward_reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let c = wid.x;
  let mu = meanIn[c];
  var sums = vec2(0.0);
  for (var cur = cursor_start(lane); cur.n < params.N; cur = cursor_next(cur)) {
    let at = run_offset(cur, c);
    for (var e = 0u; e < E; e++) {
      let g = dy[at + e];
      sums += vec2(g, g * (x[at + e] - mu));
    }
  }
  finish_backward_reduce(c, lane, sums);
}

@compute @workgroup_size(WG)
fn bn_backward_reduce4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let c = wid.x;
  let mu = meanIn[c];
  var sdy = vec4(0.0);
  var sdyx = vec4(0.0);
  for (var cur = cursor_start(lane); cur.n < params.N; cur = cursor_next(cur)) {
    let at = run_offset(cur, c) / 4u;
    for (var e = 0u; e < E / 4u; e++) {
      let g = dy4[at + e];
      sdy += g;
      sdyx += g * (x4[at + e] - mu);
    }
  }
  finish_backward_reduce(c, lane, vec2((sdy.x + sdy.y) + (sdy.z + sdy.w), (sdyx.x + sdyx.y) + (sdyx.z + sdyx.w)));
}

// dx = a·dy + b·x + d for the channel: training folds the mean terms into b and d.
fn input_coefficients(c: u32) -> vec3<f32> {
  let inv = invstdIn[c];
  let scale = inv * weight_of(c);
  if (params.training == 0u) {
    return vec3(scale, 0.0, 0.0);
  }
  // dx = scale·(dy − Σdy/M − (x − mean)·k) with k = Σ(dy·x̂)·invstd/M, since x̂·Σ(dy·x̂)/M = (x − mean)·k.
  let M = f32(params.N * params.S);
  let k = sumDyXhat[c] * inv / M;
  return vec3(scale, -scale * k, scale * (meanIn[c] * k - sumDy[c] / M));
}

@compute @workgroup_size(WG)
fn bn_backward_input(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let at = (gid.x + gid.y * groups.x * WG) * E;
  if (at >= params.images * params.C * params.S) {
    return;
  }
  let k = input_coefficients((at / params.S) % params.C);
  for (var e = 0u; e < E; e++) {
    dx[at + e] = fma(dy[at + e], k.x, fma(x[at + e], k.y, k.z));
  }
}

@compute @workgroup_size(WG)
fn bn_backward_input4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let at = (gid.x + gid.y * groups.x * WG) * E;
  if (at >= params.images * params.C * params.S) {
    return;
  }
  let k = input_coefficients((at / params.S) % params.C);
  for (var e = 0u; e < E / 4u; e++) {
    dx4[at / 4u + e] = fma(dy4[at / 4u + e], vec4(k.x), fma(x4[at / 4u + e], vec4(k.y), vec4(k.z)));
  }
}

@compute @workgroup_size(WG)
fn bn_running_grads(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c < params.C) {
    let inv = invstdIn[c];
    let w = weight_of(c);
    dmean[c] = -w * inv * sumDy[c];
    dvar[c] = -0.5 * w * inv * inv * sumDyXhat[c];
  }
}
