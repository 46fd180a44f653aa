// Every row of the op table: the GPU forward against its float64 reference on awkward shapes,
// and the GPU backward against central finite differences of that reference (gradcheck), each
// launching only the kernels its row lists. The table itself: every row has cases, every kernel
// a row lists compiles, every kernel in kernels/ is claimed, and the WGSL op codes match the TS.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { KERNEL_DIR } from '../src/gpu/kernels.js';
import { gradcheck, scope, tensor, type Tensor } from '../src/index.js';
import { BINARY_CODES } from '../src/ops/binary.js';
import { applyOp, type KernelRef, type OpDef, type RefTensor } from '../src/ops/op.js';
import { KERNELS_OUTSIDE_OPS, OPS } from '../src/ops/table.js';
import { UNARY_CODES } from '../src/ops/unary.js';
import { Generator } from '../src/random.js';
import { backend } from '../src/runtime.js';
import { sampleInput } from './helpers.js';

/** The kernels launched while `tracked` rows run forward or backward; null outside them. */
let launched: Set<string> | null = null;

beforeAll(() => {
  const gpu = backend();
  const kernel = gpu.kernel.bind(gpu);
  vi.spyOn(gpu, 'kernel').mockImplementation((file, entry, overrides) => {
    launched?.add(`${file}.${entry}`);
    return kernel(file, entry, overrides);
  });
});

afterAll(() => {
  vi.restoreAllMocks();
});

function within<T>(seen: Set<string>, fn: () => T): T {
  const outer = launched;
  launched = seen;
  try {
    return fn();
  } finally {
    launched = outer;
  }
}

/** The row with its forward and backward recording the kernels they launch into `seen`. */
function tracked<A>(def: OpDef<A>, seen: Set<string>): OpDef<A> {
  const rule = def.backward;
  return {
    ...def,
    forward: (inputs, attrs) => within(seen, () => def.forward(inputs, attrs)),
    backward: rule === 'none' ? 'none' : (args) => within(seen, () => rule(args)),
  };
}

const unlisted = (def: OpDef<unknown>, seen: Set<string>): string[] => [...seen].filter((k) => !def.kernels.includes(k as KernelRef));

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
        const seen = new Set<string>();
        const actual = await scope(async () => {
          const out = applyOp(name, tracked(def, seen), rounded.map((x, i) => upload(x, integer[i]!)), c.attrs);
          expect(out.shape).toEqual(expected.shape);
          return out.toArray();
        });
        expect(actual).toBeAllClose(expected.data, def.tolerance);
        expect(unlisted(def, seen), 'kernels launched but not in the row').toEqual([]);
        // The spy sees every launch (a row without kernels is a view).
        expect(seen.size > 0).toBe(def.kernels.length > 0);
      });

      if (def.gradTolerance !== 'none') {
        const tolerance = def.gradTolerance;
        it(`backward matches finite differences: ${label}`, async () => {
          const seen = new Set<string>();
          const result = await gradcheck((ts) => applyOp(name, tracked(def, seen), ts, c.attrs), (xs) => def.reference(xs, c.attrs), draw(200 + index), {
            tolerance,
            integer,
          });
          expect(result.checked).toBeGreaterThan(0);
          expect(result.ok, JSON.stringify(result.worst)).toBe(true);
          expect(unlisted(def, seen), 'kernels launched but not in the row').toEqual([]);
        });
      }
    });
  });
}

describe('the op table', () => {
  const rows = Object.entries(OPS).map(([name, row]) => [name, row as OpDef<unknown>] as const);
  const claimed = new Set<string>([...rows.flatMap(([, def]) => def.kernels), ...Object.values(KERNELS_OUTSIDE_OPS).flat()]);

  it('every row has test cases', () => {
    expect(rows.filter(([, def]) => def.cases.length === 0).map(([name]) => name)).toEqual([]);
  });

  it('every kernel in kernels/ is claimed by a row or by an owner outside the table', () => {
    const entries = readdirSync(KERNEL_DIR)
      .filter((f) => f.endsWith('.wgsl'))
      .flatMap((f) => [...readFileSync(join(KERNEL_DIR, f), 'utf8').matchAll(/@compute[^;{]*?\bfn\s+(\w+)/g)].map((m) => `${f.slice(0, -5)}.${m[1]}`));
    expect(entries.length).toBeGreaterThan(50);
    expect(entries.filter((k) => !claimed.has(k))).toEqual([]);
  });

  it('every kernel a row (or an owner outside the table) lists compiles', async () => {
    const gpu = backend();
    // The subgroup kernels are the software adapter's SIMD paths (see test/matmul.test.ts).
    const subgroups = (file: string) => readFileSync(join(KERNEL_DIR, `${file}.wgsl`), 'utf8').includes('enable subgroups;');
    for (const ref of claimed) {
      const [file, entry] = ref.split('.') as [string, string];
      if (subgroups(file) && !gpu.isSoftware) continue;
      expect(gpu.kernel(file, entry).label).toBe(`${file}.wgsl:${entry}`);
    }
    await gpu.sync();
  });

  it('the op codes in the WGSL are those of the TypeScript table', () => {
    const codesIn = (file: string) =>
      Object.fromEntries([...readFileSync(join(KERNEL_DIR, `${file}.wgsl`), 'utf8').matchAll(/^const OP_(\w+): u32 = (\d+)u;/gm)].map((m) => [m[1]!, Number(m[2])]));
    const screaming = (codes: Record<string, number>) => Object.fromEntries(Object.entries(codes).map(([k, v]) => [k.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase(), v]));
    expect(codesIn('unary')).toEqual(screaming(UNARY_CODES));
    expect(codesIn('binary')).toEqual(screaming(BINARY_CODES));
  });
});
