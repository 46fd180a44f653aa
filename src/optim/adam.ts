// torch.optim.Adam and AdamW, one fused dispatch per parameter group (kernels/optim.wgsl,
// adam_step). With t the parameter's step count after this update:
//   Adam:  g = g + λ·p                       (coupled weight decay)
//   AdamW: p = p·(1 − lr·λ)                  (decoupled weight decay)
//   m = β₁·m + (1 − β₁)·g;  v = β₂·v + (1 − β₂)·g²
//   p = p − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)
// The bias corrections are computed in float64 on the host, as PyTorch computes them in Python
// floats, and passed as f32 uniforms. (PyTorch updates m with lerp, which rounds differently
// from the textbook formula in the last bit; the documented formula is what runs here.)
import type { Uniforms } from '../gpu/backend.js';
import { launch } from '../gpu/launch.js';
import { runGrid } from './arena.js';
import type { Tensor } from '../tensor.js';
import { checkHyper, Optimizer, type ArenaOptions, type Chunk, type ParamGroup, type ParamState, type ParamsInput, type UpdateRange } from './optimizer.js';

export interface AdamOptions extends ArenaOptions {
  lr?: number;
  betas?: readonly [number, number];
  eps?: number;
  weightDecay?: number;
}

export type AdamHyperparameters = { lr: number; betas: readonly [number, number]; eps: number; weightDecay: number };

const SLOTS = ['exp_avg', 'exp_avg_sq'] as const;

/** Adam's update with either weight decay; Adam and AdamW below only choose which. */
abstract class AdamFamily extends Optimizer<AdamHyperparameters> {
  protected constructor(kind: 'Adam' | 'AdamW', private readonly decoupled: boolean, params: ParamsInput<AdamHyperparameters> | readonly Tensor[], options: AdamOptions, defaultDecay: number) {
    const { lr = 1e-3, betas = [0.9, 0.999], eps = 1e-8, weightDecay = defaultDecay, ...arena } = options;
    super(kind, params, { lr, betas: [betas[0], betas[1]], eps, weightDecay }, arena);
  }

  protected validate(group: ParamGroup<AdamHyperparameters>): void {
    const kind = this.kind;
    checkHyper(kind, 'lr', group.lr);
    checkHyper(kind, 'eps', group.eps);
    checkHyper(kind, 'weightDecay', group.weightDecay);
    if (!Array.isArray(group.betas) || group.betas.length !== 2) throw new RangeError(`${kind}: betas must be a pair`);
    checkHyper(kind, 'betas[0]', group.betas[0], 'unit');
    checkHyper(kind, 'betas[1]', group.betas[1], 'unit');
  }

  protected slotsFor(): readonly string[] {
    return SLOTS;
  }

  protected stateKey(index: number): number {
    return this.steps[index]!;
  }

  protected stateSlots(index: number): readonly string[] {
    return this.steps[index]! > 0 ? SLOTS : [];
  }

  protected restore(_index: number, _state: ParamState | undefined): void {}

  protected update(group: ParamGroup<AdamHyperparameters>, chunk: Chunk, run: UpdateRange, common: Uniforms): void {
    const [beta1, beta2] = group.betas;
    const t = run.key + 1;
    const uniforms: Uniforms = {
      ...common,
      start: run.start,
      count: run.count,
      lr: group.lr,
      weight_decay: this.decoupled ? 0 : group.weightDecay,
      decay: this.decoupled ? 1 - group.lr * group.weightDecay : 1,
      beta1,
      beta2,
      one_minus_beta1: 1 - beta1,
      one_minus_beta2: 1 - beta2,
      eps: group.eps,
      step_size: group.lr / (1 - beta1 ** t),
      bias_correction2_sqrt: Math.sqrt(1 - beta2 ** t),
    };
    const bindings = { ...this.bindings(chunk), exp_avg: this.slotView(chunk, 'exp_avg'), exp_avg_sq: this.slotView(chunk, 'exp_avg_sq') };
    launch('optim', 'adam_step', bindings, uniforms, runGrid(chunk, run, ['param', 'grad', 'exp_avg', 'exp_avg_sq']));
  }
}

/** torch.optim.Adam: weight decay added to the gradient (an L2 penalty). */
export class Adam extends AdamFamily {
  constructor(params: ParamsInput<AdamHyperparameters> | readonly Tensor[], options: AdamOptions = {}) {
    super('Adam', false, params, options, 0);
  }
}

/** torch.optim.AdamW: decoupled weight decay, PyTorch's default λ = 0.01. */
export class AdamW extends AdamFamily {
  constructor(params: ParamsInput<AdamHyperparameters> | readonly Tensor[], options: AdamOptions = {}) {
    super('AdamW', true, params, options, 1e-2);
  }
}
