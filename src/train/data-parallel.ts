// Data-parallel training (--devices): one Dawn device per replica, each running the recipe's own
// step on its share of the global batch. The model's tensors are pointed at a replica's memory
// for that replica's step (Tensor.swapStorage), so a command's step runs unchanged on every
// device. After backward each device's gradient arenas are read back, summed on the host in a
// fixed order (device 0, 1, …; WebGPU devices cannot see each other's buffers), written back to
// every device, and every replica's optimizer applies the same update, so replicas never drift.
// Batch norm uses each device's own batch statistics (PyTorch's DataParallel), or with --syncBN
// the global batch's (torch.nn.SyncBatchNorm): each device's step is then held back from its
// queue (Backend.hold) and released part by part, the host combining the devices' partial
// statistics between the parts. Evaluation, checkpoints and running statistics are device 0's.
import { tensor, zeros } from '../creation.js';
import { Backend, type BufferView } from '../gpu/backend.js';
import { isAdapter, listAdapters } from '../gpu/device.js';
import type { Module } from '../nn/module.js';
import { withBatchNormSync, type BatchNormSync } from '../ops/batchnorm.js';
import { Optimizer, withStepRedirect, type Hyperparameters } from '../optim/optimizer.js';
import { backend, onDevice } from '../runtime.js';
import { scope } from '../scope.js';
import { Tensor } from '../tensor.js';
import type { LoopBatch, LoopOptimizer } from './loop.js';
import type { MetricKind, StepMetrics } from './trainer.js';

/** What --devices asks for: a count, every adapter, or adapters by (part of) their names. */
export type DeviceRequest = { count: number } | { all: true } | { names: string[] };

/** Parses --devices N|all|<name>,<name>…; a string says what is wrong. */
export function parseDevices(text: string): DeviceRequest | string {
  const t = text.trim();
  if (t === 'all') return { all: true };
  if (/^[+-]?\d+$/.test(t)) {
    const count = Number(t);
    return count >= 1 && count <= 64 ? { count } : `--devices ${text}: a count must be 1 to 64`;
  }
  const names = t.split(',').map((n) => n.trim());
  if (t === '' || names.some((n) => n === '')) return `--devices '${text}': expected a count (2), all, or adapter names separated by commas (NVIDIA,AMD)`;
  return { names };
}

type AnyOptimizer = Optimizer<Hyperparameters>;

/** The adapters extra devices open on, device 0 (the one `init()` opened) aside; throws when the request cannot be met. */
async function extraAdapters(request: DeviceRequest, main: Backend, text: string): Promise<string[]> {
  const adapters = await listAdapters();
  const own = adapters.findIndex((a) => isAdapter(a, main.adapterId));
  if (own < 0) adapters.unshift(main.adapterName);
  const first = adapters[Math.max(own, 0)]!;
  const others = adapters.filter((_, i) => i !== Math.max(own, 0));
  const seen = `this machine's adapters: ${adapters.map((a) => `'${a}'`).join(', ')}`;
  // Dawn opens an adapter by name: adapters that share one cannot be told apart.
  if (new Set(adapters).size < adapters.length) process.stderr.write(`dawnet: --devices: adapters share a name (${seen}); Dawn opens the first of each name, so devices may share one GPU\n`);
  if ('all' in request) return others;
  if ('count' in request) {
    // One adapter: several devices on it (useful for testing; they share its compute).
    if (adapters.length === 1) return Array<string>(request.count - 1).fill(adapters[0]!);
    if (request.count > adapters.length) throw new Error(`--devices ${text}: only ${adapters.length} adapters (${seen}); ask for at most ${adapters.length}, or name adapters to open several devices on one`);
    return others.slice(0, request.count - 1);
  }
  const pick = (name: string): string => {
    const found = adapters.find((a) => a.toLowerCase().includes(name.toLowerCase()));
    if (!found) throw new Error(`--devices: no adapter named '${name}' (${seen})`);
    return found;
  };
  const [head, ...rest] = request.names.map(pick);
  if (head !== first) throw new Error(`--devices: device 0 is '${first}' (the adapter dawnet opened; DAWNET_ADAPTER chooses it), not '${head}': list it first, or set DAWNET_ADAPTER=${request.names[0]}`);
  return rest;
}

/** One replica beyond device 0: its device, its memory for each of the model's tensors, its optimizers. */
interface Replica {
  device: Backend;
  shadows: Tensor[];
  optimizers: AnyOptimizer[];
}

/** A step's scalars as numbers, each the weighted mean over the devices. */
export type HostMetrics = Record<string, { kind: MetricKind; value: number }>;

/** Sample boundaries of each device's share: the first `size mod K` devices take one more. */
export function shardBounds(size: number, devices: number): number[] {
  return Array.from({ length: devices + 1 }, (_, k) => Math.ceil((k * size) / devices));
}

interface HostBatch {
  tensors: Map<Tensor, Float32Array | Int32Array>;
}

export class DataParallel {
  /**
   * The last step's costs that one device does not have, in ms: `share`, reading the batch back
   * and uploading each device's share; `reduce`, from every device having finished its backward
   * to the summed gradients written back to all (its parts: `read`, the host `sum`, `write`). For the bench, which
   * sets `measureOverhead`: the reduce then waits for every device first, rather than reading
   * device 0's gradients while the others still compute.
   */
  readonly overheadMs = { share: 0, reduce: 0, read: 0, sum: 0, write: 0 };
  measureOverhead = false;
  private readonly scratch: Float32Array[] = [];
  private warned = false;

  private constructor(
    private readonly main: Backend,
    private readonly tensors: Tensor[],
    private readonly optimizers: AnyOptimizer[],
    private readonly replicas: Replica[],
    /** --syncBN: training batch norms normalise with the global batch's statistics. */
    readonly syncBN: boolean,
    /** The step steps the optimizers itself (a GAN): each step() sums the devices' gradients first. */
    private readonly inStep: boolean,
  ) {}

  /** Devices in all, device 0 included. */
  get size(): number {
    return this.replicas.length + 1;
  }

  /** The adapter name of each device, device 0 first. */
  get adapters(): string[] {
    return [this.main, ...this.replicas.map((r) => r.device)].map((d) => d.adapterName);
  }

  /**
   * Opens the devices --devices asks for beyond the current one and makes each a replica of
   * `modules` and `optimizers` as they are now (after any --resume). Null for one device.
   * `inStep`: the step calls the optimizers' step() itself, between its forwards (a GAN).
   */
  static async open(text: string, modules: readonly Module[], optimizers: readonly LoopOptimizer[], { syncBN = false, inStep = false } = {}): Promise<DataParallel | null> {
    const request = parseDevices(text);
    if (typeof request === 'string') throw new Error(request);
    const main = backend();
    const names = await extraAdapters(request, main, text);
    if (names.length === 0) return null;
    const opts = optimizers.map((o) => {
      if (!(o instanceof Optimizer)) throw new Error('--devices: data-parallel training needs dawnet optimizers (SGD, Adam, AdamW)');
      return o as AnyOptimizer;
    });
    const tensors = [...new Set([...modules.flatMap((m) => m.namedState().map(([, t]) => t)), ...opts.flatMap((o) => o.parameters())])];
    const host = await Promise.all(tensors.map((t) => t.toArray()));
    const states = await Promise.all(opts.map((o) => o.stateDict()));
    const replicas: Replica[] = [];
    try {
      for (const name of names) {
        const device = await Backend.open({ adapter: name, announce: false });
        const replica: Replica = { device, shadows: [], optimizers: [] };
        replicas.push(replica);
        onDevice(device, () => {
          replica.shadows = tensors.map((t, i) => tensor(host[i]!, t.shape, { dtype: t.dtype }).keep());
          const shadowOf = new Map(tensors.map((t, i) => [t, replica.shadows[i]!]));
          replica.optimizers = opts.map((o, i) => {
            const copy = o.replicate(o.parameters().map((p) => shadowOf.get(p)!));
            copy.loadStateDict(states[i]!);
            return copy;
          });
        });
      }
    } catch (err) {
      for (const r of replicas) r.device.destroy();
      throw err;
    }
    return new DataParallel(main, tensors, opts, replicas, syncBN, inStep);
  }

  /**
   * One training step over the devices: `batch` (on device 0) is cut into shares along its
   * first dimension, each device runs `step` on its share, the gradients are summed weighted by
   * each share's part of the batch (each device's loss is a mean over its share), and every
   * optimizer steps on every device. Returns the step's scalars, weighted the same way.
   */
  async step<B extends LoopBatch>(batch: B, step: (b: B) => StepMetrics): Promise<HostMetrics> {
    const started = performance.now();
    const devices = [this.main, ...this.replicas.map((r) => r.device)];
    const K = devices.length;
    // A batch (or one of its nested batches) with fewer samples than devices runs whole on device 0.
    const whole = batchSizes(batch).some((n) => n < K);
    if (whole && this.inStep) throw new Error(`--devices ${K}: a batch of ${batchSizes(batch).join(' + ')} samples has no share for every device; use a batch size of at least ${K}`);
    const host: HostBatch = { tensors: new Map() };
    if (!whole) await readTensors(batch, host);
    this.overheadMs.share = performance.now() - started;
    const weights: number[] = [];
    const metrics: StepMetrics[] = [];
    // --syncBN, or optimizers stepped inside the step: every device's step is held back and
    // released in parts, exchanging between them.
    const syncs = (this.syncBN || this.inStep) && !whole ? devices.map(() => new DeviceSync()) : null;
    const released: Promise<ArrayBuffer[] | null>[] = [];
    for (let k = 0; k < K; k++) {
      const device = devices[k]!;
      const replica = this.replicas[k - 1];
      if (whole && k > 0) {
        // No share for this device: zero gradients, so that its optimizers update the same
        // parameters as device 0's.
        weights[k] = 0;
        onDevice(device, () => replica!.shadows.forEach((s, i) => (s.grad = this.tensors[i]!.grad ? zeros(s.shape).keep() : null)));
        continue;
      }
      const uploading = performance.now();
      const { share, fractions } = whole ? { share: batch, fractions: [1] } : onDevice(device, () => shareOf(batch, host, k, K));
      this.overheadMs.share += performance.now() - uploading;
      // Each device's loss is a mean over its share: its gradient counts by its part of the batch.
      weights[k] = fractions[0]!;
      if (fractions.some((f) => Math.abs(f - fractions[0]!) > 1e-12) && !this.warned) {
        this.warned = true;
        process.stderr.write(`dawnet: --devices: this batch's parts (${batchSizes(batch).join(', ')} samples) do not split alike over ${K} devices; gradients are weighted by the first part's shares, exact only for losses over it\n`);
      }
      const kept = replica ? this.enter(replica) : [];
      if (syncs) device.hold();
      try {
        const redirect = this.inStep ? (o: AnyOptimizer) => this.stepInside(o, k, syncs![k]!) : null;
        metrics[k] = onDevice(device, () =>
          withStepRedirect(redirect, () =>
            withBatchNormSync(this.syncBN ? (syncs?.[k] ?? null) : null, () =>
              scope(() => {
                const m = step(share);
                for (const { value } of Object.values(m)) value.keep();
                return m;
              }),
            ),
          ),
        );
      } catch (err) {
        if (syncs) devices.slice(0, k + 1).forEach((d) => d.dropHeld());
        throw err;
      } finally {
        if (replica) this.leave(replica, kept);
        if (share !== batch) share.dispose();
      }
      // Submitted now (up to its first exchange), so this device computes while the next one's step is encoded.
      if (syncs) released[k] = device.advance();
      else device.flush();
    }
    if (syncs) await exchange(devices, syncs, released, weights);
    if (this.inStep) return this.readMetrics(metrics, weights);
    if (this.measureOverhead) await Promise.all(devices.map((d) => d.sync()));
    const reducing = performance.now();
    const [values] = await Promise.all([this.readMetrics(metrics, weights), this.reduce(devices, weights)]);
    this.overheadMs.reduce = performance.now() - reducing;
    for (let k = 0; k < devices.length; k++) {
      const device = devices[k]!;
      onDevice(device, () => {
        const opts = k === 0 ? this.optimizers : this.replicas[k - 1]!.optimizers;
        opts.forEach((o, i) => {
          if (k > 0) syncHyperparameters(this.optimizers[i]!, o);
          o.step();
          o.zeroGrad();
        });
      });
    }
    return values;
  }

  /**
   * Throws unless every replica's parameters hold the bits of device 0's (one readback of each):
   * the loop checks it after each epoch, so that a replica that drifted cannot go unnoticed.
   */
  async checkInSync(): Promise<void> {
    const params = this.optimizers.flatMap((o) => o.parameters());
    const own = await Promise.all(params.map((p) => p.toArray()));
    for (const [r, replica] of this.replicas.entries()) {
      const theirs = await Promise.all(replica.optimizers.flatMap((o) => o.parameters()).map((p) => p.toArray()));
      own.forEach((data, i) => {
        const other = theirs[i]!;
        const at = data.findIndex((v, j) => !Object.is(v, other[j]));
        if (at >= 0) throw new Error(`data-parallel: device ${r + 1}'s parameter ${i} differs from device 0's at element ${at} (${other[at]} vs ${data[at]}); the replicas drifted`);
      });
    }
  }

  /** Closes the replicas' devices; device 0 and its tensors stay. */
  close(): void {
    for (const r of this.replicas) {
      for (const o of r.optimizers) o.dispose();
      for (const s of r.shadows) s.dispose();
      r.device.destroy();
    }
    this.replicas.length = 0;
  }

  /**
   * Optimizer.step() called inside device k's step (inStep): the optimizer's gradients, summed
   * over the devices at an exchange point, then device k's own optimizer's update. Returns
   * whether it did the step (device 0's optimizer steps itself once its arenas hold the sum).
   */
  private stepInside(o: AnyOptimizer, k: number, sync: DeviceSync): boolean {
    const i = this.optimizers.indexOf(o);
    // A replica's own step (below), or an optimizer the loop does not replicate.
    if (i < 0) return false;
    const own = k === 0 ? o : this.replicas[k - 1]!.optimizers[i]!;
    if (k > 0) syncHyperparameters(o, own);
    if (k === 0) {
      sync.reduce(o.gradientArenas());
      return false;
    }
    // The model's tensors point at this replica's memory and hold its gradients: hand both back
    // to the replica's own tensors for its optimizer's step, then point them here again.
    const mains = o.parameters();
    const shadows = own.parameters();
    const swap = () => mains.forEach((t, j) => t.swapStorage(shadows[j]!));
    swap();
    mains.forEach((t, j) => (shadows[j]!.grad = t.grad));
    try {
      sync.reduce(own.gradientArenas());
      own.step();
    } finally {
      for (const s of shadows) s.grad = null;
      swap();
    }
    return true;
  }

  /** Points every model tensor at the replica's memory, holding device 0's gradients aside; returns them. */
  private enter(replica: Replica): (Tensor | null)[] {
    const kept = this.tensors.map((t) => t.grad);
    this.tensors.forEach((t, i) => {
      t.grad = null;
      t.swapStorage(replica.shadows[i]!);
    });
    return kept;
  }

  /** Points the model's tensors back at device 0; the replica's gradients go to its own optimizers' parameters. */
  private leave(replica: Replica, kept: (Tensor | null)[]): void {
    this.tensors.forEach((t, i) => {
      const shadow = replica.shadows[i]!;
      t.swapStorage(shadow);
      shadow.grad = t.grad;
      t.grad = kept[i]!;
    });
  }

  /** Reads every device's gradient arenas, sums them in device order with the shares' weights, writes the sum back to each. */
  private async reduce(devices: Backend[], weights: number[]): Promise<void> {
    const arenas = devices.map((device, k) =>
      onDevice(device, () => (k === 0 ? this.optimizers : this.replicas[k - 1]!.optimizers).flatMap((o) => o.gradientArenas())),
    );
    checkArenaLayouts(arenas);
    let t = performance.now();
    const read = await Promise.all(arenas.map((views, k) => Promise.all(views.map((v) => devices[k]!.read(v)))));
    this.overheadMs.read = performance.now() - t;
    this.overheadMs.sum = this.overheadMs.write = 0;
    arenas[0]!.forEach((view, a) => {
      t = performance.now();
      // The host buffer of each arena is made once and reused every step.
      const sum = (this.scratch[a] ??= new Float32Array(view.size / 4));
      const used = weights.flatMap((w, k) => (w === 0 ? [] : [k]));
      weightedSum(sum, used.map((k) => new Float32Array(read[k]![a]!)), used.map((k) => weights[k]!));
      this.overheadMs.sum += performance.now() - t;
      t = performance.now();
      devices.forEach((device, k) => device.write(arenas[k]![a]!, sum));
      this.overheadMs.write += performance.now() - t;
    });
  }

  private async readMetrics(metrics: StepMetrics[], weights: number[]): Promise<HostMetrics> {
    const out: HostMetrics = {};
    for (let k = 0; k < metrics.length; k++) {
      const m = metrics[k];
      if (!m) continue;
      for (const [name, { kind, value }] of Object.entries(m)) {
        const v = (await value.toArray())[0]!;
        value.dispose();
        const entry = (out[name] ??= { kind, value: 0 });
        entry.value += weights[k]! * v;
      }
    }
    return out;
  }
}

/** What one batch norm handed over at an exchange point on one device (see BatchNormSync). */
interface SyncPoint {
  kind: 'statistics' | 'gradients' | 'reduce';
  /** Values per channel on this device (N·H·W of its share). */
  count: number;
  /** Where the combined values go. */
  targets: BufferView[];
}

/** One device's side of --syncBN in one step: the exchange points its batch norms met, in order. */
class DeviceSync implements BatchNormSync {
  readonly points: SyncPoint[] = [];

  statistics(mean: Tensor, m2: Tensor, count: number): Tensor {
    const global = Tensor.empty([2 * mean.size + 1]);
    backend().point([mean.view, m2.view]);
    this.points.push({ kind: 'statistics', count, targets: [global.view] });
    return global;
  }

  /** An optimizer's gradient arenas, to be replaced by their sum over the devices weighted by the shares. */
  reduce(arenas: BufferView[]): void {
    backend().point(arenas);
    this.points.push({ kind: 'reduce', count: 0, targets: arenas });
  }

  gradients(sumDyXhat: Tensor, sumDy: Tensor, count: number): [Tensor, Tensor] {
    const global: [Tensor, Tensor] = [Tensor.empty(sumDyXhat.shape), Tensor.empty(sumDy.shape)];
    backend().point([sumDyXhat.view, sumDy.view]);
    this.points.push({ kind: 'gradients', count, targets: global.map((t) => t.view) });
    return global;
  }
}

/**
 * Releases the devices' held steps point by point: at each, every device's partial sums are
 * combined on the host in float64 in device order and written back to every device before
 * the work after the point is queued. Statistics combine by Chan's rule (mean, M2 and count of
 * the union); gradient sums as the loss does: device k's Σdy comes from a mean over its share,
 * which the parameter reduce weighs by w_k, so the global sum is S = Σ_j w_j·Σdy_j and device k
 * gets S·(count_k / count)/w_k, making its bn_backward_input's Σ/count_k equal S/(w_k·count) —
 * the gradient of Σ_j w_j·loss_j with respect to its inputs, divided by the weight the reduce
 * will multiply it by (torch.nn.SyncBatchNorm's all-reduce, with unequal shares).
 */
async function exchange(devices: Backend[], syncs: DeviceSync[], released: Promise<ArrayBuffer[] | null>[], weights: number[]): Promise<void> {
  let arrived = await Promise.all(released);
  for (let p = 0; ; p++) {
    const points = syncs.map((s) => s.points[p]);
    if (arrived.every((a) => a === null)) return;
    if (arrived.some((a) => a === null) || points.some((q) => q?.kind !== points[0]?.kind)) {
      throw new Error(`--syncBN: the devices' steps met different batch norms (${syncs.map((s, k) => `device ${k}: ${s.points.length}`).join(', ')}); every device must run the same layers`);
    }
    const parts = arrived.map((a) => a!.map((b) => new Float32Array(b)));
    if (points[0]!.kind === 'reduce') {
      checkArenaLayouts(points.map((q) => q!.targets));
      parts[0]!.forEach((first, a) => {
        const sum = new Float32Array(first.length);
        weightedSum(sum, parts.map((p) => p[a]!), weights);
        devices.forEach((d, k) => d.write(points[k]!.targets[a]!, sum));
      });
      arrived = await Promise.all(devices.map((d) => d.advance()));
      continue;
    }
    const counts = points.map((q) => q!.count);
    const total = counts.reduce((a, b) => a + b, 0);
    const C = parts[0]![0]!.length;
    if (points[0]!.kind === 'statistics') {
      const out = new Float32Array(2 * C + 1);
      for (let c = 0; c < C; c++) {
        let mean = 0;
        parts.forEach(([m], k) => (mean += (counts[k]! * m![c]!) / total));
        let m2 = 0;
        parts.forEach(([m, q], k) => (m2 += q![c]! + counts[k]! * (m![c]! - mean) ** 2));
        out[c] = mean;
        out[C + c] = m2;
      }
      out[2 * C] = total;
      devices.forEach((d, k) => d.write(points[k]!.targets[0]!, out));
    } else {
      const sums = [0, 1].map((i) => Float64Array.from({ length: C }, (_, c) => parts.reduce((s, part, k) => s + weights[k]! * part[i]![c]!, 0)));
      devices.forEach((d, k) => {
        const scale = counts[k]! / total / weights[k]!;
        sums.forEach((sum, i) => d.write(points[k]!.targets[i]!, Float32Array.from(sum, (v) => v * scale)));
      });
    }
    arrived = await Promise.all(devices.map((d) => d.advance()));
  }
}

/** Throws unless every device's gradient arenas match device 0's one for one (a device with a lower binding limit cuts them differently: they cannot be summed). */
function checkArenaLayouts(arenas: BufferView[][]): void {
  arenas.forEach((views, k) => {
    if (views.length !== arenas[0]!.length || views.some((v, a) => v.size !== arenas[0]![a]!.size)) throw new Error(`--devices: device ${k}'s optimizer arenas are laid out unlike device 0's (its storage-binding limit differs); use adapters of one kind`);
  });
}

/** out = Σ_k w_k · parts_k elementwise, added in float64 in the order of the parts, rounded once to float32. */
function weightedSum(out: Float32Array, parts: Float32Array[], w: number[]): void {
  const [p0, p1] = parts;
  if (parts.length === 2) {
    const [w0, w1] = w as [number, number];
    for (let i = 0; i < out.length; i++) out[i] = w0 * p0![i]! + w1 * p1![i]!;
    return;
  }
  for (let i = 0; i < out.length; i++) {
    let s = 0;
    for (let k = 0; k < parts.length; k++) s += w[k]! * parts[k]![i]!;
    out[i] = s;
  }
}

/** Copies a replica optimizer's hyperparameters from device 0's (a schedule changes them). */
function syncHyperparameters(from: AnyOptimizer, to: AnyOptimizer): void {
  from.paramGroups.forEach((group, g) => {
    const { params: _params, ...hyperparameters } = group;
    Object.assign(to.paramGroups[g]!, hyperparameters);
  });
}

/** Reads every tensor of a batch (at any depth of plain objects) to the host. */
async function readTensors(value: unknown, host: HostBatch): Promise<void> {
  if (value instanceof Tensor) {
    if (!host.tensors.has(value)) host.tensors.set(value, await value.toArray());
    return;
  }
  if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value)) return;
  for (const v of Object.values(value)) await readTensors(v, host);
}

/** The sample counts of a batch's levels that hold tensors (the batch itself, or its nested batches). */
function batchSizes(value: unknown, n = (value as LoopBatch).size): number[] {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || ArrayBuffer.isView(value) || value instanceof Tensor) return [];
  const inner = value as Record<string, unknown>;
  const own = typeof inner.size === 'number' ? inner.size : n;
  const nested = Object.values(inner).flatMap((v) => batchSizes(v, own));
  return Object.values(inner).some((v) => v instanceof Tensor) ? [own, ...nested] : nested;
}

/**
 * Device k's share of a batch, made on the current device: at every level of the batch (the
 * batch itself, or nested batches such as SESEMI's labeled and unlabeled ones) samples
 * shardBounds(size, K)[k…k+1] of that level; tensors and host arrays are cut along their first
 * dimension, keeping their rows per sample (4 in a rotation batch). `fractions`: the share's
 * part of each level that holds tensors.
 */
function shareOf<B extends LoopBatch>(batch: B, host: HostBatch, k: number, K: number): { share: B; fractions: number[] } {
  const made: Tensor[] = [];
  const fractions: number[] = [];
  const cut = (value: unknown, lo: number, hi: number, n: number, where: string): unknown => {
    if (value instanceof Tensor) {
      const rows = value.shape[0] ?? 0;
      if (rows % n !== 0) throw new Error(`--devices: cannot share ${where} [${value.shape.join(', ')}] of a batch of ${n} samples`);
      const per = rows / n;
      const data = host.tensors.get(value)!;
      const stride = value.size / Math.max(rows, 1);
      const t = tensor(data.subarray(lo * per * stride, hi * per * stride), [(hi - lo) * per, ...value.shape.slice(1)], { dtype: value.dtype }).keep();
      made.push(t);
      return t;
    }
    if (value instanceof Int32Array || value instanceof Float32Array) {
      const per = value.length / n;
      return Number.isInteger(per) ? value.slice(lo * per, hi * per) : value;
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
    const inner = value as Record<string, unknown>;
    const own = typeof inner.size === 'number' ? inner.size : n;
    const bounds = shardBounds(own, K);
    const [a, b] = own === n && typeof inner.size !== 'number' ? [lo, hi] : [bounds[k]!, bounds[k + 1]!];
    if (Object.values(inner).some((v) => v instanceof Tensor)) fractions.push((b - a) / own);
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(inner)) {
      if (key === 'size') out[key] = b - a;
      else if (key === 'dispose') out[key] = () => made.forEach((t) => t.dispose());
      else out[key] = cut(v, a, b, own, `${where}.${key}`);
    }
    return out;
  };
  const share = cut(batch, 0, 0, batch.size, 'batch') as B;
  return { share, fractions };
}
