// Checks a GPU backward pass against central finite differences of a float64 CPU reference.
// Differences are taken in float64 on the float32-rounded inputs, so the numeric side is exact
// to ~1e-9 and the comparison measures the GPU gradient's own float32 error.
import { tensor } from '../creation.js';
import type { RefTensor, Tolerance } from '../ops/op.js';
import { Generator } from '../random.js';
import { scope } from '../scope.js';
import type { Tensor } from '../tensor.js';

export interface GradcheckOptions {
  tolerance: Tolerance;
  /** Inputs that are integer data (labels) rather than differentiable values. */
  integer?: readonly boolean[];
  /** At most this many coordinates per input are perturbed (chosen at random). */
  maxPerInput?: number;
  seed?: number;
}

export interface GradcheckResult {
  ok: boolean;
  /** Coordinates compared. */
  checked: number;
  /** The coordinate furthest outside the tolerance (or closest to it). */
  worst: { input: number; index: number; analytic: number; numeric: number; excess: number };
}

/**
 * For a random upstream gradient w, compares ∂Σ(w·fn(x))/∂x from fn's backward on the GPU
 * with (r(x + h) − r(x − h)) / 2h from the reference r, coordinate by coordinate.
 */
export async function gradcheck(
  fn: (inputs: Tensor[]) => Tensor,
  reference: (inputs: RefTensor[]) => RefTensor,
  inputs: readonly RefTensor[],
  options: GradcheckOptions,
): Promise<GradcheckResult> {
  const rng = new Generator(options.seed ?? 1234);
  const integer = options.integer ?? [];
  const rounded = inputs.map((x, i) => ({ shape: [...x.shape], data: integer[i] ? x.data : Float64Array.from(Float32Array.from(x.data)) }));
  const outShape = reference(rounded).shape;
  const weights = Float64Array.from(Float32Array.from({ length: outShape.reduce((p, d) => p * d, 1) }, () => rng.normal()));

  const analytic = await scope(async () => {
    const ts = rounded.map((x, i) =>
      integer[i] ? tensor(Int32Array.from(x.data), x.shape) : tensor(Float32Array.from(x.data), x.shape, { requiresGrad: true }),
    );
    const out = fn(ts);
    out.backward(tensor(Float32Array.from(weights), out.shape));
    const grads: (Float32Array | null)[] = [];
    for (let i = 0; i < ts.length; i++) {
      const g = ts[i]!.grad;
      grads.push(integer[i] ? null : g ? ((await g.toArray()) as Float32Array) : new Float32Array(ts[i]!.size));
      g?.dispose();
    }
    return grads;
  });

  const objective = (xs: RefTensor[]): number => {
    const y = reference(xs).data;
    let total = 0;
    for (let i = 0; i < y.length; i++) total += y[i]! * weights[i]!;
    return total;
  };

  const worst = { input: -1, index: -1, analytic: 0, numeric: 0, excess: -Infinity };
  let checked = 0;
  rounded.forEach((x, i) => {
    if (integer[i]) return;
    const n = x.data.length;
    const count = Math.min(n, options.maxPerInput ?? 48);
    const picks = count === n ? [...Array(n).keys()] : Array.from({ length: count }, () => rng.integer(n));
    for (const j of picks) {
      const original = x.data[j]!;
      const h = 1e-6 * Math.max(1, Math.abs(original));
      x.data[j] = original + h;
      const up = objective(rounded);
      x.data[j] = original - h;
      const down = objective(rounded);
      x.data[j] = original;
      const numeric = (up - down) / (2 * h);
      const a = analytic[i]![j]!;
      const excess = Math.abs(a - numeric) - (options.tolerance.atol + options.tolerance.rtol * Math.abs(numeric));
      checked++;
      if (!(excess <= worst.excess) || Number.isNaN(excess)) Object.assign(worst, { input: i, index: j, analytic: a, numeric, excess });
    }
  });
  return { ok: worst.excess <= 0, checked, worst };
}
