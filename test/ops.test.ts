// Every row of the op table: the GPU forward against its float64 reference on awkward shapes,
// and the GPU backward against central finite differences of that reference (gradcheck).
import { describe, expect, it } from 'vitest';
import { gradcheck, scope, tensor, type Tensor } from '../src/index.js';
import { applyOp, type OpDef, type RefTensor } from '../src/ops/op.js';
import { OPS } from '../src/ops/table.js';
import { Generator } from '../src/random.js';
import { sampleInput } from './helpers.js';

function upload(x: RefTensor, integer: boolean): Tensor {
  return integer ? tensor(Int32Array.from(x.data), x.shape) : tensor(Float32Array.from(x.data), x.shape);
}

for (const [name, row] of Object.entries(OPS)) {
  const def = row as OpDef<unknown>;
  describe(name, () => {
    def.cases.forEach((c, index) => {
      const label = `${c.shapes.map((s) => `[${s.join('x')}]`).join(' ')} ${JSON.stringify(c.attrs)}`;
      const kinds = c.shapes.map((_, i) => c.inputs?.[i] ?? def.inputs?.[i] ?? 'real');
      const integer = kinds.map((k) => typeof k === 'object');
      const draw = (seed: number): RefTensor[] => {
        const rng = new Generator(seed);
        return c.shapes.map((shape, i) => sampleInput(kinds[i]!, shape, c.shapes, rng));
      };

      it(`forward matches the float64 reference: ${label}`, async () => {
        const inputs = draw(100 + index);
        // The reference sees exactly the float32 values the GPU sees.
        const rounded = inputs.map((x, i) => (integer[i] ? x : { shape: x.shape, data: Float64Array.from(Float32Array.from(x.data)) }));
        const expected = def.reference(rounded, c.attrs);
        const actual = await scope(async () => {
          const out = applyOp(name, def, rounded.map((x, i) => upload(x, integer[i]!)), c.attrs);
          expect(out.shape).toEqual(expected.shape);
          return out.toArray();
        });
        expect(actual).toBeAllClose(expected.data, def.tolerance);
      });

      if (def.gradTolerance !== 'none') {
        const tolerance = def.gradTolerance;
        it(`backward matches finite differences: ${label}`, async () => {
          const result = await gradcheck((ts) => applyOp(name, def, ts, c.attrs), (xs) => def.reference(xs, c.attrs), draw(200 + index), {
            tolerance,
            integer,
          });
          expect(result.checked).toBeGreaterThan(0);
          expect(result.ok, JSON.stringify(result.worst)).toBe(true);
        });
      }
    });
  });
}
