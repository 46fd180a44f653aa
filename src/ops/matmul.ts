// Batched matrix multiply (kernels/matmul.wgsl), with either operand transposed in place and a
// 2-D operand broadcast over the other's batch, as torch.matmul does.
import { Tensor } from '../tensor.js';
import { launch } from './launch.js';
import { planMatmul } from './matmul-plan.js';
import type { OpCase, OpDef, RefTensor } from './op.js';
import { sumAxis } from './reduce.js';

export interface MatmulAttrs {
  /** Use Aᵀ: a is stored (…, K, M). */
  transposeA: boolean;
  /** Use Bᵀ: b is stored (…, N, K). */
  transposeB: boolean;
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

/** out = op(a)·op(b), outside the tape. */
export function runMatmul(a: Tensor, b: Tensor, attrs: MatmulAttrs): Tensor {
  const d = dims(a.shape, b.shape, attrs);
  const out = Tensor.empty([...d.batchShape, d.M, d.N]);
  const plan = planMatmul(d.M, d.N, d.K, d.batch);
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
  launch('matmul', plan.entry, { out, a, b }, params, plan.workgroups, plan.overrides);
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

export const matmulOps = {
  matmul: {
    kernel: 'matmul',
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
    ] satisfies OpCase<MatmulAttrs>[],
    // Sums of K float32 products: error grows like sqrt(K) ulp; K ≤ 33 here.
    tolerance: { rtol: 1e-5, atol: 1e-5 },
    gradTolerance: { rtol: 1e-3, atol: 1e-4 },
  } satisfies OpDef<MatmulAttrs>,
};
