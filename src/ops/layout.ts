// Layout ops (kernels/fill.wgsl): constant fills, the materialised transpose of the last two
// dimensions, and reshape, a view that launches no kernel.
import { Tensor } from '../tensor.js';
import { elementwise, groups1d, launch } from '../gpu/launch.js';
import type { OpDef, RefTensor } from './op.js';

const WG = 256;

export interface NoAttrs {}
/** The new shape, every dimension known (functional.ts resolves a -1). */
export interface ReshapeAttrs {
  shape: readonly number[];
}

/** A tensor of `shape` filled with value (0 bits for int32 zeros). */
export function filled(shape: readonly number[], value: number, dtype: Tensor['dtype'] = 'float32'): Tensor {
  const out = Tensor.empty(shape, dtype);
  if (dtype === 'int32' && value !== 0) throw new Error('full: int32 tensors can only be zero-filled on the GPU; use tensor() for other values');
  launch('fill', 'fill', { out }, { n: out.size, rows: 0, cols: 0, value }, elementwise(out.size, ['out'], WG));
  return out;
}

/** count (one int32) += n on the GPU, in stream order: a counter kept without readbacks. */
export function addCount(count: Tensor, n: number): void {
  if (count.dtype !== 'int32' || count.size !== 1) throw new Error(`addCount: expected one int32, got ${count.dtype} [${count.shape.join(', ')}]`);
  launch('fill', 'add_count', { count }, { n, rows: 0, cols: 0, value: 0 }, [1]);
}

export function transposeLast2(x: Tensor): Tensor {
  if (x.ndim < 2) throw new Error(`transpose: needs at least 2 dimensions, got [${x.shape.join(', ')}]`);
  const rows = x.shape[x.ndim - 2]!;
  const cols = x.shape[x.ndim - 1]!;
  const out = Tensor.empty([...x.shape.slice(0, -2), cols, rows]);
  // Windows along the leading (batch) dimensions: whole matrices.
  const plane = rows * cols;
  const split = { extent: x.size / Math.max(1, plane), bindings: ['out', 'x'], uniforms: (w: { count: number }) => ({ n: w.count * plane }), groups: (b: number) => groups1d(b * plane, WG) };
  launch('fill', 'transpose_last2', { out, x }, { n: x.size, rows, cols, value: 0 }, split);
  return out;
}

export const layoutOps = {
  reshape: {
    kernels: [],
    saves: [],
    forward: ([x], { shape }) => ({ out: x!.alias(shape) }),
    backward: ({ grad, shapes }) => [grad.alias(shapes[0]!)],
    reference: ([x], { shape }): RefTensor => ({ shape: [...shape], data: Float64Array.from(x!.data) }),
    cases: [
      { shapes: [[1]], attrs: { shape: [] } },
      { shapes: [[3, 17]], attrs: { shape: [17, 3] } },
      { shapes: [[2, 5, 13]], attrs: { shape: [10, 13, 1] } },
    ],
    tolerance: { rtol: 0, atol: 0 },
    gradTolerance: { rtol: 1e-4, atol: 1e-5 },
  } satisfies OpDef<ReshapeAttrs>,
  transpose: {
    kernels: ['fill.transpose_last2'],
    saves: [],
    forward: ([x]) => ({ out: transposeLast2(x!) }),
    backward: ({ grad }) => [transposeLast2(grad)],
    reference([x]): RefTensor {
      const shape = [...x!.shape];
      const [rows, cols] = [shape[shape.length - 2]!, shape[shape.length - 1]!];
      const data = new Float64Array(x!.data.length);
      for (let b = 0; b < x!.data.length / (rows * cols); b++) {
        for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) data[b * rows * cols + c * rows + r] = x!.data[b * rows * cols + r * cols + c]!;
      }
      return { shape: [...shape.slice(0, -2), cols, rows], data };
    },
    cases: [
      { shapes: [[1, 1]], attrs: {} },
      { shapes: [[3, 17]], attrs: {} },
      { shapes: [[2, 5, 13]], attrs: {} },
    ],
    tolerance: { rtol: 0, atol: 0 },
    gradTolerance: { rtol: 1e-4, atol: 1e-5 },
  } satisfies OpDef<NoAttrs>,
};
