// The elementwise unary family (kernels/unary.wgsl): neg, exp, log, sqrt, pow, relu,
// leakyRelu, sigmoid, tanh, and affine (a·x + b, which scalar add/sub/mul/div lower to).
import { Tensor } from '../tensor.js';
import { elementwise, launch } from '../gpu/launch.js';
import type { InputKind, OpCase, OpDef, RefTensor, Saved } from './op.js';
import { mapRef } from './reference.js';

/** The op codes of kernels/unary.wgsl (OP_NEG … OP_AFFINE); test/ops.test.ts checks the WGSL against them. */
export const UNARY_CODES = { neg: 0, exp: 1, log: 2, sqrt: 3, pow: 4, relu: 5, leakyRelu: 6, sigmoid: 7, tanh: 8, affine: 9 } as const;
const WG = 256;

export interface NoAttrs {}
export interface PowAttrs { exponent: number }
export interface LeakyReluAttrs { slope: number }
export interface AffineAttrs { scale: number; shift: number }

/** out = f(x) for one of the family's functions, outside the tape. */
export function runUnary(x: Tensor, op: keyof typeof UNARY_CODES, alpha = 0, beta = 0): Tensor {
  const out = Tensor.empty(x.shape);
  launch('unary', 'unary_forward', { out, x }, { n: x.size, op: UNARY_CODES[op], alpha, beta }, elementwise(x.size, ['out', 'x'], WG));
  return out;
}

type Params<A> = (attrs: A) => { alpha: number; beta: number };

const SHAPES: number[][][] = [[[1]], [[3, 17]], [[2, 65]], [[130]]];

function unaryOp<A>(
  name: keyof typeof UNARY_CODES,
  saves: readonly Saved[],
  params: Params<A>,
  f: (v: number, attrs: A) => number,
  attrs: A[],
  kind: InputKind = 'real',
): OpDef<A> {
  const code = UNARY_CODES[name];
  const cases: OpCase<A>[] = attrs.flatMap((a) => SHAPES.map((shapes) => ({ shapes, attrs: a })));
  return {
    kernels: ['unary.unary_forward', 'unary.unary_backward'],
    saves,
    inputs: [kind],
    forward([x], a) {
      const { alpha, beta } = params(a);
      return { out: runUnary(x!, name, alpha, beta) };
    },
    backward({ grad, saved, attrs: a }) {
      const dx = Tensor.empty(grad.shape);
      const from = saved[0] ?? grad;
      launch('unary', 'unary_backward', { dx, dout: grad, saved: from }, { n: grad.size, op: code, ...params(a) }, elementwise(grad.size, ['dx', 'dout', 'saved'], WG));
      return [dx];
    },
    reference: ([x], a): RefTensor => mapRef(x!, (v) => f(v, a)),
    cases,
    // float32 transcendental functions in WGSL are accurate to a few ulp, i.e. ~1e-6 relative.
    tolerance: { rtol: 1e-5, atol: 1e-6 },
    gradTolerance: { rtol: 1e-3, atol: 1e-4 },
  };
}

const none: Params<NoAttrs> = () => ({ alpha: 0, beta: 0 });
const sigmoid = (v: number): number => 1 / (1 + Math.exp(-v));

export const unaryOps = {
  neg: unaryOp<NoAttrs>('neg', [], none, (v) => -v, [{}]),
  exp: unaryOp<NoAttrs>('exp', ['out'], none, Math.exp, [{}]),
  log: unaryOp<NoAttrs>('log', ['in0'], none, Math.log, [{}], 'positive'),
  sqrt: unaryOp<NoAttrs>('sqrt', ['out'], none, Math.sqrt, [{}], 'positive'),
  pow: unaryOp<PowAttrs>('pow', ['in0'], (a) => ({ alpha: a.exponent, beta: 0 }), (v, a) => v ** a.exponent, [
    { exponent: 2 },
    { exponent: 3 },
    { exponent: -1.5 },
  ], 'positive'),
  relu: unaryOp<NoAttrs>('relu', ['out'], none, (v) => Math.max(v, 0), [{}], 'nonzero'),
  leakyRelu: unaryOp<LeakyReluAttrs>('leakyRelu', ['in0'], (a) => ({ alpha: a.slope, beta: 0 }), (v, a) => (v > 0 ? v : v * a.slope), [
    { slope: 0.2 },
  ], 'nonzero'),
  sigmoid: unaryOp<NoAttrs>('sigmoid', ['out'], none, sigmoid, [{}]),
  tanh: unaryOp<NoAttrs>('tanh', ['out'], none, Math.tanh, [{}]),
  affine: unaryOp<AffineAttrs>('affine', [], (a) => ({ alpha: a.scale, beta: a.shift }), (v, a) => a.scale * v + a.shift, [
    { scale: -2.5, shift: 0.75 },
  ]),
};
