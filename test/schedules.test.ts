// Learning-rate schedules against their closed forms (pure TypeScript, no GPU).
import { describe, expect, it } from 'vitest';
import { optim } from '../src/index.js';

const { constant, cosine, LRScheduler, lookupTable, multiStep, polynomialWarmup, stepDecay } = optim;
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

describe('schedules', () => {
  it('constant', () => {
    const s = constant();
    for (const t of [0, 1, 59, 1000]) expect(s(t, 0.3)).toBe(0.3);
  });

  it('step: baseLr · γ^⌊t / stepSize⌋', () => {
    const s = stepDecay(30, 0.1);
    for (const t of range(100)) expect(s(t, 0.5)).toBeCloseTo(0.5 * 0.1 ** Math.floor(t / 30), 15);
    expect([s(29, 1), s(30, 1), s(59, 1), s(60, 1)]).toEqual([1, 0.1, 0.1, 0.1 ** 2]);
    expect(() => stepDecay(0)).toThrow(RangeError);
  });

  it('multistep: baseLr · γ^(milestones passed), milestones in any order', () => {
    const s = multiStep([80, 30], 0.2);
    for (const t of range(120)) expect(s(t, 0.1)).toBeCloseTo(0.1 * 0.2 ** ((t >= 30 ? 1 : 0) + (t >= 80 ? 1 : 0)), 15);
    expect([s(29, 1), s(30, 1), s(79, 1), s(80, 1)]).toEqual([1, 0.2, 0.2, 0.2 ** 2]);
  });

  it("look-up table: RotNet's 0.1 → 0.02 → 0.004 → 0.0008 at epochs 60, 120, 160", () => {
    const s = lookupTable([
      [60, 0.1],
      [120, 0.02],
      [160, 0.004],
      [200, 0.0008],
    ]);
    const expected = (t: number): number => (t < 60 ? 0.1 : t < 120 ? 0.02 : t < 160 ? 0.004 : 0.0008);
    for (const t of range(260)) expect(s(t, 123)).toBe(expected(t));
    expect(() => lookupTable([])).toThrow(RangeError);
    expect(() => lookupTable([[10, 1], [10, 2]])).toThrow(RangeError);
  });

  it("polynomial decay with linear warm-up per iteration (SESEMI's PolynomialLR)", () => {
    const [base, warmupLr, W, T, power] = [0.05, 0.001, 100, 1000, 0.5];
    const s = polynomialWarmup({ maxIters: T, warmupIters: W, warmupLr, power });
    const closed = (t: number): number => (t >= T ? 0 : t < W ? warmupLr + ((base - warmupLr) * t) / W : base * (1 - (t - W) / (T - W)) ** power);
    for (const t of range(1200)) expect(s(t, base)).toBeCloseTo(closed(t), 15);
    expect(s(0, base)).toBe(warmupLr);
    expect(s(50, base)).toBeCloseTo((warmupLr + base) / 2, 15);
    expect(s(W, base)).toBe(base);
    expect(s(550, base)).toBeCloseTo(base * Math.SQRT1_2, 15);
    expect(s(T, base)).toBe(0);
    // Without warm-up it is the plain polynomial decay baseLr · (1 − t/T)^p.
    const plain = polynomialWarmup({ maxIters: 10, power: 2 });
    expect(range(11).map((t) => plain(t, 1))).toEqual(range(11).map((t) => (t >= 10 ? 0 : (1 - t / 10) ** 2)));
  });

  it("cosine: torch CosineAnnealingLR's closed form, equal to its recursive form", () => {
    const [base, etaMin, T] = [0.1, 0.001, 50];
    const s = cosine(T, etaMin);
    for (const t of range(T + 1)) expect(s(t, base)).toBeCloseTo(etaMin + ((base - etaMin) * (1 + Math.cos((Math.PI * t) / T))) / 2, 15);
    expect([s(0, base), s(T, base)]).toEqual([base, etaMin]);
    expect(s(T / 2, base)).toBeCloseTo((base + etaMin) / 2, 15);
    // PyTorch's chainable get_lr: lr_t = ηmin + (lr_{t−1} − ηmin)(1 + cos(πt/T)) / (1 + cos(π(t−1)/T)).
    let lr = base;
    for (let t = 1; t < T; t++) {
      lr = etaMin + ((lr - etaMin) * (1 + Math.cos((Math.PI * t) / T))) / (1 + Math.cos((Math.PI * (t - 1)) / T));
      expect(s(t, base)).toBeCloseTo(lr, 12);
    }
  });
});

describe('LRScheduler', () => {
  it("scales each group's own base rate and records it as initialLr", () => {
    const optimizer = { paramGroups: [{ lr: 0.1 }, { lr: 0.01 }] as { lr: number; initialLr?: number }[] };
    const scheduler = new LRScheduler(optimizer, multiStep([2, 4], 0.5));
    expect(scheduler.lastLr()).toEqual([0.1, 0.01]);
    const seen: number[][] = [];
    for (let i = 0; i < 5; i++) {
      scheduler.step();
      seen.push(scheduler.lastLr());
    }
    expect(seen).toEqual([
      [0.1, 0.01],
      [0.05, 0.005],
      [0.05, 0.005],
      [0.025, 0.0025],
      [0.025, 0.0025],
    ]);
    expect(optimizer.paramGroups.map((g) => g.initialLr)).toEqual([0.1, 0.01]);
    // A scheduler made later (after a resume) starts from the recorded base rates, not the decayed ones.
    const resumed = new LRScheduler(optimizer, multiStep([2, 4], 0.5), 3);
    expect(resumed.t).toBe(3);
    expect(resumed.lastLr()).toEqual([0.05, 0.005]);
  });
});
