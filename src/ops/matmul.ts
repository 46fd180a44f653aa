// Batched matrix multiply (kernels/matmul.wgsl), with either operand transposed in place and a
// 2-D operand broadcast over the other's batch, as torch.matmul does.
import type { Backend } from '../gpu/backend.js';
import { backend } from '../runtime.js';
import { matmulKey, type TunedChoice } from '../gpu/tuning.js';
import { candidates, FIRST_USE_ITERATIONS, TUNER_TILES, tuneLog, tuneShape } from '../gpu/tuner.js';
import { randn } from '../creation.js';
import { Tensor } from '../tensor.js';
import { launch, overWindows } from '../gpu/launch.js';
import { gemmLabel, matmulTarget, planMatmul, withTuned, type MatmulOptions, type MatmulPlan, type SimdPlan } from './matmul-plan.js';
import type { OpCase, OpDef, RefTensor } from './op.js';
import { transposeLast2 } from './layout.js';
import { SUM_KERNELS, sumAxis } from './reduce.js';

export interface MatmulAttrs {
  /** Use Aᵀ: a is stored (…, K, M). */
  transposeA: boolean;
  /** Use Bᵀ: b is stored (…, N, K). */
  transposeB: boolean;
}

/** What the GEMM kernels add to the product before storing it: bias over the columns (N), then ReLU. */
export interface MatmulEpilogue {
  bias?: Tensor;
  relu?: boolean;
}

interface Dims {
  batch: number;
  M: number;
  N: number;
  K: number;
  /** The output's batch dimensions. */
  batchShape: number[];
  strideA: number;
  strideB: number;
}

function dims(a: readonly number[], b: readonly number[], { transposeA, transposeB }: MatmulAttrs): Dims {
  const fail = (why: string): never => {
    throw new Error(`matmul: cannot multiply [${a.join(', ')}]${transposeA ? 'ᵀ' : ''} by [${b.join(', ')}]${transposeB ? 'ᵀ' : ''}: ${why}`);
  };
  if (a.length < 2 || b.length < 2) fail('both operands need at least 2 dimensions');
  const [ar, ac] = a.slice(-2) as [number, number];
  const [br, bc] = b.slice(-2) as [number, number];
  const [M, Ka] = transposeA ? [ac, ar] : [ar, ac];
  const [Kb, N] = transposeB ? [bc, br] : [br, bc];
  if (Ka !== Kb) fail(`inner dimensions ${Ka} and ${Kb} differ`);
  const batchA = a.slice(0, -2);
  const batchB = b.slice(0, -2);
  const countA = batchA.reduce((p, d) => p * d, 1);
  const countB = batchB.reduce((p, d) => p * d, 1);
  if (batchA.length > 0 && batchB.length > 0 && batchA.join() !== batchB.join()) fail('batch dimensions differ');
  const batchShape = batchA.length > 0 ? batchA : batchB;
  return {
    batch: Math.max(countA, countB),
    M,
    N,
    K: Ka,
    batchShape,
    strideA: batchA.length > 0 ? M * Ka : 0,
    strideB: batchB.length > 0 ? Ka * N : 0,
  };
}

/** One scratch texture per operand, from the backend's owner. */
const packTexture = (gpu: Backend, operand: 'a' | 'b', size: [number, number]): GPUTexture => gpu.texture(`matmul ${operand.toUpperCase()}`, size);

function runSimd(gpu: Backend, plan: SimdPlan, out: Tensor, a: Tensor, b: Tensor, d: Dims, attrs: MatmulAttrs): void {
  const texA = packTexture(gpu, 'a', plan.textureA);
  const texB = packTexture(gpu, 'b', plan.textureB);
  const params = {
    M: d.M,
    N: d.N,
    K: d.K,
    transA: attrs.transposeA ? 1 : 0,
    transB: attrs.transposeB ? 1 : 0,
    strideA: d.strideA,
    strideB: d.strideB,
    strideOut: d.M * d.N,
    rowsA: d.strideA === 0 ? 0 : d.M,
    rowsB: d.strideB === 0 ? 0 : plan.kPadded,
  };
  const batchA = d.strideA === 0 ? 1 : d.batch;
  const batchB = d.strideB === 0 ? 1 : d.batch;
  const k4 = plan.kPadded / 4;
  const n4 = Math.ceil(d.N / 4);
    // pack_a / pack_b put lanes (x) along the source's contiguous dimension, which is the texel
  // column for a stored operand and the texture row for a transposed one.
  const grid = (transposed: boolean, texels: number, rowsPerItem: number, items: number): [number, number, number] =>
    transposed ? [Math.ceil(rowsPerItem / 8), Math.ceil(texels / 8), items] : [Math.ceil(texels / 8), Math.ceil(rowsPerItem / 8), items];
  // An untransposed operand already is its packed layout: rows of whole texels, stacked by batch
  // item. It is a plain copy when a row is a multiple of 256 bytes, the copy's row pitch; else a
  // vec4-per-texel kernel; transposed or ragged operands go element by element, which also writes
  // the zero padding past K and N.
  const rows = d.K % 4 === 0;
  if (rows && !attrs.transposeA && d.K % 64 === 0) gpu.copyToTexture(a.view, texA, 4 * d.K, plan.textureA);
  else if (rows && !attrs.transposeA) launch('matmul_simd', 'pack_a_rows', { a4: a, packed: texA }, params, [Math.ceil(k4 / 8), Math.ceil(d.M / 8), batchA]);
  else launch('matmul_simd', 'pack_a', { a, packed: texA }, params, grid(attrs.transposeA, k4, d.M, batchA));
  if (rows && !attrs.transposeB && d.N % 64 === 0) gpu.copyToTexture(b.view, texB, 4 * d.N, plan.textureB);
  else if (rows && !attrs.transposeB && d.N % 4 === 0) launch('matmul_simd', 'pack_b_rows', { b4: b, packed: texB }, params, [Math.ceil(n4 / 8), Math.ceil(d.K / 8), batchB]);
  else launch('matmul_simd', 'pack_b', { b, packed: texB }, params, grid(attrs.transposeB, n4, plan.kPadded, batchB));
  launch('matmul_simd', 'matmul_simd', { out, packedA: texA, packedB: texB }, params, plan.workgroups, plan.overrides);
}

function plan(d: Dims, attrs: MatmulAttrs, gpu: Backend, options: MatmulOptions): MatmulPlan {
  const batchA = d.strideA === 0 ? 1 : d.batch;
  const batchB = d.strideB === 0 ? 1 : d.batch;
  const key = matmulKey(d.M, d.N, d.K, d.batch, attrs.transposeA, attrs.transposeB);
  const tuned = gpu.tuning.entries[key];
  if (!tuned && !options.path) gpu.queueTuning(key, () => timeMatmul(key, d, attrs));
  return planMatmul(d.M, d.N, d.K, d.batch, matmulTarget(gpu.caps, gpu.kernelChoice), batchA, batchB, withTuned(options, tuned), [attrs.transposeA, attrs.transposeB]);
}

/** DAWNET_TUNE=1: the candidate kernels timed on random operands of this shape (src/gpu/tuner.ts). */
async function timeMatmul(key: string, d: Dims, attrs: MatmulAttrs): Promise<TunedChoice> {
  const batched = (stride: number): number[] => (stride === 0 ? [] : [d.batch]);
  const a = randn([...batched(d.strideA), ...(attrs.transposeA ? [d.K, d.M] : [d.M, d.K])]).keep();
  const b = randn([...batched(d.strideB), ...(attrs.transposeB ? [d.N, d.K] : [d.K, d.N])]).keep();
  const untuned = plan(d, attrs, backend(), {}).path;
  const all = candidates(['tiled', 'simd'], TUNER_TILES, gemmLabel);
  try {
    return await tuneShape(key, untuned, all, (choice) => runMatmul(a, b, attrs, choice as MatmulOptions), FIRST_USE_ITERATIONS, tuneLog);
  } finally {
    a.dispose();
    b.dispose();
  }
}

/** The kernel and tile runMatmul would use for these operand shapes on the open device. */
export function matmulPlanFor(a: readonly number[], b: readonly number[], attrs: MatmulAttrs, options: MatmulOptions = {}): MatmulPlan {
  return plan(dims(a, b, attrs), attrs, backend(), options);
}

/**
 * out = op(a)·op(b), outside the tape. `options` pins the kernel (tests and benchmarks). Past the
 * binding ceiling the work runs in windows of out's rows: along the rows of a stored a when b is
 * one matrix, else along the batch when both operands have it. A transposed a or a single matrix
 * b larger than one binding is not cut, and the dispatch names it.
 */
export function runMatmul(a: Tensor, b: Tensor, attrs: MatmulAttrs, options: MatmulOptions = {}): Tensor {
  const d = dims(a.shape, b.shape, attrs);
  if (a.ndim === 2 && b.ndim === 2) {
    const planned = largeMatrices(a, b, attrs, d, options);
    if (planned) return planned;
  }
  const shape = [...d.batchShape, d.M, d.N];
  let windowed: Tensor | undefined;
  if (!attrs.transposeA && d.strideB === 0) {
    const rows = a.alias([d.batch * d.M, d.K]);
    windowed = overWindows([rows], [{ concat: 4 * d.N }], ([part]) => [whole(part!, b, attrs, options)])[0]!;
    rows.dispose();
  } else if (d.strideA !== 0 && d.strideB !== 0) {
    const [ra, ca] = a.shape.slice(-2) as [number, number];
    const [rb, cb] = b.shape.slice(-2) as [number, number];
    const [a3, b3] = [a.alias([d.batch, ra, ca]), b.alias([d.batch, rb, cb])];
    windowed = overWindows([a3, b3], [{ concat: 4 * d.M * d.N }], ([pa, pb]) => [whole(pa!, pb!, attrs, options)])[0]!;
    a3.dispose();
    b3.dispose();
  }
  if (!windowed) return whole(a, b, attrs, options);
  const out = windowed.alias(shape);
  windowed.dispose();
  return out;
}

/**
 * Two matrices where b, or a transposed a, or the output passes one binding (a linear layer's
 * weight such as RotNet AlexNet's 144 MiB fc6, and its gradient), rewritten so that the large
 * matrix is cut along its stored rows: a·bᵀ = (b·aᵀ)ᵀ; a·b = Σ over windows k of a[:, k]·b[k, :]
 * (added in window order); aᵀ·b from a materialised aᵀ. Null when none of these is needed.
 */
function largeMatrices(a: Tensor, b: Tensor, attrs: MatmulAttrs, d: Dims, options: MatmulOptions): Tensor | null {
  const limit = backend().bindingLimit;
  const large = (elements: number): boolean => 4 * elements > limit;
  if (large(b.size) && attrs.transposeB && !large(a.size)) {
    const outT = runMatmul(b, a, { transposeA: false, transposeB: !attrs.transposeA }, options);
    const out = transposeLast2(outT);
    outT.dispose();
    return out;
  }
  if (large(b.size) && !attrs.transposeB) {
    const aT = attrs.transposeA ? a.alias() : transposeLast2(a);
    const [out] = overWindows([aT, b], ['sum'], ([pa, pb]) => [runMatmul(pa!, pb!, { transposeA: true, transposeB: false }, options)]);
    aT.dispose();
    return out!;
  }
  if (attrs.transposeA && (large(a.size) || large(d.M * d.N))) {
    const aT = transposeLast2(a);
    const out = runMatmul(aT, b, { transposeA: false, transposeB: attrs.transposeB }, options);
    aT.dispose();
    return out;
  }
  return null;
}

/**
 * relu(op(a)·op(b) + bias) in one GEMM dispatch (torch.relu(F.linear(x, w, bias)) with b = wᵀ):
 * the fused epilogue, on the GEMM kernels only (pinned or chosen), and on operands within one binding.
 */
export function runMatmulFused(a: Tensor, b: Tensor, attrs: MatmulAttrs, epilogue: MatmulEpilogue, options: MatmulOptions = {}): Tensor {
  const d = dims(a.shape, b.shape, attrs);
  if (epilogue.bias && (epilogue.bias.ndim !== 1 || epilogue.bias.shape[0] !== d.N)) {
    throw new Error(`matmul: bias [${epilogue.bias.shape.join(', ')}] must be [${d.N}] for an output of ${d.N} columns`);
  }
  if (plan(d, attrs, backend(), options).path !== 'gemm') throw new Error('matmul: a fused bias or ReLU needs the GEMM kernel (options.path = \'gemm\')');
  return whole(a, b, attrs, options, epilogue);
}

function whole(a: Tensor, b: Tensor, attrs: MatmulAttrs, options: MatmulOptions, epilogue: MatmulEpilogue = {}): Tensor {
  const d = dims(a.shape, b.shape, attrs);
  const out = Tensor.empty([...d.batchShape, d.M, d.N]);
  const gpu = backend();
  const chosen = plan(d, attrs, gpu, options);
  if (chosen.path === 'simd') {
    runSimd(gpu, chosen, out, a, b, d, attrs);
    return out;
  }
  const params = {
    M: d.M,
    N: d.N,
    K: d.K,
    transA: attrs.transposeA ? 1 : 0,
    transB: attrs.transposeB ? 1 : 0,
    strideA: d.strideA,
    strideB: d.strideB,
    strideOut: d.M * d.N,
  };
  if (chosen.path === 'gemm') {
    const operands: Record<string, Tensor> = chosen.entry === 'matmul_gemm_vec4' ? { a4: a, b4: b } : { a, b };
    const fused = { hasBias: epilogue.bias ? 1 : 0, relu: epilogue.relu ? 1 : 0 };
    launch('matmul_gemm', chosen.entry, { out, ...operands, bias: epilogue.bias ?? a }, { ...params, ...fused }, chosen.workgroups, { ...chosen.overrides });
    return out;
  }
  launch('matmul', chosen.entry, { out, a, b }, params, chosen.workgroups, { ...chosen.overrides });
  return out;
}

/** Sums a batched gradient over the batch when its operand was a broadcast 2-D matrix. */
function unbroadcast(g: Tensor, shape: readonly number[]): Tensor {
  if (g.ndim === shape.length) return g;
  const flat = g.alias([g.size / (shape[0]! * shape[1]!), shape[0]!, shape[1]!]);
  g.dispose();
  const summed = sumAxis(flat, 0);
  flat.dispose();
  return summed;
}

function refMatmul([a, b]: readonly RefTensor[], attrs: MatmulAttrs): RefTensor {
  const d = dims(a!.shape, b!.shape, attrs);
  const data = new Float64Array(d.batch * d.M * d.N);
  for (let p = 0; p < d.batch; p++) {
    for (let i = 0; i < d.M; i++) {
      for (let j = 0; j < d.N; j++) {
        let acc = 0;
        for (let k = 0; k < d.K; k++) {
          const av = a!.data[p * d.strideA + (attrs.transposeA ? k * d.M + i : i * d.K + k)]!;
          const bv = b!.data[p * d.strideB + (attrs.transposeB ? j * d.K + k : k * d.N + j)]!;
          acc += av * bv;
        }
        data[(p * d.M + i) * d.N + j] = acc;
      }
    }
  }
  return { shape: [...d.batchShape, d.M, d.N], data };
}

const plain = { transposeA: false, transposeB: false };

/** The SIMD path's kernels (kernels/matmul_simd.wgsl): the operand packs and the product. */
const MATMUL_SIMD_KERNELS = ['matmul_simd.pack_a', 'matmul_simd.pack_a_rows', 'matmul_simd.pack_b', 'matmul_simd.pack_b_rows', 'matmul_simd.matmul_simd'] as const;

export const matmulOps = {
  matmul: {
    kernels: ['matmul.matmul', 'matmul_gemm.matmul_gemm', 'matmul_gemm.matmul_gemm_vec4', ...MATMUL_SIMD_KERNELS, ...SUM_KERNELS],
    saves: ['in0', 'in1'],
    forward: ([a, b], attrs) => ({ out: runMatmul(a!, b!, attrs) }),
    // With C = op(A)·op(B): d op(A) = G·op(B)ᵀ and d op(B) = op(A)ᵀ·G, transposed back where
    // the operand was stored transposed, so every case is one matmul with flags and no copy.
    backward({ grad, saved, attrs, needs, shapes }) {
      const [a, b] = saved as [Tensor, Tensor];
      const { transposeA: tA, transposeB: tB } = attrs;
      const dA = !needs[0] ? null : tA
        ? runMatmul(b, grad, { transposeA: tB, transposeB: true })
        : runMatmul(grad, b, { transposeA: false, transposeB: !tB });
      const dB = !needs[1] ? null : tB
        ? runMatmul(grad, a, { transposeA: true, transposeB: tA })
        : runMatmul(a, grad, { transposeA: !tA, transposeB: false });
      return [dA && unbroadcast(dA, shapes[0]!), dB && unbroadcast(dB, shapes[1]!)];
    },
    reference: refMatmul,
    cases: [
      { shapes: [[1, 1], [1, 1]], attrs: plain },
      { shapes: [[3, 17], [17, 5]], attrs: plain },
      { shapes: [[17, 3], [17, 5]], attrs: { transposeA: true, transposeB: false } },
      { shapes: [[3, 17], [5, 17]], attrs: { transposeA: false, transposeB: true } },
      { shapes: [[17, 3], [5, 17]], attrs: { transposeA: true, transposeB: true } },
      { shapes: [[2, 65, 9], [2, 9, 13]], attrs: plain },
      { shapes: [[3, 7, 5], [5, 6]], attrs: plain },
      { shapes: [[7, 5], [3, 5, 6]], attrs: plain },
      { shapes: [[130, 33], [33, 65]], attrs: plain },
      // Big enough (M·N·K ≥ 2^16) for the SIMD path on CPU adapters: K not a multiple of 4, a
      // broadcast operand with whole-texel rows, and both operands stored transposed.
      { shapes: [[65, 130], [130, 67]], attrs: plain },
      { shapes: [[2, 40, 128], [128, 36]], attrs: plain },
      { shapes: [[33, 130], [65, 33]], attrs: { transposeA: true, transposeB: true } },
    ] satisfies OpCase<MatmulAttrs>[],
    // Sums of K float32 products: error grows like sqrt(K) ulp; K ≤ 130 here.
    tolerance: { rtol: 1e-5, atol: 1e-5 },
    gradTolerance: { rtol: 1e-3, atol: 1e-4 },
  } satisfies OpDef<MatmulAttrs>,
};
