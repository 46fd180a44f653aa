// The matmul kernels one by one: each path (the SIMD path of kernels/matmul_simd.wgsl where the
// device offers it, the tiled kernels/matmul.wgsl everywhere) against a float64 reference on
// awkward shapes, the packed-operand textures reused across calls, and the planner's choices.
import { describe, expect, it } from 'vitest';
import { backend, scope, tensor, type Tensor } from '../src/index.js';
import { matmulPlanFor, runMatmul, runMatmulFused, type MatmulAttrs } from '../src/ops/matmul.js';
import { matmulTarget, planMatmul, type MatmulTarget } from '../src/ops/matmul-plan.js';
import { H200, lavapipe } from './devices.js';
import { Generator } from '../src/random.js';

interface Case {
  a: number[];
  b: number[];
  attrs: MatmulAttrs;
}

const plain = { transposeA: false, transposeB: false };
const CASES: Case[] = [
  { a: [1, 1], b: [1, 1], attrs: plain },
  { a: [1, 200], b: [200, 1], attrs: plain },
  { a: [3, 17], b: [17, 5], attrs: plain },
  { a: [17, 3], b: [17, 5], attrs: { transposeA: true, transposeB: false } },
  { a: [3, 17], b: [5, 17], attrs: { transposeA: false, transposeB: true } },
  { a: [17, 3], b: [5, 17], attrs: { transposeA: true, transposeB: true } },
  { a: [2, 65, 9], b: [2, 9, 13], attrs: plain },
  { a: [3, 7, 5], b: [5, 6], attrs: plain },
  { a: [7, 5], b: [3, 5, 6], attrs: plain },
  { a: [65, 130], b: [130, 67], attrs: plain },
  { a: [100, 257], b: [100, 129], attrs: { transposeA: true, transposeB: false } },
  { a: [4, 31, 47], b: [4, 29, 47], attrs: { transposeA: false, transposeB: true } },
  // Rows of whole texels: plain copies into the packed textures (K and N multiples of 64) ...
  { a: [3, 64, 128], b: [3, 128, 64], attrs: plain },
  { a: [64, 128], b: [2, 128, 192], attrs: plain },
  // ... and the vec4-per-texel packing (N a multiple of 4 only).
  { a: [2, 40, 128], b: [128, 36], attrs: plain },
];

function draw(shape: number[], rng: Generator): Float32Array {
  return Float32Array.from({ length: shape.reduce((p, d) => p * d, 1) }, () => rng.normal());
}

/** float64 torch.matmul of the float32 inputs, with a 2-D operand broadcast over the batch. */
function reference(a: Float32Array, aShape: number[], b: Float32Array, bShape: number[], { transposeA, transposeB }: MatmulAttrs): Float64Array {
  const [ar, ac] = aShape.slice(-2) as [number, number];
  const [br, bc] = bShape.slice(-2) as [number, number];
  const [M, K] = transposeA ? [ac, ar] : [ar, ac];
  const N = transposeB ? br : bc;
  const batch = Math.max(aShape.length > 2 ? aShape[0]! : 1, bShape.length > 2 ? bShape[0]! : 1);
  const strideA = aShape.length > 2 ? M * K : 0;
  const strideB = bShape.length > 2 ? K * N : 0;
  const out = new Float64Array(batch * M * N);
  for (let z = 0; z < batch; z++) {
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) {
          s += a[z * strideA + (transposeA ? k * M + i : i * K + k)]! * b[z * strideB + (transposeB ? j * K + k : k * N + j)]!;
        }
        out[(z * M + i) * N + j] = s;
      }
    }
  }
  return out;
}

// Sums of up to 257 float32 products of unit normals: a few ulp of values up to ~50.
const TOLERANCE = { rtol: 1e-5, atol: 2e-5 };

function label(c: Case): string {
  const t = (on: boolean) => (on ? 'ᵀ' : '');
  return `[${c.a.join('x')}]${t(c.attrs.transposeA)} · [${c.b.join('x')}]${t(c.attrs.transposeB)}`;
}

// The SIMD path is lavapipe's at its default 8-wide subgroups: a GPU, and lavapipe at 4 or 16
// lanes (CI's LP_NATIVE_VECTOR_WIDTH runs), skip its tests; at the default width it must be
// offered, so these tests always run in CI's default pass.
const simdAdapter = (): boolean => backend().simd;

describe('matmul, SIMD path availability', () => {
  it('is offered by lavapipe at its default vector width', (context) => {
    const width = process.env.LP_NATIVE_VECTOR_WIDTH;
    if (!backend().isSoftware || (width && width !== '256')) context.skip();
    expect(backend().simd).toBe(true);
  });
});

for (const path of ['tiled', 'simd', 'gemm'] as const) {
  describe(`matmul, ${path} path`, () => {
    CASES.forEach((c, index) => {
      it(`matches the float64 reference: ${label(c)}`, async (context) => {
        if (path === 'simd' && !simdAdapter()) context.skip();
        const rng = new Generator(300 + index);
        const a = draw(c.a, rng);
        const b = draw(c.b, rng);
        expect(matmulPlanFor(c.a, c.b, c.attrs, { path }).path).toBe(path);
        const actual = await scope(() => runMatmul(tensor(a, c.a), tensor(b, c.b), c.attrs, { path }).toArray());
        expect(actual).toBeAllClose(reference(a, c.a, b, c.b, c.attrs), TOLERANCE);
      });
    });
  });
}

describe('matmul, GEMM path with the 128 × 128 tile', () => {
  it('matches the float64 reference on sides that are not multiples of the tile', async () => {
    const [as, bs] = [[2, 130, 67], [2, 257, 67]];
    const attrs = { transposeA: false, transposeB: true };
    const rng = new Generator(7);
    const [a, b] = [draw(as, rng), draw(bs, rng)];
    const options = { path: 'gemm', gemmTile: { WG_X: 16, WG_Y: 16, TM: 8, TN4: 2, BK: 8 } } as const;
    const actual = await scope(() => runMatmul(tensor(a, as), tensor(b, bs), attrs, options).toArray());
    expect(actual).toBeAllClose(reference(a, as, b, bs, attrs), TOLERANCE);
  });
});

describe('matmul, GEMM kernel: vec4 loads and the fused epilogue', () => {
  // Contiguous extents that are multiples of 4 take vec4 loads, ragged M and N included; the
  // rest the scalar entry. Each case also runs with the fused bias over the columns and ReLU.
  const cases: (Case & { entry: string })[] = [
    { a: [2, 13, 24], b: [2, 24, 36], attrs: plain, entry: 'matmul_gemm_vec4' },
    { a: [18, 12], b: [9, 18], attrs: { transposeA: true, transposeB: true }, entry: 'matmul_gemm' },
    { a: [20, 12], b: [8, 20], attrs: { transposeA: true, transposeB: true }, entry: 'matmul_gemm_vec4' },
    { a: [3, 36, 20], b: [36, 44], attrs: { transposeA: true, transposeB: false }, entry: 'matmul_gemm_vec4' },
    { a: [33, 44], b: [2, 17, 44], attrs: { transposeA: false, transposeB: true }, entry: 'matmul_gemm_vec4' },
    { a: [2, 7, 18], b: [2, 18, 12], attrs: plain, entry: 'matmul_gemm' },
  ];
  cases.forEach((c, index) => {
    it(`matches the float64 reference with and without bias and ReLU: ${label(c)} (${c.entry})`, async () => {
      const rng = new Generator(500 + index);
      const [a, b] = [draw(c.a, rng), draw(c.b, rng)];
      const want = reference(a, c.a, b, c.b, c.attrs);
      const N = want.length / (c.attrs.transposeB ? c.b.at(-2)! : c.b.at(-1)!);
      const n = want.length / N;
      const bias = draw([n], rng);
      const fused = want.map((v, i) => Math.max(v + bias[i % n]!, 0));
      const plan = matmulPlanFor(c.a, c.b, c.attrs, { path: 'gemm' });
      expect(plan.path === 'gemm' && plan.entry).toBe(c.entry);
      const [plainOut, fusedOut] = await scope(async () => {
        const [ta, tb] = [tensor(a, c.a), tensor(b, c.b)];
        const outs = [runMatmul(ta, tb, c.attrs, { path: 'gemm' }), runMatmulFused(ta, tb, c.attrs, { bias: tensor(bias, [n]), relu: true }, { path: 'gemm' })];
        return Promise.all(outs.map((t) => t.toArray()));
      });
      expect(plainOut).toBeAllClose(want, TOLERANCE);
      expect(fusedOut).toBeAllClose(fused, TOLERANCE);
    });
  });

  it('refuses a fused epilogue off the GEMM kernel and a tile the kernel cannot run', () => {
    scope(() => {
      const [a, b] = [tensor(new Float32Array(6), [2, 3]), tensor(new Float32Array(12), [3, 4])];
      expect(() => runMatmulFused(a, b, plain, { relu: true }, { path: 'tiled' })).toThrow(/needs the GEMM kernel/);
      expect(() => runMatmulFused(a, b, plain, { bias: tensor(new Float32Array(3), [3]) }, { path: 'gemm' })).toThrow(/bias \[3\] must be \[4\]/);
      expect(() => runMatmul(a, b, plain, { path: 'gemm', gemmTile: { WG_X: 16, WG_Y: 16, TM: 8, TN4: 2, BK: 32 } })).toThrow(/at most 8 per invocation/);
    });
  });
});

describe('matmul, SIMD path across calls', () => {
  it('reuses and grows its packed textures within one submit, never reading stale texels', async (context) => {
    if (!simdAdapter()) context.skip();
    expect(matmulPlanFor([64, 64], [64, 64], plain, { path: 'simd' }).path).toBe('simd');
    const rng = new Generator(7);
    // Small, then large (with infinities that stay behind in the textures), then small again,
    // all encoded before anything is read back.
    const calls: Case[] = [
      { a: [9, 13], b: [13, 7], attrs: plain },
      { a: [70, 301], b: [301, 90], attrs: plain },
      { a: [5, 6], b: [6, 3], attrs: plain },
      { a: [6, 5], b: [3, 6], attrs: { transposeA: true, transposeB: true } },
    ];
    const inputs = calls.map((c) => [draw(c.a, rng), draw(c.b, rng)] as const);
    inputs[1]![0].fill(Infinity, 0, 301);
    inputs[1]![1].fill(-Infinity, 0, 90);
    const results = await scope(async () => {
      const outs: Tensor[] = calls.map((c, i) => runMatmul(tensor(inputs[i]![0], c.a), tensor(inputs[i]![1], c.b), c.attrs, { path: 'simd' }));
      return Promise.all(outs.map((t) => t.toArray()));
    });
    for (const i of [0, 2, 3]) {
      const c = calls[i]!;
      expect(results[i]!).toBeAllClose(reference(inputs[i]![0], c.a, inputs[i]![1], c.b, c.attrs), TOLERANCE);
    }
  });
});

describe('planMatmul', () => {
  const cpu: MatmulTarget = { simd: true, maxTextureSize: 8192 };
  const gpu: MatmulTarget = { simd: false, maxTextureSize: 8192 };

  it('uses the tiled kernel on devices without the SIMD path, whatever the size', () => {
    expect(planMatmul(1024, 1024, 1024, 1, gpu).path).toBe('tiled');
    expect(planMatmul(1024, 1024, 1024, 1, gpu, 1, 1, { path: 'simd' }).path).toBe('tiled');
  });

  it('takes the SIMD path for large problems and the tiled kernel for tiny ones', () => {
    const plan = planMatmul(1024, 1024, 1024, 1, cpu);
    expect(plan).toMatchObject({ path: 'simd', overrides: { RA: 2, CB: 2 }, workgroups: [64, 16, 1] });
    expect(planMatmul(4, 4, 4, 1, cpu).path).toBe('tiled');
    expect(planMatmul(4, 4, 4, 1, cpu, 1, 1, { path: 'simd' }).path).toBe('simd');
    expect(planMatmul(1024, 1024, 1024, 1, cpu, 1, 1, { path: 'tiled' }).path).toBe('tiled');
  });

  it('sizes the packed textures, pads K to whole texels and honours a pinned tile', () => {
    const plan = planMatmul(65, 67, 130, 3, cpu, 3, 1, { tile: { RA: 4, CB: 1 } });
    expect(plan).toMatchObject({ path: 'simd', kPadded: 132, textureA: [33, 195], textureB: [17, 132], workgroups: [3, 3, 3] });
  });

  it('takes the GEMM kernel on a hardware GPU or when forced, and keeps the CPU paths on lavapipe', () => {
    expect(matmulTarget(H200, 'default')).toMatchObject({ simd: false, gemm: true });
    expect(matmulTarget(lavapipe(8), 'default')).toMatchObject({ simd: true, gemm: false });
    expect(matmulTarget(lavapipe(4), 'default')).toMatchObject({ simd: false, gemm: false });
    expect(matmulTarget(lavapipe(16), 'gemm')).toMatchObject({ simd: false, gemm: true });
    // 4096³: 1,024 tiles of 128 × 128 with 8 × 8 register blocks.
    expect(planMatmul(4096, 4096, 4096, 1, matmulTarget(H200, 'default'))).toEqual({
      path: 'gemm', entry: 'matmul_gemm_vec4', overrides: { WG_X: 16, WG_Y: 16, TM: 8, TN4: 2, BK: 8 }, workgroups: [32, 32, 1],
    });
    // Too few 128-tiles to fill the GPU: 64 × 64, and 32 along a thin side.
    expect(planMatmul(256, 20, 512, 2, matmulTarget(H200, 'default'))).toMatchObject({ overrides: { WG_X: 8, WG_Y: 16, TM: 4, TN4: 1 }, workgroups: [1, 4, 2] });
    expect(planMatmul(1024, 1024, 1024, 1, matmulTarget(lavapipe(8), 'default')).path).toBe('simd');
    expect(planMatmul(1024, 1024, 1024, 1, matmulTarget(lavapipe(8), 'gemm')).path).toBe('gemm');
  });

  it('falls back to the tiled kernel when a packed operand would not fit in a texture', () => {
    expect(planMatmul(9000, 64, 64, 1, cpu).path).toBe('tiled');
    expect(planMatmul(64, 64, 64, 200, { simd: true, maxTextureSize: 8192 }).path).toBe('tiled');
  });
});
