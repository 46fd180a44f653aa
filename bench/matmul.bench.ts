// Matmul speed: C = A·B for square float32 matrices of side 512, 1024 and 2048, with the kernel
// and tile the planner chose for each, and again with the GPU kernel (matmul_gemm) forced, rows
// named `[gemm]`; on a GPU 4096 too. --sweep adds matmul 1024 with every kernel and SIMD tile
// it can choose, to re-tune src/ops/matmul-plan.ts.
//   npm run bench:matmul [-- --quick] [-- --sweep] [-- --no-peers]   (npm run bench: every family)
import { randn } from '../src/index.js';
import { matmulPlanFor, runMatmul } from '../src/ops/matmul.js';
import { gemmLabel, type MatmulOptions, type MatmulPlan } from '../src/ops/matmul-plan.js';
import { runIfMain, type Family, type Session } from './harness.js';

/** Sides and timed iterations: 2048³ takes about half a second on lavapipe. */
const SIZES: [side: number, iterations: number][] = [[512, 15], [1024, 9], [2048, 5]];
const plain = { transposeA: false, transposeB: false };

function describe(plan: MatmulPlan): string {
  if (plan.path === 'simd') return `simd ${8 * plan.overrides.RA}x${32 * plan.overrides.CB}`;
  if (plan.path === 'gemm') return `gemm ${gemmLabel(plan.overrides)}${plan.entry === 'matmul_gemm_vec4' ? ' vec4' : ''}`;
  return `tiled ${4 * plan.overrides.WG_Y}x${4 * plan.overrides.WG_X}`;
}

/** Times C = A·B; the operands are made outside the timed region. */
async function matmul(session: Session, name: string, n: number, iterations: number, options: MatmulOptions = {}): Promise<void> {
  const a = randn([n, n]).keep();
  const b = randn([n, n]).keep();
  const kernel = describe(matmulPlanFor([n, n], [n, n], plain, options));
  const spec = { name, shape: `${n}x${n} · ${n}x${n}`, flops: 2 * n ** 3, note: `kernel ${kernel}` };
  await session.gpu(spec, () => runMatmul(a, b, plain, options).dispose(), iterations);
  a.dispose();
  b.dispose();
}

export const matmulBench: Family = {
  name: 'matmul',
  async run(session) {
    const sizes = session.isSoftware ? SIZES : [...SIZES, [4096, 10] as [number, number]];
    for (const [n, iterations] of sizes) await matmul(session, `matmul ${n}`, n, iterations);
    // The GPU kernel forced: built for GPUs, reported (not tuned) on a CPU adapter.
    if (session.isSoftware) for (const [n, iterations] of SIZES) await matmul(session, `matmul ${n} [gemm]`, n, iterations, { path: 'gemm' });
    if (!session.options.sweep) return;
    const choices: MatmulOptions[] = [{ path: 'tiled' }];
    for (const RA of [1, 2, 3, 4]) for (const CB of [1, 2]) choices.push({ path: 'simd', tile: { RA, CB } });
    for (const options of choices) {
      const kernel = describe(matmulPlanFor([1024, 1024], [1024, 1024], plain, options));
      await matmul(session, `matmul 1024 [${kernel}]`, 1024, 5, options);
    }
  },
};

await runIfMain(import.meta.url, matmulBench);
