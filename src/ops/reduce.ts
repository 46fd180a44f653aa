// The reduction family (kernels/reduce.wgsl): sum, mean and max over one axis. Reductions over
// several axes are applied one axis at a time by the functional API, each a recorded op, so the
// order of every sum is fixed.
import { Tensor } from '../tensor.js';
import { groups1d, launch, overWindows, type Split } from '../gpu/launch.js';
import { backend } from '../runtime.js';
import type { OpCase, OpDef, RefTensor } from './op.js';
import { aroundAxis } from './reference.js';

export interface AxisAttrs {
  /** Non-negative axis; the functional API normalises negative ones. */
  axis: number;
}

const WG = 256;

function reducedShape(shape: readonly number[], axis: number): number[] {
  return shape.filter((_, d) => d !== axis);
}

/** Cuts a dispatch over (outer, reduce, inner) along outer; `bindings` hold whole outer rows. */
function alongOuter(outer: number, bindings: string[], groups: (count: number) => [number]): Split {
  return { extent: outer, bindings, uniforms: (w) => ({ outer: w.count }), groups };
}

/** Whether x must be cut along the reduced axis itself: its only outer row passes one binding. */
const splitsReduce = (x: Tensor, outer: number): boolean => outer === 1 && 4 * x.size > backend().bindingLimit;

/** Σ over one axis, times scale: one invocation per output, or a workgroup per output when the outputs are few and the axis long. */
export function sumAxis(x: Tensor, axis: number, scale = 1): Tensor {
  const [outer, reduce, inner] = aroundAxis(x.shape, axis);
  const shape = reducedShape(x.shape, axis);
  if (splitsReduce(x, outer)) {
    // Windows along the reduced axis add up in window order.
    const rows = x.alias([reduce, inner]);
    const [sum] = overWindows([rows], ['sum'], ([part]) => [sumAxis(part!, 0, scale)]);
    rows.dispose();
    const out = sum!.alias(shape);
    sum!.dispose();
    return out;
  }
  const out = Tensor.empty(shape);
  const params = { outer, reduce, inner, scale };
  if (outer * inner < 2048 && reduce >= 512) launch('reduce', 'sum_wide', { out, x }, params, alongOuter(outer, ['out', 'x'], (n) => [n * inner]));
  else launch('reduce', 'sum_rows', { out, x }, params, alongOuter(outer, ['out', 'x'], (n) => groups1d(n * inner, WG)));
  return out;
}

/** Broadcasts dout (the input shape without `axis`) back along it, times scale. */
export function expandAxis(dout: Tensor, shape: readonly number[], axis: number, scale: number): Tensor {
  const [outer, reduce, inner] = aroundAxis(shape, axis);
  const dx = Tensor.empty(shape);
  const params = { outer, reduce, inner, scale };
  const split: Split = splitsReduce(dx, outer)
    ? { extent: reduce, bindings: ['dx'], uniforms: (w) => ({ reduce: w.count }), groups: (n) => groups1d(n * inner, WG) }
    : alongOuter(outer, ['dx', 'dout'], (n) => groups1d(n * reduce * inner, WG));
  launch('reduce', 'expand_rows', { dx, dout }, params, split);
  return dx;
}

/** Sums a broadcast result back to `shape` (right-aligned), the gradient of broadcasting. */
export function sumTo(g: Tensor, shape: readonly number[]): Tensor {
  const offset = g.ndim - shape.length;
  let t = g;
  for (let d = g.ndim - 1; d >= 0; d--) {
    const target = d < offset ? 1 : shape[d - offset]!;
    if (target === 1 && g.shape[d] !== 1) {
      const next = sumAxis(t, d);
      if (t !== g) t.dispose();
      t = next;
    }
  }
  const result = t.alias(shape);
  if (t !== g) t.dispose();
  return result;
}

function refReduce(x: RefTensor, axis: number, init: number, step: (acc: number, v: number) => number, finish = (v: number) => v): RefTensor {
  const [outer, reduce, inner] = aroundAxis(x.shape, axis);
  const data = new Float64Array(outer * inner);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      let acc = init;
      for (let r = 0; r < reduce; r++) acc = step(acc, x.data[(o * reduce + r) * inner + i]!);
      data[o * inner + i] = finish(acc);
    }
  }
  return { shape: reducedShape(x.shape, axis), data };
}

const CASES: OpCase<AxisAttrs>[] = [
  { shapes: [[1]], attrs: { axis: 0 } },
  { shapes: [[3, 17]], attrs: { axis: 1 } },
  { shapes: [[3, 17]], attrs: { axis: 0 } },
  { shapes: [[2, 5, 13]], attrs: { axis: 1 } },
  { shapes: [[1030]], attrs: { axis: 0 } },
  { shapes: [[2, 600]], attrs: { axis: 1 } },
];

const TOLERANCE = { rtol: 1e-5, atol: 1e-5 };
const GRAD_TOLERANCE = { rtol: 1e-3, atol: 1e-4 };

/** The kernels sumAxis (and so sumTo) may launch: rows, or one workgroup per wide row. */
export const SUM_KERNELS = ['reduce.sum_rows', 'reduce.sum_wide'] as const;

export const reduceOps = {
  sum: {
    kernels: [...SUM_KERNELS, 'reduce.expand_rows'],
    saves: [],
    forward: ([x], { axis }) => ({ out: sumAxis(x!, axis) }),
    backward: ({ grad, shapes, attrs }) => [expandAxis(grad, shapes[0]!, attrs.axis, 1)],
    reference: ([x], { axis }) => refReduce(x!, axis, 0, (a, v) => a + v),
    cases: CASES,
    tolerance: TOLERANCE,
    gradTolerance: GRAD_TOLERANCE,
  } satisfies OpDef<AxisAttrs>,
  mean: {
    kernels: [...SUM_KERNELS, 'reduce.expand_rows'],
    saves: [],
    forward: ([x], { axis }) => ({ out: sumAxis(x!, axis, 1 / x!.shape[axis]!) }),
    backward: ({ grad, shapes, attrs }) => [expandAxis(grad, shapes[0]!, attrs.axis, 1 / shapes[0]![attrs.axis]!)],
    reference: ([x], { axis }) => {
      const n = x!.shape[axis]!;
      return refReduce(x!, axis, 0, (a, v) => a + v, (v) => v / n);
    },
    cases: CASES,
    tolerance: TOLERANCE,
    gradTolerance: GRAD_TOLERANCE,
  } satisfies OpDef<AxisAttrs>,
  max: {
    kernels: ['reduce.max_rows', 'reduce.max_backward'],
    saves: ['extra0'],
    forward([x], { axis }) {
      const [outer, reduce, inner] = aroundAxis(x!.shape, axis);
      const out = Tensor.empty(reducedShape(x!.shape, axis));
      const argmax = Tensor.empty(out.shape, 'int32');
      const split = alongOuter(outer, ['out', 'argmax', 'x'], (n) => groups1d(n * inner, WG));
      launch('reduce', 'max_rows', { out, argmax, x: x! }, { outer, reduce, inner, scale: 1 }, split);
      return { out, extras: [argmax] };
    },
    backward({ grad, saved, shapes, attrs }) {
      const [outer, reduce, inner] = aroundAxis(shapes[0]!, attrs.axis);
      const dx = Tensor.empty(shapes[0]!);
      const split = alongOuter(outer, ['dx', 'dout', 'argmax_in'], (n) => groups1d(n * reduce * inner, WG));
      launch('reduce', 'max_backward', { dx, dout: grad, argmax_in: saved[0]! }, { outer, reduce, inner, scale: 1 }, split);
      return [dx];
    },
    reference: ([x], { axis }) => refReduce(x!, axis, -Infinity, Math.max),
    cases: CASES,
    tolerance: TOLERANCE,
    // Random normal inputs have no ties, so max is differentiable at the sampled points.
    gradTolerance: GRAD_TOLERANCE,
  } satisfies OpDef<AxisAttrs>,
};
