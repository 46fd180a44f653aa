// Every op with a PyTorch counterpart against torch itself: the forward output and the gradient
// of sum(out · dout) for each input, from test/golden/fixtures/ops.safetensors (npm run golden).
import { afterAll, describe, expect, it } from 'vitest';
import { F, Generator, scope, tensor, type Tensor } from '../src/index.js';
import { committedFixture, expectGolden, floats, reportWorst } from './golden/golden.js';

interface OpCaseMeta {
  id: string;
  fn: string;
  args: Record<string, unknown>;
  inputs: string[];
  grads: string[];
}

type Inputs = Record<string, Tensor>;
type Args = Record<string, never> & Record<string, unknown>;
const num = (v: unknown) => v as number;
const pair = (v: unknown) => v as [number, number];
const dims = (v: unknown) => v as number[] | undefined;

/** How dawnet spells each torch call of scripts/golden/generate.py. */
const CALLS: Record<string, (t: Inputs, a: Args) => Tensor> = {
  neg: (t) => F.neg(t.x!),
  exp: (t) => F.exp(t.x!),
  log: (t) => F.log(t.x!),
  sqrt: (t) => F.sqrt(t.x!),
  relu: (t) => F.relu(t.x!),
  sigmoid: (t) => F.sigmoid(t.x!),
  tanh: (t) => F.tanh(t.x!),
  pow: (t, a) => F.pow(t.x!, num(a.exponent)),
  leakyRelu: (t, a) => F.leakyRelu(t.x!, num(a.slope)),
  add: (t) => F.add(t.a!, t.b!),
  sub: (t) => F.sub(t.a!, t.b!),
  mul: (t) => F.mul(t.a!, t.b!),
  div: (t) => F.div(t.a!, t.b!),
  mulScalar: (t, a) => F.mul(t.a!, num(a.scalar)),
  sum: (t, a) => F.sum(t.x!, dims(a.dim), Boolean(a.keepdim)),
  mean: (t, a) => F.mean(t.x!, dims(a.dim), Boolean(a.keepdim)),
  max: (t, a) => F.max(t.x!, dims(a.dim), Boolean(a.keepdim)),
  matmul: (t, a) => F.matmul(t.a!, t.b!, { transposeA: Boolean(a.transposeA), transposeB: Boolean(a.transposeB) }),
  linear: (t) => F.linear(t.x!, t.w!, t.b),
  transpose: (t) => F.transpose(t.x!),
  softmax: (t, a) => F.softmax(t.x!, num(a.dim)),
  logSoftmax: (t, a) => F.logSoftmax(t.x!, num(a.dim)),
  crossEntropy: (t) => F.crossEntropy(t.x!, t.labels!),
  binaryCrossEntropy: (t) => F.binaryCrossEntropy(t.p!, t.t!),
  binaryCrossEntropyWithLogits: (t) => F.binaryCrossEntropyWithLogits(t.x!, t.t!),
  cat: (t, a) => F.cat(Object.values(t), num(a.dim)),
  conv2d: (t, a) => F.conv2d(t.x!, t.w!, t.b, a),
  convTranspose2d: (t, a) => F.convTranspose2d(t.x!, t.w!, t.b, a),
  batchNorm: (t, a) => F.batchNorm(t.x!, t.runningMean, t.runningVar, t.w, t.b, { training: Boolean(a.training), momentum: num(a.momentum ?? 0.1), eps: num(a.eps) }),
  maxPool2d: (t, a) => F.maxPool2d(t.x!, pair(a.kernelSize), a),
  avgPool2d: (t, a) => F.avgPool2d(t.x!, pair(a.kernelSize), a),
  adaptiveAvgPool2d: (t, a) => F.adaptiveAvgPool2d(t.x!, pair(a.outputSize)),
  adaptiveMaxPool2d: (t, a) => F.adaptiveMaxPool2d(t.x!, pair(a.outputSize)),
  dropout: (t, a) => F.dropout(t.x!, num(a.p), true, new Generator(7)),
  mseLoss: (t) => F.mseLoss(t.x!, t.t!),
  gaussianKL: (t, a) => F.gaussianKL(t.mu!, t.logvar!, String(a.reduction) as 'sum' | 'mean'),
  tripletMarginLoss: (t, a) => F.tripletMarginLoss(t.a!, t.p!, t.n!, num(a.margin)),
};

// Float32 on both sides; torch and dawnet differ only in summation order and libm.
const RTOL = 1e-4;
const ops = await committedFixture<OpCaseMeta>('ops');

afterAll(reportWorst);

describe('ops against PyTorch 1.13', () => {
  it('covers every op the generator wrote', () => {
    expect(ops.cases.filter((c) => !(c.fn in CALLS)).map((c) => c.fn)).toEqual([]);
  });

  for (const c of ops.cases.filter((k) => k.fn !== 'dropout')) {
    it(`${c.id}: ${JSON.stringify(c.args)}`, async () => {
      const results = await scope(async () => {
        const inputs: Inputs = {};
        for (const name of c.inputs) {
          const t = ops.get(`${c.id}/in.${name}`);
          inputs[name] = t.data instanceof Int32Array ? tensor(t.data, t.shape) : tensor(floats(t), t.shape);
          if (c.grads.includes(name)) inputs[name].requiresGrad_();
        }
        const out = CALLS[c.fn]!(inputs, c.args as Args);
        expect(out.shape, 'output shape').toEqual(ops.get(`${c.id}/out`).shape);
        const read: Record<string, Float32Array | Int32Array> = { out: await out.toArray() };
        if (c.grads.length > 0) {
          const dout = ops.get(`${c.id}/dout`);
          F.sum(F.mul(out, tensor(floats(dout), dout.shape))).backward();
          for (const name of c.grads) read[`grad.${name}`] = await inputs[name]!.grad!.toArray();
        }
        if (c.fn === 'batchNorm' && c.args.training) {
          read['after.runningMean'] = await inputs.runningMean!.toArray();
          read['after.runningVar'] = await inputs.runningVar!.toArray();
        }
        return read;
      });
      for (const [key, actual] of Object.entries(results)) expectGolden('ops', `${c.id} ${key}`, actual, floats(ops.get(`${c.id}/${key}`)), RTOL);
    });
  }

  // torch draws its own mask, so compare where both masks keep an element: the value and the
  // gradient there are x/(1 − p) and dout/(1 − p) on both sides; elsewhere dawnet's are zero.
  const drop = ops.cases.find((k) => k.fn === 'dropout')!;
  it(`${drop.id}: the scaling of kept elements, p = ${String(drop.args.p)}`, async () => {
    const p = drop.args.p as number;
    const x = ops.get(`${drop.id}/in.x`);
    const dout = ops.get(`${drop.id}/dout`);
    const [out, grad] = await scope(async () => {
      const xt = tensor(floats(x), x.shape).requiresGrad_();
      const y = CALLS.dropout!({ x: xt }, drop.args as Args);
      F.sum(F.mul(y, tensor(floats(dout), dout.shape))).backward();
      return [await y.toArray(), await xt.grad!.toArray()];
    });
    const torchOut = floats(ops.get(`${drop.id}/out`));
    const torchGrad = floats(ops.get(`${drop.id}/grad.x`));
    const both: number[] = [];
    let kept = 0;
    let leaked = 0;
    for (let i = 0; i < out.length; i++) {
      if (out[i] !== 0) kept++;
      else if (grad[i] !== 0) leaked++;
      if (out[i] !== 0 && torchOut[i] !== 0) both.push(i);
    }
    expect(leaked, 'gradient where the mask dropped the element').toBe(0);
    expect(both.length).toBeGreaterThan(out.length / 4);
    expectGolden('ops', `${drop.id} out`, both.map((i) => out[i]!), both.map((i) => torchOut[i]!), RTOL);
    expectGolden('ops', `${drop.id} grad.x`, both.map((i) => grad[i]!), both.map((i) => torchGrad[i]!), RTOL);
    // 2112 draws: the kept fraction is within 4 standard deviations of 1 − p.
    expect(Math.abs(kept / out.length - (1 - p))).toBeLessThan(4 * Math.sqrt((p * (1 - p)) / out.length));
  });
});
