// The softmax family (kernels/softmax.wgsl): softmax and logSoftmax along one axis.
import { Tensor } from '../tensor.js';
import { groups1d, launch, type Split } from '../gpu/launch.js';
import type { OpCase, OpDef, RefTensor } from './op.js';
import type { AxisAttrs } from './reduce.js';
import { aroundAxis } from './reference.js';

const WG = 64;

function softmaxOp(log: boolean): OpDef<AxisAttrs> {
  const flag = log ? 1 : 0;
  return {
    kernels: ['softmax.softmax_forward', 'softmax.softmax_backward'],
    saves: ['out'],
    forward([x], { axis }) {
      const [outer, classes, inner] = aroundAxis(x!.shape, axis);
      const y = Tensor.empty(x!.shape);
      launch('softmax', 'softmax_forward', { y, x: x! }, { outer, classes, inner, log: flag }, alongOuter(outer, inner, ['y', 'x']));
      return { out: y };
    },
    backward({ grad, saved, attrs }) {
      const [outer, classes, inner] = aroundAxis(grad.shape, attrs.axis);
      const dx = Tensor.empty(grad.shape);
      launch('softmax', 'softmax_backward', { dx, dout: grad, y_in: saved[0]! }, { outer, classes, inner, log: flag }, alongOuter(outer, inner, ['dx', 'dout', 'y_in']));
      return [dx];
    },
    reference([x], { axis }): RefTensor {
      const [outer, classes, inner] = aroundAxis(x!.shape, axis);
      const data = new Float64Array(x!.data.length);
      for (let o = 0; o < outer; o++) {
        for (let i = 0; i < inner; i++) {
          const at = (c: number): number => (o * classes + c) * inner + i;
          let m = -Infinity;
          for (let c = 0; c < classes; c++) m = Math.max(m, x!.data[at(c)]!);
          let total = 0;
          for (let c = 0; c < classes; c++) total += Math.exp(x!.data[at(c)]! - m);
          for (let c = 0; c < classes; c++) {
            const shifted = x!.data[at(c)]! - m;
            data[at(c)] = log ? shifted - Math.log(total) : Math.exp(shifted) / total;
          }
        }
      }
      return { shape: [...x!.shape], data };
    },
    cases: [
      { shapes: [[1, 1]], attrs: { axis: 1 } },
      { shapes: [[3, 17]], attrs: { axis: 1 } },
      { shapes: [[4, 10]], attrs: { axis: 0 } },
      { shapes: [[2, 5, 3]], attrs: { axis: 1 } },
      { shapes: [[2, 130]], attrs: { axis: 1 } },
    ] satisfies OpCase<AxisAttrs>[],
    tolerance: { rtol: 1e-5, atol: 1e-6 },
    gradTolerance: { rtol: 1e-3, atol: 1e-4 },
  };
}

/** Cuts a dispatch over (outer, C, inner) rows along outer. */
function alongOuter(outer: number, inner: number, bindings: string[]): Split {
  return { extent: outer, bindings, uniforms: (w) => ({ outer: w.count }), groups: (n) => groups1d(n * inner, WG) };
}

export const softmaxOps = {
  softmax: softmaxOp(false),
  logSoftmax: softmaxOp(true),
};
