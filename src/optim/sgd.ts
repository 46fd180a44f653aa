// torch.optim.SGD: momentum, dampening, Nesterov and coupled weight decay, one fused dispatch
// per parameter group (kernels/optim.wgsl, sgd_step).
//   d = g + λ·p
//   b = d on the first step with momentum, else b = μ·b + (1 − τ)·d
//   d = d + μ·b with Nesterov, else d = b   (no buffer at all when μ = 0)
//   p = p − lr·d
import type { Uniforms } from '../gpu/backend.js';
import { launch } from '../gpu/launch.js';
import { runGrid } from './arena.js';
import type { Tensor } from '../tensor.js';
import { checkHyper, Optimizer, type ArenaOptions, type Chunk, type ParamGroup, type ParamState, type ParamsInput, type UpdateRange } from './optimizer.js';

export interface SGDOptions extends ArenaOptions {
  /** Learning rate (PyTorch's default 1e-3). */
  lr?: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

export type SGDHyperparameters = { lr: number; momentum: number; dampening: number; weightDecay: number; nesterov: boolean };

const MOMENTUM = 'momentum_buffer';

export class SGD extends Optimizer<SGDHyperparameters> {
  /** Whether each parameter's momentum buffer holds a value (PyTorch's `buf is not None`). */
  private readonly bufferReady: boolean[];

  constructor(params: ParamsInput<SGDHyperparameters> | readonly Tensor[], { lr = 1e-3, momentum = 0, dampening = 0, weightDecay = 0, nesterov = false, ...arena }: SGDOptions = {}) {
    super('SGD', params, { lr, momentum, dampening, weightDecay, nesterov }, arena);
    this.bufferReady = this.parameters().map(() => false);
  }

  protected validate(group: ParamGroup<SGDHyperparameters>): void {
    checkHyper('SGD', 'lr', group.lr);
    checkHyper('SGD', 'momentum', group.momentum);
    checkHyper('SGD', 'dampening', group.dampening);
    checkHyper('SGD', 'weightDecay', group.weightDecay);
    if (group.nesterov && (group.momentum <= 0 || group.dampening !== 0)) {
      throw new RangeError('SGD: Nesterov momentum requires a momentum > 0 and zero dampening');
    }
  }

  protected slotsFor(group: ParamGroup<SGDHyperparameters>): readonly string[] {
    return group.momentum !== 0 ? [MOMENTUM] : [];
  }

  protected stateKey(index: number, group: ParamGroup<SGDHyperparameters>): number {
    return group.momentum !== 0 && this.bufferReady[index] ? 1 : 0;
  }

  protected stateSlots(index: number): readonly string[] {
    return this.bufferReady[index] ? [MOMENTUM] : [];
  }

  protected override advance(index: number, group: ParamGroup<SGDHyperparameters>): void {
    super.advance(index, group);
    if (group.momentum !== 0) this.bufferReady[index] = true;
  }

  protected restore(index: number, state: ParamState | undefined): void {
    this.bufferReady[index] = state?.tensors.has(MOMENTUM) ?? false;
  }

  protected update(group: ParamGroup<SGDHyperparameters>, chunk: Chunk, run: UpdateRange, common: Uniforms): void {
    const uniforms: Uniforms = { ...common, start: run.start, count: run.count, lr: group.lr, weight_decay: group.weightDecay };
    if (group.momentum === 0) {
      launch('optim', 'sgd_step_plain', this.bindings(chunk), uniforms, runGrid(chunk, run, ['param', 'grad']));
      return;
    }
    Object.assign(uniforms, {
      momentum: group.momentum,
      one_minus_dampening: 1 - group.dampening,
      nesterov: group.nesterov,
      first: run.key === 0,
    });
    launch('optim', 'sgd_step', { ...this.bindings(chunk), momentum_buf: this.slotView(chunk, MOMENTUM) }, uniforms, runGrid(chunk, run, ['param', 'grad', 'momentum_buf']));
  }
}
