// Learning-rate schedules as closed forms of a counter t (epochs or iterations, from 0), and an
// LRScheduler that writes them into an optimizer's parameter groups (torch.optim.lr_scheduler).
// Pure TypeScript: a schedule's value becomes a uniform of the next update kernel.

/** The learning rate at step t (an epoch or an iteration, from 0) for a group whose base rate is baseLr. */
export type Schedule = (t: number, baseLr: number) => number;

/** The base rate throughout. */
export function constant(): Schedule {
  return (_t, baseLr) => baseLr;
}

/** torch StepLR: baseLr · γ^⌊t / stepSize⌋. */
export function stepDecay(stepSize: number, gamma = 0.1): Schedule {
  if (!(Number.isInteger(stepSize) && stepSize > 0)) throw new RangeError(`stepDecay: stepSize must be a positive integer, got ${stepSize}`);
  return (t, baseLr) => baseLr * gamma ** Math.floor(t / stepSize);
}

/** torch MultiStepLR: baseLr · γ^(number of milestones ≤ t). */
export function multiStep(milestones: readonly number[], gamma = 0.1): Schedule {
  const sorted = [...milestones].sort((a, b) => a - b);
  return (t, baseLr) => baseLr * gamma ** sorted.filter((m) => m <= t).length;
}

/**
 * An epoch look-up table of absolute rates, as RotNet's LUT_lr: the rate of the first entry
 * whose epoch bound exceeds t, or the last entry's beyond the table. RotNet's
 * [[60, 0.1], [120, 0.02], [160, 0.004], [200, 0.0008]] gives 0.1 for epochs 0–59, 0.02 for
 * 60–119, 0.004 for 120–159 and 0.0008 from 160. The same rate for every group.
 */
export function lookupTable(table: readonly (readonly [number, number])[]): Schedule {
  if (table.length === 0) throw new RangeError('lookupTable: the table is empty');
  for (let i = 1; i < table.length; i++) {
    if (!(table[i]![0] > table[i - 1]![0])) throw new RangeError('lookupTable: epoch bounds must increase');
  }
  return (t) => (table.find(([until]) => until > t) ?? table[table.length - 1]!)[1];
}

export interface PolynomialWarmupOptions {
  /** Iterations in all (SESEMI's max_iters); the rate is 0 from here on. */
  maxIters: number;
  /** Iterations of linear warm-up (SESEMI: warmup_epochs · iters_per_epoch). */
  warmupIters?: number;
  /** The rate warm-up starts from. */
  warmupLr?: number;
  /** The polynomial's power (SESEMI's lr_pow). */
  power?: number;
}

/**
 * SESEMI's PolynomialLR, per iteration t: for t < W, warmupLr + (baseLr − warmupLr) · t / W;
 * then baseLr · max(1 − (t − W) / (T − W), 0)^power; 0 from t = T.
 */
export function polynomialWarmup({ maxIters, warmupIters = 0, warmupLr = 0, power = 0.5 }: PolynomialWarmupOptions): Schedule {
  if (!(maxIters >= warmupIters && warmupIters >= 0)) throw new RangeError(`polynomialWarmup: need 0 ≤ warmupIters ≤ maxIters, got ${warmupIters} and ${maxIters}`);
  return (t, baseLr) => {
    if (t >= maxIters) return 0;
    if (t < warmupIters) return warmupLr + ((baseLr - warmupLr) * t) / warmupIters;
    return baseLr * Math.max(1 - (t - warmupIters) / (maxIters - warmupIters), 0) ** power;
  };
}

/** torch CosineAnnealingLR's closed form: ηmin + (baseLr − ηmin) · (1 + cos(π·t / Tmax)) / 2. */
export function cosine(tMax: number, etaMin = 0): Schedule {
  if (!(tMax > 0)) throw new RangeError(`cosine: tMax must be positive, got ${tMax}`);
  return (t, baseLr) => etaMin + ((baseLr - etaMin) * (1 + Math.cos((Math.PI * t) / tMax))) / 2;
}

/** What a scheduler needs of an optimizer: groups with a mutable lr. */
export interface HasParamGroups {
  readonly paramGroups: { lr: number; initialLr?: number }[];
}

/**
 * Applies a schedule to every parameter group, as torch's LRScheduler. Each group's base rate is
 * its `initialLr`, recorded on first use like PyTorch's 'initial_lr' (it travels with the
 * optimizer's state, so a scheduler made after a resume starts from the original rates).
 * Construction sets the rates for t = 0; step() advances t by one; at(t) jumps to t.
 */
export class LRScheduler {
  /** The current t (torch's last_epoch). */
  t = 0;

  constructor(readonly optimizer: HasParamGroups, readonly schedule: Schedule, start = 0) {
    for (const group of optimizer.paramGroups) group.initialLr ??= group.lr;
    this.at(start);
  }

  /** Advances one epoch or iteration and sets the rates. */
  step(): void {
    this.at(this.t + 1);
  }

  /** Sets the rates for step t. */
  at(t: number): void {
    this.t = t;
    for (const group of this.optimizer.paramGroups) group.lr = this.schedule(t, group.initialLr ?? group.lr);
  }

  /** The rate of each group now (torch's get_last_lr()). */
  lastLr(): number[] {
    return this.optimizer.paramGroups.map((g) => g.lr);
  }
}
