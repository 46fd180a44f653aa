// Shared test utilities: closeness with a useful failure message, and input generation for op cases.
import type { InputKind, RefTensor } from '../src/ops/op.js';
import { Generator } from '../src/random.js';

export interface CloseReport {
  ok: boolean;
  message: string;
}

/** |a − e| ≤ atol + rtol·|e| everywhere (NaN only matches NaN); reports the worst index. */
export function allClose(actual: ArrayLike<number>, expected: ArrayLike<number>, { rtol, atol }: { rtol: number; atol: number }): CloseReport {
  if (actual.length !== expected.length) {
    return { ok: false, message: `length ${actual.length} differs from expected ${expected.length}` };
  }
  let worst = -1;
  let worstExcess = -Infinity;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    const bothNaN = Number.isNaN(a) && Number.isNaN(e);
    const excess = bothNaN ? -Infinity : Math.abs(a - e) - (atol + rtol * Math.abs(e));
    if (Number.isNaN(excess) || excess > worstExcess) {
      worstExcess = Number.isNaN(excess) ? Infinity : excess;
      worst = i;
    }
  }
  const ok = worstExcess <= 0;
  const message =
    worst < 0
      ? 'no elements'
      : `worst at index ${worst}: got ${actual[worst]}, expected ${expected[worst]} (|diff| ${Math.abs(actual[worst]! - expected[worst]!)}, allowed ${atol + rtol * Math.abs(expected[worst]!)})`;
  return { ok, message: ok ? `all ${actual.length} within tolerance; ${message}` : message };
}

/** Draws one op-case input of the given kind, in float64. */
export function sampleInput(kind: InputKind, shape: number[], shapes: number[][], rng: Generator): RefTensor {
  const n = shape.reduce((p, d) => p * d, 1);
  const data = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    if (typeof kind === 'object') {
      const source = shapes[kind.labels]!;
      data[i] = rng.integer(source[source.length - 1]!);
    } else if (kind === 'positive') data[i] = 0.5 + 1.5 * rng.uniform();
    else if (kind === 'probability') data[i] = 0.05 + 0.9 * rng.uniform();
    else if (kind === 'nonzero') {
      // Away from 0 so that relu's kink and 1/x's pole are never within a finite-difference step.
      const v = 0.1 + rng.uniform();
      data[i] = rng.uniform() < 0.5 ? -v : v;
    } else data[i] = rng.normal();
  }
  return { shape: [...shape], data };
}
