// The base of every layer and model, as torch.nn.Module: parameters, buffers and submodules
// registered under names that join with dots into PyTorch's state-dict keys
// (`layer1.0.conv1.weight`), train/eval mode, and a state dict of host arrays.
import { backend } from '../runtime.js';
import { Tensor } from '../tensor.js';

export type StateDict = Map<string, { shape: number[]; data: Float32Array | Int32Array }>;

export class Module {
  training = true;
  private readonly params = new Map<string, Tensor | null>();
  private readonly buffers = new Map<string, Tensor>();
  private readonly children = new Map<string, Module>();

  /** Registers a trainable tensor; it is kept alive (outside scopes) and requires grad. */
  protected registerParameter(name: string, t: Tensor | null): Tensor | null {
    if (t) t.keep().requiresGrad_(true);
    this.params.set(name, t);
    return t;
  }

  /** Registers state that is saved but not trained (running_mean, num_batches_tracked). */
  protected registerBuffer(name: string, t: Tensor): Tensor {
    t.keep();
    this.buffers.set(name, t);
    return t;
  }

  protected registerModule<M extends Module>(name: string, m: M): M {
    this.children.set(name, m);
    return m;
  }

  /** The computation of a layer or model; every subclass that is called overrides it. */
  forward(x: Tensor): Tensor {
    throw new Error(`${this.constructor.name} has no forward() (called with [${x.shape.join(', ')}])`);
  }

  /** Direct submodules, in registration order. */
  namedChildren(): [string, Module][] {
    return [...this.children];
  }

  /** Every module below this one (itself first, under ''), with dotted names. */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [name, child] of this.children) out.push(...child.namedModules(prefix ? `${prefix}.${name}` : name));
    return out;
  }

  namedParameters(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [path, m] of this.namedModules()) {
      for (const [name, t] of m.params) if (t) out.push([path ? `${path}.${name}` : name, t]);
    }
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  namedBuffers(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [path, m] of this.namedModules()) {
      for (const [name, t] of m.buffers) out.push([path ? `${path}.${name}` : name, t]);
    }
    return out;
  }

  /** Parameters then buffers, per module in registration order, as PyTorch's state_dict(). */
  namedState(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [path, m] of this.namedModules()) {
      const key = (name: string) => (path ? `${path}.${name}` : name);
      for (const [name, t] of m.params) if (t) out.push([key(name), t]);
      for (const [name, t] of m.buffers) out.push([key(name), t]);
    }
    return out;
  }

  /** Copies every parameter and buffer to the host. */
  async stateDict(): Promise<StateDict> {
    const out: StateDict = new Map();
    for (const [name, t] of this.namedState()) out.set(name, { shape: [...t.shape], data: await t.toArray() });
    return out;
  }

  /**
   * What loading `state` would find wrong, one line per tensor: shape or dtype mismatches always,
   * and with strict, missing and unexpected keys. Nothing is written.
   */
  checkStateDict(state: StateDict, strict = true): { problems: string[]; missing: string[]; unexpected: string[] } {
    const own = new Map(this.namedState());
    const missing = [...own.keys()].filter((k) => !state.has(k));
    const unexpected = [...state.keys()].filter((k) => !own.has(k));
    const problems: string[] = [];
    for (const [name, t] of own) {
      const entry = state.get(name);
      if (!entry) continue;
      if (entry.shape.join() !== t.shape.join()) problems.push(`  ${name}: checkpoint has [${entry.shape.join(', ')}], model has [${t.shape.join(', ')}]`);
      else if ((entry.data instanceof Int32Array) !== (t.dtype === 'int32')) problems.push(`  ${name}: checkpoint is ${entry.data instanceof Int32Array ? 'int32' : 'float32'}, model is ${t.dtype}`);
    }
    if (strict) {
      for (const k of missing) problems.push(`  ${k}: missing from the checkpoint`);
      for (const k of unexpected) problems.push(`  ${k}: in the checkpoint but not in the model`);
    }
    return { problems, missing, unexpected };
  }

  /**
   * Writes a state dict into this module's tensors. Every missing, unexpected or misshapen key is
   * listed in one error; with strict = false, missing and unexpected keys are allowed (a backbone
   * without its head), shape mismatches never are.
   */
  loadStateDict(state: StateDict, { strict = true }: { strict?: boolean } = {}): { missing: string[]; unexpected: string[] } {
    const { problems, missing, unexpected } = this.checkStateDict(state, strict);
    if (problems.length > 0) throw new Error(`state dict does not match the model (${problems.length} problem${problems.length > 1 ? 's' : ''}):\n${problems.join('\n')}`);
    for (const [name, t] of this.namedState()) {
      const entry = state.get(name);
      if (entry) backend().write(t.view, entry.data);
    }
    return { missing, unexpected };
  }

  /** Sets training mode here and below (batch norm statistics, dropout). */
  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Frees every parameter's .grad (PyTorch's zero_grad(set_to_none=True)). */
  zeroGrad(): void {
    for (const p of this.parameters()) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Frees every parameter and buffer. */
  dispose(): void {
    for (const [, t] of this.namedState()) t.dispose();
  }
}
