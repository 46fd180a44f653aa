// Small float64 helpers shared by the CPU references of the op table.
import type { RefTensor } from './op.js';

export function ref(shape: readonly number[], data: ArrayLike<number>): RefTensor {
  return { shape: [...shape], data: Float64Array.from(data) };
}

export function mapRef(x: RefTensor, f: (v: number) => number): RefTensor {
  return { shape: [...x.shape], data: x.data.map(f) };
}

/** Splits a shape around one axis into (outer, reduce, inner), as the reduction kernels see it. */
export function aroundAxis(shape: readonly number[], axis: number): [number, number, number] {
  let outer = 1;
  let inner = 1;
  for (let d = 0; d < axis; d++) outer *= shape[d]!;
  for (let d = axis + 1; d < shape.length; d++) inner *= shape[d]!;
  return [outer, shape[axis]!, inner];
}

/** A negative axis counts from the end, as in PyTorch. */
export function normalizeAxis(axis: number, rank: number, op: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= Math.max(rank, 1)) {
    throw new Error(`${op}: dim ${axis} is out of range for a tensor with ${rank} dimension(s)`);
  }
  return a;
}
