// Concatenation along one dimension (torch.cat) and its gradient, the matching slice. Viewed
// around the dimension, a part is (outer, rows) with rows = its extent × the inner size, placed
// at column `offset` of the (outer, total) result; one dispatch copies one part.
//
// Entry points
//   concat_copy    out[o, offset + r] = part[o, r]      (one part of torch.cat)
//   concat_slice   part[o, r] = out[o, offset + r]      (its gradient)
// Bindings
//   out:     (outer, total) read_write  [concat_copy]    part:    (outer, rows) read  [concat_copy]
//   partOut: (outer, rows) read_write   [concat_slice]   whole:   (outer, total) read [concat_slice]
//   params:  uniform Params { outer, rows, total, offset }
// Dispatch: 1-D over runs of E elements of one row: ceil(outer · ceil(rows / E) / WG)
//   workgroups, folded into y past 65,535.

struct Params {
  outer: u32,
  rows: u32,
  total: u32,
  offset: u32,
}

override WG: u32 = 64;
override E: u32 = 8;

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> partOut: array<f32>;
@group(0) @binding(3) var<storage, read> whole: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

// The run's row and first column, or a row past the end.
fn run_start(gid: vec3<u32>, groups: vec3<u32>) -> vec2<u32> {
  let run = gid.x + gid.y * groups.x * WG;
  let runsPerRow = (params.rows + E - 1u) / E;
  return vec2(run / runsPerRow, (run % runsPerRow) * E);
}

@compute @workgroup_size(WG)
fn concat_copy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let at = run_start(gid, groups);
  if (at.x >= params.outer) {
    return;
  }
  let src = at.x * params.rows;
  let dst = at.x * params.total + params.offset;
  for (var e = 0u; e < E; e++) {
    let r = at.y + e;
    if (r < params.rows) {
      out[dst + r] = part[src + r];
    }
  }
}

@compute @workgroup_size(WG)
fn concat_slice(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let at = run_start(gid, groups);
  if (at.x >= params.outer) {
    return;
  }
  let dst = at.x * params.rows;
  let src = at.x * params.total + params.offset;
  for (var e = 0u; e < E; e++) {
    let r = at.y + e;
    if (r < params.rows) {
      partOut[dst + r] = whole[src + r];
    }
  }
}
