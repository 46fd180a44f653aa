// The optimizer base, as torch.optim.Optimizer: parameter groups with their own hyperparameters,
// zeroGrad, clipping by global norm, and state dicts; SGD and Adam supply the update kernel.
//
// One fused update per parameter group, no readback, no allocation per step:
// - At construction each group's parameters move into a flat arena (src/optim/arena.ts: one
//   buffer, or a few past the storage-binding limit, parameters at 256-byte-aligned offsets);
//   the module's Tensor objects stay and view it. Gradient and state arenas share the layout;
//   state arenas are allocated and zeroed on first use only.
// - step(): each .grad is copied into the gradient arena (buffer-to-buffer copies, in stream
//   order), then ONE dispatch per arena updates parameters and state in place. Hyperparameters
//   (and the scalars PyTorch derives from them in Python floats) are uniforms, so schedules never
//   compile a new pipeline.
// PyTorch semantics kept: a parameter whose .grad is null is skipped and its state does not
// advance. An arena is then updated in ranges of parameters that have gradients and share
// their state's age, one dispatch per range; a steady training loop has a single range. Parameters with
// requiresGrad false never get a gradient; to save their moments' memory, leave them out.
import { Context } from '../context.js';
import type { BufferView, Uniforms } from '../gpu/backend.js';
import { backend } from '../runtime.js';
import { Tensor } from '../tensor.js';
import { arenaView, buildArenas, ensureSlots, gatherGradients, releaseChunk, updateRanges, type Chunk, type UpdateRange } from './arena.js';
import { GradNorm } from './clip.js';

export type { Chunk, UpdateRange } from './arena.js';

/** Hyperparameters of one group: numbers, flags, or pairs such as Adam's betas. */
export type Hyperparameters = Record<string, number | boolean | readonly number[]>;

/** A parameter group: its tensors and its own hyperparameters (mutable, as param_groups[i]['lr']). */
export type ParamGroup<H extends Hyperparameters> = H & {
  readonly params: readonly Tensor[];
  /** The rate a learning-rate scheduler started from (PyTorch's 'initial_lr'). */
  initialLr?: number;
};

/** What an optimizer takes: a list of tensors, or groups each overriding some defaults. */
export type ParamsInput<H extends Hyperparameters> = readonly Tensor[] | readonly (Partial<H> & { params: readonly Tensor[] })[];

/** Options every optimizer takes besides its hyperparameters. */
export interface ArenaOptions {
  /** The largest arena in bytes; default and ceiling: the device's storage-binding limit. */
  arenaBytes?: number;
}

/** One parameter's state on the host: updates applied, and state tensors under PyTorch's names. */
export interface ParamState {
  step: number;
  tensors: Map<string, Float32Array>;
}

/**
 * The whole optimizer state on the host, as torch's optimizer.state_dict(): parameters are
 * numbered across groups in order; `state` holds only parameters that have any.
 */
export interface OptimizerStateDict {
  kind: string;
  groups: { hyperparameters: Hyperparameters; params: number[] }[];
  state: Map<number, ParamState>;
}

/** Which optimizer holds each parameter: two optimizers cannot share one. */
const owners = new WeakMap<Tensor, object>();

function isGroupList<H extends Hyperparameters>(params: ParamsInput<H>): params is readonly (Partial<H> & { params: readonly Tensor[] })[] {
  return params.length > 0 && !(params[0] instanceof Tensor);
}


type StepRedirect = (optimizer: Optimizer<Hyperparameters>) => boolean;
const stepRedirect = new Context<StepRedirect | null>(null);

/**
 * Runs `fn` with every Optimizer.step() first offered to `redirect`, which returns true when it
 * did the step itself: data-parallel training sums the devices' gradients there and steps the
 * current device's replica (src/train/data-parallel.ts).
 */
export const withStepRedirect = <T>(redirect: StepRedirect | null, fn: () => T): T => stepRedirect.run(redirect, fn);
export abstract class Optimizer<H extends Hyperparameters> {
  readonly paramGroups: ParamGroup<H>[];
  /** Updates applied to each parameter (PyTorch's state['step'] for Adam). */
  protected readonly steps: number[];
  private readonly arenas: Chunk[][];
  private readonly params: Tensor[];
  private readonly norm: GradNorm;
  /** The largest arena, as built: replicas are laid out alike. */
  private readonly arenaBytes: number;
  private gathered = false;
  private clipArmed = false;
  private disposed = false;

  protected constructor(
    /** 'SGD', 'Adam' or 'AdamW': recorded in state dicts and checked on load. */
    readonly kind: string,
    params: ParamsInput<H>,
    defaults: H,
    { arenaBytes }: ArenaOptions = {},
  ) {
    const specs = isGroupList(params) ? params : [{ params: params as readonly Tensor[] }];
    if (specs.length === 0 || specs.every((s) => s.params.length === 0)) throw new Error(`${kind}: got an empty parameter list`);
    const seen = new Set<Tensor>();
    this.paramGroups = specs.map((spec) => {
      const { params: list, ...overrides } = spec;
      for (const p of list) {
        if (!(p instanceof Tensor)) throw new TypeError(`${kind}: parameters must be Tensors`);
        if (p.dtype !== 'float32') throw new TypeError(`${kind}: can only optimize float32 tensors, got ${p}`);
        if (seen.has(p)) throw new Error(`${kind}: some parameters appear more than once (in one group or in several)`);
        if (owners.has(p)) throw new Error(`${kind}: a parameter ${p} already belongs to another optimizer; dispose that one first`);
        seen.add(p);
      }
      const group = { ...defaults, ...overrides, params: [...list] } as unknown as ParamGroup<H>;
      this.validate(group);
      return group;
    });
    this.params = this.paramGroups.flatMap((g) => [...g.params]);
    this.steps = this.params.map(() => 0);
    // Arenas are cut to the binding ceiling, so each is bound whole.
    const ceiling = backend().bindingLimit;
    this.arenaBytes = Math.min(arenaBytes ?? ceiling, ceiling);
    this.arenas = buildArenas(
      this.paramGroups.map((g) => g.params),
      this.arenaBytes,
      kind,
    );
    for (const p of this.params) owners.set(p, this);
    this.norm = new GradNorm(this.arenas.flat(), kind);
  }

  /** Checks a group's hyperparameters (at construction and at every step). */
  protected abstract validate(group: ParamGroup<H>): void;

  /** State slots a group needs now, by PyTorch's names. */
  protected abstract slotsFor(group: ParamGroup<H>): readonly string[];

  /** A number that parameters updated by one dispatch must share (their state's age). */
  protected abstract stateKey(index: number, group: ParamGroup<H>): number;

  /** Encodes the fused update of one range; `common` carries the uniforms every update shares. */
  protected abstract update(group: ParamGroup<H>, chunk: Chunk, run: UpdateRange, common: Uniforms): void;

  /** State tensors that exist for a parameter. */
  protected abstract stateSlots(index: number): readonly string[];

  /** Restores per-parameter bookkeeping from a loaded state. */
  protected abstract restore(index: number, state: ParamState | undefined): void;

  /** Records that a parameter was updated once. */
  protected advance(index: number, _group: ParamGroup<H>): void {
    this.steps[index]! += 1;
  }

  /** Every parameter, numbered across groups as in state dicts. */
  parameters(): readonly Tensor[] {
    return this.params;
  }

  /** Frees every parameter's .grad, as zero_grad(set_to_none=True). */
  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Applies one update to every parameter that has a gradient. */
  step(): void {
    // Data-parallel training may take the step over (a GAN's optimizers stepped inside its step).
    if (stepRedirect.get()?.(this)) return;
    this.checkAlive();
    this.gather();
    const common: Uniforms = { clip: this.clipArmed };
    this.paramGroups.forEach((group, g) => {
      this.validate(group);
      const slots = this.slotsFor(group);
      for (const chunk of this.arenas[g]!) {
        for (const range of updateRanges(chunk, (i) => this.stateKey(i, group))) {
          ensureSlots(chunk, slots);
          this.update(group, chunk, range, common);
          for (const i of range.indices) this.advance(i, group);
        }
      }
    });
    this.gathered = false;
    this.clipArmed = false;
  }

  /**
   * torch.nn.utils.clip_grad_norm_ over this optimizer's parameters, for the next step(): the
   * global L2 norm of all gradients (a fixed-order reduction) and the factor
   * min(maxNorm / (norm + 1e-6), 1) that the next update multiplies the gradients by, inside
   * its kernel: the .grad tensors themselves are left as they are. Call it after backward() and
   * right before step(). Returns the norm before clipping as a scalar tensor, not read back.
   */
  clipGradNorm(maxNorm: number): Tensor {
    this.checkAlive();
    if (!(maxNorm > 0)) throw new RangeError(`clipGradNorm: maxNorm must be positive, got ${maxNorm}`);
    this.gather();
    const norm = this.norm.encode(maxNorm);
    this.clipArmed = true;
    return norm;
  }

  /**
   * The same optimizer (kind, groups, hyperparameters, arena layout) over `params`, which match
   * this one's parameters one for one: a data-parallel replica's, built on the current device.
   * Its state starts empty; load this one's stateDict() into it.
   */
  replicate(params: readonly Tensor[]): Optimizer<H> {
    if (params.length !== this.params.length) throw new Error(`${this.kind}.replicate: got ${params.length} parameters for ${this.params.length}`);
    let next = 0;
    const groups = this.paramGroups.map(({ params: own, ...hyperparameters }) => ({ ...hyperparameters, params: own.map(() => params[next++]!) }));
    const Kind = this.constructor as new (p: ParamsInput<H>, o: ArenaOptions) => Optimizer<H>;
    return new Kind(groups as unknown as ParamsInput<H>, { arenaBytes: this.arenaBytes });
  }

  /**
   * The gradient arenas, every .grad copied in (as step() does first): data-parallel training
   * reads them, sums them over the replicas and writes the sum back before step().
   */
  gradientArenas(): BufferView[] {
    this.checkAlive();
    this.gather();
    return this.arenas.flat().map((chunk) => arenaView(chunk, chunk.grad));
  }

  /** Copies the state to the host (one readback per arena and state slot). */
  async stateDict(): Promise<OptimizerStateDict> {
    this.checkAlive();
    const gpu = backend();
    const state = new Map<number, ParamState>();
    for (const chunk of this.arenas.flat()) {
      const host = new Map<string, Float32Array>();
      for (const [name, buffer] of chunk.slots) host.set(name, new Float32Array(await gpu.read(arenaView(chunk, buffer))));
      for (const s of chunk.segments) {
        const names = this.stateSlots(s.index);
        if (names.length === 0 && this.steps[s.index] === 0) continue;
        const tensors = new Map<string, Float32Array>();
        for (const name of names) tensors.set(name, host.get(name)!.slice(s.offset, s.offset + s.size));
        state.set(s.index, { step: this.steps[s.index]!, tensors });
      }
    }
    let next = 0;
    const groups = this.paramGroups.map((group) => {
      const { params, ...hyperparameters } = group;
      return { hyperparameters: { ...hyperparameters } as Hyperparameters, params: params.map(() => next++) };
    });
    return { kind: this.kind, groups, state };
  }

  /**
   * Every way `dict` does not fit this optimizer (kind, groups, unknown parameters, state
   * tensors of the wrong size), one line each; empty when it loads.
   */
  checkStateDict(dict: OptimizerStateDict, describe: (index: number) => string = (i) => `parameter ${i}`): string[] {
    const problems: string[] = [];
    if (dict.kind !== this.kind) problems.push(`  optimizer: the state is ${dict.kind}'s, this optimizer is ${this.kind}`);
    if (dict.groups.length !== this.paramGroups.length) {
      problems.push(`  optimizer: the state has ${dict.groups.length} parameter group(s), this optimizer ${this.paramGroups.length}`);
    } else {
      let first = 0;
      dict.groups.forEach((g, i) => {
        const own = this.paramGroups[i]!.params.length;
        if (g.params.length !== own) problems.push(`  optimizer group ${i}: the state has ${g.params.length} parameters, this optimizer ${own}`);
        else if (g.params.some((p, k) => p !== first + k)) problems.push(`  optimizer group ${i}: the state's group holds other parameters than this optimizer's`);
        first += own;
      });
    }
    for (const [index, s] of dict.state) {
      const param = this.params[index];
      if (!param) {
        problems.push(`  optimizer state for ${describe(index)}: no such parameter in this optimizer`);
        continue;
      }
      for (const [name, data] of s.tensors) {
        if (data.length !== param.size) problems.push(`  optimizer state ${describe(index)}.${name}: ${data.length} values, the parameter has ${param.size}`);
      }
      if (!Number.isInteger(s.step) || s.step < 0) problems.push(`  optimizer state ${describe(index)}.step: ${s.step} is not a step count`);
    }
    return problems;
  }

  /**
   * Restores a state from stateDict() (or a checkpoint): state tensors, step counts and each
   * group's hyperparameters, as torch's load_state_dict. Parameters absent from `dict.state`
   * start afresh. Throws with every problem listed when it does not fit.
   */
  loadStateDict(dict: OptimizerStateDict): void {
    this.checkAlive();
    const problems = this.checkStateDict(dict);
    if (problems.length > 0) throw new Error(`optimizer state does not match (${problems.length} problem${problems.length > 1 ? 's' : ''}):\n${problems.join('\n')}`);
    dict.groups.forEach((g, i) => Object.assign(this.paramGroups[i]!, g.hyperparameters));
    for (const group of this.paramGroups) this.validate(group);
    const gpu = backend();
    this.paramGroups.forEach((group, g) => {
      for (const chunk of this.arenas[g]!) {
        const names = new Set<string>(this.slotsFor(group));
        for (const s of chunk.segments) for (const name of dict.state.get(s.index)?.tensors.keys() ?? []) names.add(name);
        ensureSlots(chunk, names);
        for (const [name, buffer] of chunk.slots) {
          const host = new Float32Array(chunk.elements);
          for (const s of chunk.segments) {
            const data = dict.state.get(s.index)?.tensors.get(name);
            if (data) host.set(data, s.offset);
          }
          gpu.write(arenaView(chunk, buffer), host);
        }
        for (const s of chunk.segments) {
          const state = dict.state.get(s.index);
          this.steps[s.index] = state?.step ?? 0;
          this.restore(s.index, state);
        }
      }
    });
  }

  /** Releases the arenas; parameters keep their data (their arena lives while they do). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const chunk of this.arenas.flat()) releaseChunk(chunk);
    this.norm.dispose();
    for (const p of this.params) owners.delete(p);
  }

  /** The bindings every update kernel shares: parameters, gradients, the clip factor. */
  protected bindings(chunk: Chunk): Record<string, BufferView> {
    return { param: arenaView(chunk, chunk.storage.buffer), grad: arenaView(chunk, chunk.grad), clip_coef: this.norm.factorView };
  }

  /** A state arena of the chunk, for binding. */
  protected slotView(chunk: Chunk, name: string): BufferView {
    const buffer = chunk.slots.get(name);
    if (!buffer) throw new Error(`${this.kind}: state slot '${name}' was not allocated`);
    return arenaView(chunk, buffer);
  }

  private gather(): void {
    if (this.gathered) return;
    for (const chunk of this.arenas.flat()) gatherGradients(chunk, this.kind);
    this.gathered = true;
  }

  private checkAlive(): void {
    if (this.disposed) throw new Error(`${this.kind}: the optimizer was disposed`);
  }
}

/** Throws unless v is a finite number ≥ 0 (or in [0, 1) for 'unit'). */
export function checkHyper(kind: string, name: string, v: unknown, range: 'nonnegative' | 'unit' = 'nonnegative'): void {
  const ok = typeof v === 'number' && Number.isFinite(v) && (range === 'unit' ? v >= 0 && v < 1 : v >= 0);
  if (!ok) throw new RangeError(`${kind}: invalid ${name} ${String(v)}${range === 'unit' ? ' (expected 0 ≤ value < 1)' : ' (expected a finite value ≥ 0)'}`);
}
