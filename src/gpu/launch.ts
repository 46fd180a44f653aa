// The one path from a caller to a kernel: ops, optimizers, the SIMD paths, augmentation and the
// loader dispatch through launch(), with bindings by their WGSL names. A tensor larger than the
// binding ceiling (Backend.bindingLimit) is bound in windows along an outer dimension, planned
// by windows.ts: launch() cuts one dispatch (`Split`), overWindows() runs a caller's pipeline of
// several dispatches per window. Windows run in increasing order, so sums across them have one
// fixed order and the same input gives the same bits.
import { backend } from '../runtime.js';
import { Tensor } from '../tensor.js';
import type { BufferView, Uniforms } from './backend.js';
import type { Overrides } from './kernels.js';
import { formatBytes } from './pool.js';
import { planWindows, type Window } from './windows.js';

export type Binding = Tensor | BufferView | GPUTexture;
export type Grid = [number, number?, number?];

/** How one dispatch is cut when its windowed bindings pass the ceiling. */
export interface Split {
  /** Extent of the outer dimension the windowed bindings share (the batch, rows, elements). */
  extent: number;
  /** Bindings cut along it, each a whole number of 4-byte words per outer index; the rest are bound whole. */
  bindings: readonly string[];
  /** Uniform fields that change per window (the kernel's count of rows or elements, at least). */
  uniforms: (w: Window) => Uniforms;
  /** Workgroups for a window of `count` outer indices. */
  groups: (count: number) => Grid;
}

function resolve(binding: Binding): BufferView | GPUTextureView {
  if (binding instanceof Tensor) return binding.view;
  return 'buffer' in binding ? binding : binding.createView();
}

/** Dispatches file:entry once, or once per window when `grid` is a Split whose bindings pass the ceiling. */
export function launch(file: string, entry: string, bindings: Record<string, Binding>, uniforms: Uniforms, grid: Grid | Split, overrides: Overrides = {}): void {
  const gpu = backend();
  const kernel = gpu.kernel(file, entry, overrides);
  const views: Record<string, BufferView | GPUTextureView> = {};
  for (const [name, b] of Object.entries(bindings)) {
    if (b instanceof Tensor && b.device !== gpu) {
      throw new Error(`${kernel.label}: '${name}' is a tensor of another device; in data-parallel training (--devices) a step may use only tensors of the modules the loop replicates (its saved model, or LoopOptions.replicate)`);
    }
    views[name] = resolve(b);
  }
  if (Array.isArray(grid)) {
    gpu.dispatch(kernel, views, uniforms, grid);
    return;
  }
  const split = grid;
  if (split.extent === 0) return;
  const full = split.bindings.map((name) => {
    const view = views[name];
    if (!view || !('buffer' in view)) throw new Error(`${kernel.label}: windowed binding '${name}' is not a buffer`);
    return view;
  });
  // What is bound whole must fit before any window is staged.
  for (const [name, view] of Object.entries(views)) {
    if ('buffer' in view && !split.bindings.includes(name) && view.size > gpu.bindingLimit) {
      throw new Error(`${kernel.label}: '${name}' is ${formatBytes(view.size)}, over the storage binding limit of ${formatBytes(gpu.bindingLimit)}, and this op binds it whole`);
    }
  }
  const rows = full.map((view) => view.size / split.extent);
  const align = gpu.limits.minStorageBufferOffsetAlignment;
  const { windows } = planWindows(split.extent, rows, gpu.bindingLimit, align);
  if (windows.length > 1) gpu.windowed += 1;
  const writable = new Set(kernel.storage.filter((s) => !s.readOnly).map((s) => s.name));
  for (const w of windows) {
    const windowed = { ...views };
    const back: [string, BufferView, BufferView][] = [];
    split.bindings.forEach((name, i) => {
      const region = { buffer: full[i]!.buffer, offset: full[i]!.offset + w.start * rows[i]!, size: w.count * rows[i]! };
      if (region.offset % align === 0) {
        windowed[name] = region;
        return;
      }
      // A window that cannot start on an aligned byte goes through scratch, copied in stream order.
      const scratch = { buffer: gpu.alloc(region.size, `window of ${name}`), offset: 0, size: region.size };
      gpu.copy(region, scratch, region.size);
      windowed[name] = scratch;
      back.push([name, scratch, region]);
    });
    gpu.dispatch(kernel, windowed, { ...uniforms, ...split.uniforms(w) }, split.groups(w.count));
    for (const [name, scratch, region] of back) {
      if (writable.has(name)) gpu.copy(scratch, region, region.size);
      gpu.release(scratch.buffer);
    }
  }
}

/** Workgroups for a 1-D kernel over n items, WG per workgroup (the kernels' default sizes). */
export function groups1d(n: number, wg: number): [number] {
  return [Math.ceil(n / wg)];
}

/** A 1-D elementwise Split: every binding named is n words long, n in uniform `count`. */
export function elementwise(n: number, bindings: readonly string[], wg: number, count = 'n'): Split {
  return { extent: n, bindings, uniforms: (w) => ({ [count]: w.count }), groups: (c) => groups1d(c, wg) };
}

/** How overWindows assembles one output of the body. */
export type Combine =
  /** The body's output for a window is that window of the result: `rowBytes` per outer index. */
  | { concat: number }
  /** The result is the sum of the body's outputs over the windows, added in window order. */
  | 'sum';

/** The windows overWindows would use for these split tensors and outputs (one when all fit). */
export function windowsFor(split: readonly Tensor[], outputs: readonly Combine[]): Window[] {
  const gpu = backend();
  const extent = split[0]!.shape[0] ?? 1;
  const rows = split.map((t) => (4 * t.size) / extent);
  for (const o of outputs) if (o !== 'sum') rows.push(o.concat);
  return planWindows(extent, rows, gpu.bindingLimit, gpu.limits.minStorageBufferOffsetAlignment).windows;
}

/**
 * Runs `body` on the whole `split` tensors when they fit the ceiling, else once per window of
 * their first dimension (they share its extent), assembling each output as `outputs` says. For
 * ops made of several dispatches, such as the SIMD convolutions, and reductions over the batch.
 */
export function overWindows(split: readonly Tensor[], outputs: readonly Combine[], body: (parts: Tensor[]) => Tensor[]): Tensor[] {
  const windows = windowsFor(split, outputs);
  if (windows.length === 1) return body([...split]);
  const gpu = backend();
  gpu.windowed += 1;
  const results: (Tensor | null)[] = outputs.map(() => null);
  for (const w of windows) {
    const parts = split.map((t) => windowOf(t, w));
    const got = body(parts);
    parts.forEach((p) => p.dispose());
    outputs.forEach((combine, i) => {
      const part = got[i]!;
      if (combine === 'sum') {
        if (results[i]) {
          accumulate(results[i]!, part);
          part.dispose();
        } else results[i] = part;
        return;
      }
      const whole = (results[i] ??= Tensor.empty([split[0]!.shape[0]!, ...part.shape.slice(1)], part.dtype));
      const at = whole.view;
      gpu.copy(part.view, { buffer: at.buffer, offset: at.offset + w.start * combine.concat, size: part.size * 4 }, part.size * 4);
      part.dispose();
    });
  }
  return results as Tensor[];
}

/** Rows w of t's first dimension: a view where the offset binds, else a copy. */
function windowOf(t: Tensor, w: Window): Tensor {
  const view = t.narrow(w.start, w.count);
  if (view.view.offset % backend().limits.minStorageBufferOffsetAlignment === 0) return view;
  const copy = Tensor.empty(view.shape, view.dtype);
  backend().copy(view.view, copy.view, view.size * 4);
  view.dispose();
  return copy;
}

/** sum += part, elementwise, in stream order. */
function accumulate(sum: Tensor, part: Tensor): void {
  launch('fill', 'accumulate', { out: sum, x: part }, { n: sum.size, rows: 0, cols: 0, value: 0 }, elementwise(sum.size, ['out', 'x'], 256));
}
