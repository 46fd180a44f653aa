// Dropout (kernels/dropout.wgsl): inverted dropout with a counter-based mask drawn from a seed
// that the functional API takes from a Generator, so a seeded run drops the same elements
// every time and backward regenerates the mask instead of storing it.
import { Tensor } from '../tensor.js';
import { groups1d, launch } from '../gpu/launch.js';
import type { OpDef, RefTensor } from './op.js';

export interface DropoutAttrs {
  /** Probability of zeroing an element, in [0, 1]. */
  p: number;
  /** Two 32-bit words that fix the mask. */
  seed: [number, number];
}

const WG = 256;

/** lowbias32, as in kernels/dropout.wgsl. */
export function mix(v: number): number {
  let h = v >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d) >>> 0;
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

function uniforms(n: number, { p, seed }: DropoutAttrs): Record<string, number> {
  if (!(p >= 0 && p <= 1)) throw new Error(`dropout: p must be in [0, 1], got ${p}`);
  return {
    n,
    threshold: Math.min(Math.round(p * 2 ** 32), 2 ** 32 - 1),
    seed0: seed[0] >>> 0,
    seed1: seed[1] >>> 0,
    scale: p >= 1 ? 0 : 1 / (1 - p),
  };
}

/** The multiplier of element i: 1/(1 − p) where kept, 0 where dropped (float64). */
export function dropoutScale(i: number, attrs: DropoutAttrs): number {
  const u = uniforms(0, attrs);
  const h = mix(mix((i ^ u.seed0!) >>> 0) ^ u.seed1!);
  return h >= u.threshold! ? u.scale! : 0;
}

function run(entry: 'dropout_forward' | 'dropout_backward', input: Tensor, attrs: DropoutAttrs): Tensor {
  const result = Tensor.empty(input.shape);
  const bindings: Record<string, Tensor> = entry === 'dropout_forward' ? { out: result, x: input } : { dx: result, dout: input };
  const names = Object.keys(bindings);
  launch('dropout', entry, bindings, uniforms(input.size, attrs), { extent: input.size, bindings: names, uniforms: (w) => ({ n: w.count, base: w.start }), groups: (n) => groups1d(n, WG) });
  return result;
}

export const dropoutOps = {
  dropout: {
    kernels: ['dropout.dropout_forward', 'dropout.dropout_backward'],
    saves: [],
    forward: ([x], attrs) => ({ out: run('dropout_forward', x!, attrs) }),
    backward: ({ grad, attrs }) => [run('dropout_backward', grad, attrs)],
    reference([x], attrs): RefTensor {
      // Products with 1/(1 − p), rounded once to float32 by the kernel.
      return { shape: [...x!.shape], data: x!.data.map((v, i) => v * Math.fround(dropoutScale(i, attrs))) };
    },
    cases: [
      { shapes: [[1]], attrs: { p: 0.5, seed: [1, 2] } },
      { shapes: [[3, 17]], attrs: { p: 0.2, seed: [7, 0] } },
      { shapes: [[2, 65]], attrs: { p: 0.9, seed: [0xdeadbeef, 12345] } },
      { shapes: [[130]], attrs: { p: 0, seed: [3, 4] } },
    ],
    // One float32 multiply per element.
    tolerance: { rtol: 1e-6, atol: 0 },
    gradTolerance: { rtol: 1e-4, atol: 1e-6 },
  } satisfies OpDef<DropoutAttrs>,
};
