// What every op is made of, as one typed record: its kernels, what forward saves, its backward
// rule, its float64 CPU reference, and the shapes and tolerances its tests use. The tests
// iterate the table of these records, so an op cannot ship without a reference or a test.
import { record } from '../autograd/tape.js';
import type { Tensor } from '../tensor.js';

/** A float64 host array: the reference side of every test. */
export interface RefTensor {
  shape: number[];
  data: Float64Array;
}

/** One entry point of one WGSL file: 'file.entry' for kernels/<file>.wgsl's `fn entry`. */
export type KernelRef = `${string}.${string}`;

export interface Tolerance {
  rtol: number;
  atol: number;
}

/**
 * How a test draws an input: normal values, values in a safe domain, or int32 class labels
 * (`{ labels: i }`: in [0, C) where C is the last dimension of input i).
 */
export type InputKind = 'real' | 'positive' | 'probability' | 'nonzero' | { labels: number };

export interface OpCase<A> {
  /** Shapes of the inputs, in order. */
  shapes: number[][];
  attrs: A;
  /** Overrides the op's input kinds for this case (e.g. the number of classes). */
  inputs?: InputKind[];
}

/** What forward keeps for backward: an input (in0, in1…), the output, or an extra tensor forward made. */
export type Saved = `in${number}` | 'out' | `extra${number}`;

export interface ForwardResult {
  out: Tensor;
  /** Tensors only backward needs (argmax indices, per-row statistics); freed with the graph. */
  extras?: Tensor[];
}

export interface BackwardArgs<A> {
  grad: Tensor;
  saved: readonly Tensor[];
  attrs: A;
  /** Shapes of the forward inputs. */
  shapes: readonly (readonly number[])[];
  /** Which inputs need a gradient; rules may skip the others and return null. */
  needs: readonly boolean[];
}

export interface OpDef<A> {
  /**
   * Every kernel forward and backward may launch, on every path (SIMD or direct) and through the
   * helpers they call (sums of broadcast gradients); an empty list for a view. test/ops.test.ts
   * compiles them all and checks that a case launches nothing else.
   */
  kernels: readonly KernelRef[];
  saves: readonly Saved[];
  forward(inputs: readonly Tensor[], attrs: A): ForwardResult;
  /** Gradients for each input, or 'none' where the op has no derivative (accuracy, argmax). */
  backward: ((args: BackwardArgs<A>) => (Tensor | null)[]) | 'none';
  reference(inputs: readonly RefTensor[], attrs: A): RefTensor;
  /** Input kinds for the tests, by position; 'real' when absent. */
  inputs?: readonly InputKind[];
  /** At least one; the table test fails a row without cases. */
  cases: readonly OpCase<A>[];
  /** Forward: GPU float32 against the float64 reference. */
  tolerance: Tolerance;
  /** Backward: GPU gradient against central differences of the reference. */
  gradTolerance: Tolerance | 'none';
}

/** Runs an op's forward and, when gradients are on, records its backward on the tape. */
export function applyOp<A>(name: string, def: OpDef<A>, inputs: readonly Tensor[], attrs: A): Tensor {
  const { out, extras = [] } = def.forward(inputs, attrs);
  if (def.backward === 'none') {
    for (const e of extras) e.dispose();
    return out;
  }
  const rule = def.backward;
  const saved = def.saves.map((s) => {
    if (s === 'out') return out;
    const index = Number(s.replace(/^\D+/, ''));
    const source = s.startsWith('in') ? inputs[index] : extras[index];
    if (!source) throw new Error(`op ${name}: saves '${s}', which forward did not provide`);
    return source;
  });
  const shapes = inputs.map((t) => t.shape);
  record(name, out, inputs, saved, (grad, savedViews, needs) => rule({ grad, saved: savedViews, attrs, shapes, needs }));
  for (const e of extras) e.dispose();
  return out;
}
