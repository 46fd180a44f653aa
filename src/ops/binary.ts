// The elementwise binary family (kernels/binary.wgsl): add, sub, mul, div with broadcasting as
// in PyTorch (shapes aligned from the right; a dimension of 1 stretches).
import { Tensor } from '../tensor.js';
import { elementwise, groups1d, launch, type Split } from '../gpu/launch.js';
import type { OpDef, RefTensor } from './op.js';
import { SUM_KERNELS, sumTo } from './reduce.js';
import { runUnary } from './unary.js';

/** The op codes of kernels/binary.wgsl (OP_ADD … OP_DIV); test/ops.test.ts checks the WGSL against them. */
export const BINARY_CODES = { add: 0, sub: 1, mul: 2, div: 3 } as const;
type BinaryName = keyof typeof BINARY_CODES;
const WG = 256;
const MAX_RANK = 8;

export interface NoAttrs {}

export function broadcastShapes(a: readonly number[], b: readonly number[], op: string): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let d = 0; d < rank; d++) {
    const x = a[a.length - rank + d] ?? 1;
    const y = b[b.length - rank + d] ?? 1;
    if (x !== y && x !== 1 && y !== 1) {
      throw new Error(`${op}: shapes [${a.join(', ')}] and [${b.join(', ')}] cannot be broadcast together (dimension ${d}: ${x} vs ${y})`);
    }
    out.push(x === 1 ? y : x);
  }
  return out;
}

/** Strides of `shape` seen from `out`'s dimensions; 0 where the operand is broadcast. */
function broadcastStrides(shape: readonly number[], out: readonly number[]): number[] {
  const strides = new Array<number>(out.length).fill(0);
  let stride = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    const od = out.length - shape.length + d;
    strides[od] = shape[d] === 1 ? 0 : stride;
    stride *= shape[d]!;
  }
  return strides;
}

function params(code: number, a: readonly number[], b: readonly number[], out: readonly number[], which = 0) {
  if (out.length > MAX_RANK) throw new Error(`broadcasting supports at most ${MAX_RANK} dimensions, got ${out.length}`);
  const pad = (v: number[]): number[] => [...v, ...new Array<number>(MAX_RANK - v.length).fill(0)];
  return {
    n: out.reduce((p, d) => p * d, 1),
    op: code,
    which,
    rank: out.length,
    shape: pad([...out]),
    aStride: pad(broadcastStrides(a, out)),
    bStride: pad(broadcastStrides(b, out)),
  };
}

/**
 * Cuts a broadcasting dispatch along the output's first dimension: operands that span it are
 * windowed with the output, broadcast ones are bound whole (the index math sees the window as
 * the whole output, so a broadcast operand's stride of 0 keeps it right).
 */
function alongFirst(p: ReturnType<typeof params>, out: readonly number[], windowed: string[]): Split {
  const row = p.n / (out[0] ?? 1);
  return {
    extent: out.length === 0 ? 1 : out[0]!,
    bindings: windowed,
    uniforms: (w) => ({ n: w.count * row, shape: [w.count, ...p.shape.slice(1)] }),
    groups: (count) => groups1d(count * row, WG),
  };
}

/** Whether an operand of `shape` spans the first dimension of `out` (is not broadcast along it). */
const spansFirst = (shape: readonly number[], out: readonly number[]): boolean => shape.length === out.length && shape[0] === out[0] && out[0] !== 1;

/** Flat windows when nothing broadcasts (indices are then plain offsets), else along the first dimension. */
function split(p: ReturnType<typeof params>, operands: readonly (readonly number[])[], out: readonly number[], outputs: string[]): Split {
  const same = operands.every((s) => s.length === out.length && s.every((d, i) => d === out[i]));
  if (same) return elementwise(p.n, [...outputs, 'a', 'b'], WG);
  return alongFirst(p, out, [...outputs, ...(['a', 'b'] as const).filter((_, i) => spansFirst(operands[i]!, out))]);
}

function binaryOp(name: BinaryName, f: (u: number, v: number) => number): OpDef<NoAttrs> {
  const code = BINARY_CODES[name];
  const linear = name === 'add' || name === 'sub';
  return {
    kernels: ['binary.binary_forward', 'binary.binary_backward', 'unary.unary_forward', ...SUM_KERNELS],
    saves: linear ? [] : ['in0', 'in1'],
    inputs: name === 'div' ? ['real', 'nonzero'] : undefined,
    forward([a, b]) {
      const shape = broadcastShapes(a!.shape, b!.shape, name);
      const out = Tensor.empty(shape);
      const p = params(code, a!.shape, b!.shape, shape);
      launch('binary', 'binary_forward', { out, a: a!, b: b! }, p, split(p, [a!.shape, b!.shape], shape, ['out']));
      return { out };
    },
    backward({ grad, saved, shapes, needs }) {
      return [0, 1].map((which) => {
        if (!needs[which]) return null;
        const shape = shapes[which]!;
        if (linear && (which === 0 || name === 'add')) return sumTo(grad, shape);
        let full: Tensor;
        if (linear) full = runUnary(grad, 'neg');
        else {
          full = Tensor.empty(grad.shape);
          const p = params(code, shapes[0]!, shapes[1]!, grad.shape, which);
          launch('binary', 'binary_backward', { out: full, a: saved[0]!, b: saved[1]!, dout: grad }, p, split(p, shapes, grad.shape, ['out', 'dout']));
        }
        const reduced = sumTo(full, shape);
        full.dispose();
        return reduced;
      });
    },
    reference([a, b]): RefTensor {
      const shape = broadcastShapes(a!.shape, b!.shape, name);
      const sa = broadcastStrides(a!.shape, shape);
      const sb = broadcastStrides(b!.shape, shape);
      const n = shape.reduce((p, d) => p * d, 1);
      const data = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        let rest = i;
        let ia = 0;
        let ib = 0;
        for (let d = shape.length - 1; d >= 0; d--) {
          const c = rest % shape[d]!;
          rest = Math.floor(rest / shape[d]!);
          ia += c * sa[d]!;
          ib += c * sb[d]!;
        }
        data[i] = f(a!.data[ia]!, b!.data[ib]!);
      }
      return { shape, data };
    },
    cases: [
      { shapes: [[1], [1]], attrs: {} },
      { shapes: [[3, 17], [3, 17]], attrs: {} },
      { shapes: [[2, 3, 5], [1]], attrs: {} },
      { shapes: [[2, 3, 5, 4], [3, 1, 1]], attrs: {} },
      { shapes: [[4, 17], [17]], attrs: {} },
      { shapes: [[5, 1], [1, 13]], attrs: {} },
      { shapes: [[130], [130]], attrs: {} },
    ],
    tolerance: { rtol: 1e-6, atol: 1e-6 },
    gradTolerance: { rtol: 1e-3, atol: 1e-4 },
  };
}

export const binaryOps = {
  add: binaryOp('add', (u, v) => u + v),
  sub: binaryOp('sub', (u, v) => u - v),
  mul: binaryOp('mul', (u, v) => u * v),
  div: binaryOp('div', (u, v) => u / v),
};
