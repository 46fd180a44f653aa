// The one path from an op to a kernel: tensors bound by their WGSL names.
import type { Uniforms } from '../gpu/backend.js';
import type { Overrides } from '../gpu/kernels.js';
import { backend } from '../runtime.js';
import type { Tensor } from '../tensor.js';

export function launch(
  file: string,
  entry: string,
  bindings: Record<string, Tensor>,
  uniforms: Uniforms,
  groups: [number, number?, number?],
  overrides: Overrides = {},
): void {
  const gpu = backend();
  const views: Record<string, Tensor['view']> = {};
  for (const [name, t] of Object.entries(bindings)) views[name] = t.view;
  gpu.dispatch(gpu.kernel(file, entry, overrides), views, uniforms, groups);
}

/** Workgroups for a 1-D kernel over n items, WG per workgroup (the kernels' default sizes). */
export function groups1d(n: number, wg: number): [number] {
  return [Math.ceil(n / wg)];
}
