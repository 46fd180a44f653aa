// Optimizers and learning-rate schedules against torch.optim: ten steps of SGD (momentum,
// dampening, Nesterov, weight decay), Adam and AdamW on a small MLP from the same weights, and
// each schedule's rates against torch.optim.lr_scheduler, from test/golden/fixtures.
import { afterAll, describe, expect, it } from 'vitest';
import { F, nn, optim, scope, tensor } from '../src/index.js';
import { committedFixture, expectGolden, floats, reportWorst, stateDictOf } from './golden/golden.js';

interface OptimMeta {
  id: string;
  kind: 'sgd' | 'adam' | 'adamw';
  hyper: Record<string, never>;
  steps: number;
}

interface ScheduleMeta {
  id: string;
  schedule: 'stepDecay' | 'multiStep' | 'cosine' | 'polynomialWarmup';
  // The fields of the schedule named, as scripts/golden/generate.py writes them.
  args: { stepSize: number; gamma: number; milestones: number[]; tMax: number; etaMin: number; maxIters: number; power: number };
  baseLr: number;
  epochs: number;
}

// Ten float32 updates on both sides: each rounds a few times per step.
const RTOL = 1e-5;
const fixture = await committedFixture<OptimMeta>('optim');
const schedules = await committedFixture<ScheduleMeta>('schedules');

afterAll(reportWorst);

const OPTIMIZERS = {
  sgd: (params: ReturnType<nn.Module['parameters']>, h: Record<string, never>) => new optim.SGD(params, h),
  adam: (params: ReturnType<nn.Module['parameters']>, h: Record<string, never>) => new optim.Adam(params, h),
  adamw: (params: ReturnType<nn.Module['parameters']>, h: Record<string, never>) => new optim.AdamW(params, h),
};

describe('optimizers against torch.optim', () => {
  for (const c of fixture.cases) {
    it(`${c.id}: ${c.steps} steps of ${JSON.stringify(c.hyper)}`, async () => {
      const model = new nn.Sequential(new nn.Linear(6, 5), new nn.Tanh(), new nn.Linear(5, 3));
      model.loadStateDict(stateDictOf(fixture, `${c.id}/init.`));
      const opt = OPTIMIZERS[c.kind](model.parameters(), c.hyper);
      const x = fixture.get('x');
      const labels = fixture.get('labels');
      const losses: number[] = [];
      try {
        for (let step = 0; step < c.steps; step++) {
          const loss = scope(() => {
            const l = F.crossEntropy(model.forward(tensor(floats(x), x.shape)), tensor(labels.data as Int32Array, labels.shape));
            l.backward();
            return l.keep();
          });
          opt.step();
          opt.zeroGrad();
          losses.push(await loss.item());
          loss.dispose();
        }
        expectGolden('optim', `${c.id} losses`, losses, Array.from(fixture.get(`${c.id}/losses`).data as Float32Array), RTOL);
        for (const [name, t] of model.namedParameters()) expectGolden('optim', `${c.id} ${name}`, await t.toArray(), floats(fixture.get(`${c.id}/final.${name}`)), RTOL);
      } finally {
        opt.dispose();
        model.dispose();
      }
    });
  }
});

describe('schedules against torch.optim.lr_scheduler', () => {
  for (const c of schedules.cases) {
    it(`${c.id} ${JSON.stringify(c.args)}`, () => {
      const a = c.args;
      const schedule = {
        stepDecay: () => optim.stepDecay(a.stepSize, a.gamma),
        multiStep: () => optim.multiStep(a.milestones, a.gamma),
        cosine: () => optim.cosine(a.tMax, a.etaMin),
        polynomialWarmup: () => optim.polynomialWarmup({ maxIters: a.maxIters, power: a.power }),
      }[c.schedule]();
      const group = { paramGroups: [{ lr: c.baseLr }] };
      const scheduler = new optim.LRScheduler(group, schedule);
      const rates: number[] = [];
      for (let epoch = 0; epoch < c.epochs; epoch++) {
        rates.push(scheduler.lastLr()[0]!);
        scheduler.step();
      }
      const expected = schedules.get(`${c.id}/lr`).data as Float64Array;
      expect(expected.length).toBe(c.epochs);
      // torch's CosineAnnealingLR is a recurrence, equal to the closed form up to rounding.
      expectGolden('schedules', c.id, rates, expected, 1e-12);
    });
  }
});
