// The runtime's whole surface towards the GPU: allocate, release, write, read, dispatch, flush.
// Tensors, the tape and layers go through this class and never touch GPUDevice themselves.
// Dispatches accumulate in one command encoder (one compute pass) until a read or an explicit
// flush submits them together; each dispatch's uniforms take a 256-byte slot of one arena that
// is uploaded once per submit. hold() keeps a step's submits and writes back, in order, so that
// the host can act between its parts (advance()): --syncBN exchanges batch statistics there.
import { openDevice, type DeviceOptions, type OpenedDevice } from './device.js';
import { bindingCeiling } from './windows.js';
import { loadTuning, saveTuning, type TunedChoice, type TuningTable } from './tuning.js';
import { autotuneFromEnv } from './tuner.js';
import { capabilitiesOf, kernelChoice, simdCapable, type DeviceCapabilities, type KernelChoice } from './capabilities.js';
import { KernelLibrary, type Kernel, type Overrides } from './kernels.js';
import { BufferPool, formatBytes, type PoolStats } from './pool.js';

/** A range of a GPU buffer bound to one kernel binding. */
export interface BufferView {
  buffer: GPUBuffer;
  /** Bytes from the buffer's start (a multiple of 256 when non-zero). */
  offset: number;
  /** Bytes the view covers. */
  size: number;
}

/** Work hold() kept back, replayed in this order by advance(). */
type Held =
  | { kind: 'submit'; commands: GPUCommandBuffer; uniforms: ArrayBuffer | null }
  | { kind: 'write'; buffer: GPUBuffer; offset: number; data: ArrayBuffer }
  | { kind: 'destroy'; texture: GPUTexture }
  | { kind: 'point'; staging: GPUBuffer; sizes: number[] };

export type UniformValue = number | boolean | readonly number[];
export type Uniforms = Record<string, UniformValue>;

export class GpuError extends Error {}

export class DeviceLostError extends GpuError {}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/**
 * Awaits a Dawn promise without letting its poller spin a core: while any Dawn promise is
 * pending, the node bindings call ProcessEvents from a setImmediate loop, which on a CPU adapter
 * (lavapipe) takes a core away from the threads running the shaders and halves their speed.
 * Between event-loop turns this blocks the main thread for 20 µs, doubling up to 250 µs.
 */
async function settle<T>(promise: Promise<T>): Promise<T> {
  let pending = true;
  const settled = promise.finally(() => {
    pending = false;
  });
  for (let ms = 0.02; pending; ms = Math.min(2 * ms, 0.25)) {
    await new Promise((resolve) => setImmediate(resolve));
    if (pending) Atomics.wait(sleeper, 0, 0, ms);
  }
  return settled;
}

const STORAGE_USAGE = GPUBufferUsageFallback('STORAGE') | GPUBufferUsageFallback('COPY_SRC') | GPUBufferUsageFallback('COPY_DST');
const UNIFORM_SLOT = 256;
const UNIFORM_ARENA = 1 << 20;
const MAX_GROUPS = 65535;

function GPUBufferUsageFallback(name: 'STORAGE' | 'COPY_SRC' | 'COPY_DST' | 'MAP_READ' | 'UNIFORM'): number {
  // Numeric values from the WebGPU spec, so this module can be imported before Dawn's globals exist.
  return { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80 }[name];
}

export class Backend {
  private readonly device: GPUDevice;
  readonly adapterName: string;
  /** Dawn's short id of the adapter (see isAdapter in device.ts). */
  readonly adapterId: string;
  readonly isSoftware: boolean;
  readonly limits: GPUSupportedLimits;
  /**
   * The most bytes one storage binding may cover: the device's limit, or less when
   * DAWNET_MAX_BINDING / init({ maxBinding }) lowers it. Larger tensors are bound in windows.
   */
  bindingLimit: number;
  /** What the device offers, as data for the planners (src/gpu/capabilities.ts). */
  readonly caps: DeviceCapabilities;
  /** Whether the SIMD kernels (kernels/*_simd.wgsl) apply: a CPU adapter with 8-lane subgroups. */
  readonly simd: boolean;
  /** The tuner's winners for this adapter (src/gpu/tuning.ts); planners take them where nothing is pinned. */
  tuning: TuningTable;
  /**
   * DAWNET_TUNE=1: a planner meeting a shape the table lacks queues it (queueTuning); the next
   * read or sync, once the encoded work is submitted, times its candidates and records the winner.
   */
  autotune = autotuneFromEnv();
  private readonly tuningQueue = new Map<string, () => Promise<TunedChoice>>();
  private readonly tuningSeen = new Set<string>();
  private tuningNow = false;
  /** The planners' kernel choice: DAWNET_KERNELS=gemm forces the GPU kernels everywhere. */
  readonly kernelChoice: KernelChoice = kernelChoice();
  private readonly textures = new Map<string, GPUTexture>();
  readonly kernels: KernelLibrary;
  private readonly pool: BufferPool;
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private readonly uniformCpu = new ArrayBuffer(UNIFORM_ARENA);
  private readonly uniformGpu: GPUBuffer;
  private uniformUsed = 0;
  /** Held work (hold()); `replaying` once advance() has begun giving it to the queue. */
  private held: { work: Held[]; next: number; replaying: boolean } | null = null;
  private readonly errors: string[] = [];
  private lostReason: string | null = null;
  private lastLabel = '';
  private destroyed = false;
  readonly debug = process.env.DAWNET_DEBUG ?? '';
  /** Number of queue submits so far; a training step should add one or two. */
  submits = 0;
  /** Dispatches encoded so far. */
  dispatches = 0;
  /** Launches (and windowed pipelines) bound in more than one window so far (launch.ts). */
  windowed = 0;

  static async open(options: DeviceOptions = {}): Promise<Backend> {
    return new Backend(await openDevice(options), options.maxBinding ?? process.env.DAWNET_MAX_BINDING);
  }

  private constructor(opened: OpenedDevice, maxBinding: string | number | undefined) {
    this.device = opened.device;
    this.adapterName = opened.adapterName;
    this.adapterId = opened.adapterId;
    this.isSoftware = opened.isSoftware;
    this.limits = opened.device.limits;
    this.bindingLimit = bindingCeiling(this.limits, maxBinding);
    this.caps = capabilitiesOf(opened.device, opened.adapterName, opened.isSoftware);
    this.simd = simdCapable(this.caps);
    this.tuning = loadTuning(this.adapterName);
    this.kernels = new KernelLibrary(this.device);
    this.pool = new BufferPool(this.device, this.limits.maxBufferSize);
    this.uniformGpu = this.device.createBuffer({
      label: 'dawnet uniforms',
      size: UNIFORM_ARENA,
      usage: GPUBufferUsageFallback('UNIFORM') | GPUBufferUsageFallback('COPY_DST'),
    });
    this.device.addEventListener('uncapturederror', (event) => {
      const error = (event as GPUUncapturedErrorEvent).error;
      this.errors.push(`${error.message.trim()}\n  (last kernel encoded: ${this.lastLabel || 'none'})`);
    });
    void this.device.lost.then((info) => {
      if (!this.destroyed) this.lostReason = `${info.reason}: ${info.message}`;
    });
  }

  /** False once destroy() ran. */
  get alive(): boolean {
    return !this.destroyed;
  }

  /**
   * Sets the binding ceiling (bytes, or text such as "1MiB"), never above the device's limit;
   * undefined restores the device's. Ops read it at each launch: tests and benchmarks use this
   * to run the same work split and unsplit.
   */
  setBindingLimit(maxBinding?: string | number): void {
    this.bindingLimit = bindingCeiling(this.limits, maxBinding);
  }

  // ---- memory -------------------------------------------------------------------------------

  /** A storage buffer of at least `bytes` bytes, from the pool. */
  alloc(bytes: number, label = 'tensor'): GPUBuffer {
    this.checkAlive();
    return this.pool.acquire(Math.max(4, bytes), STORAGE_USAGE, label);
  }

  release(buffer: GPUBuffer): void {
    if (!this.destroyed) this.pool.release(buffer);
  }

  memory(): PoolStats {
    return this.pool.snapshot();
  }

  /** Starts memory().peakBytesInUse afresh, so that it reports the peak of what follows (a step). */
  resetPeak(): void {
    this.pool.resetPeak();
  }

  /** Destroys pooled buffers that nothing uses. */
  trim(): void {
    this.pool.trim();
  }

  /**
   * The rgba32float scratch texture of `role`, at least width × height texels, shared by every
   * call (later dispatches read what earlier ones wrote, in stream order). A texture only grows;
   * the old one is destroyed after a flush, once no unsubmitted command refers to it.
   */
  texture(role: string, [width, height]: [number, number]): GPUTexture {
    this.checkAlive();
    const old = this.textures.get(role);
    if (old && old.width >= width && old.height >= height) return old;
    const round = (n: number): number => Math.min(Math.ceil(n / 64) * 64, this.limits.maxTextureDimension2D);
    const made = this.device.createTexture({
      label: `dawnet scratch ${role}`,
      size: [round(Math.max(width, old?.width ?? 0)), round(Math.max(height, old?.height ?? 0))],
      format: 'rgba32float',
      usage: GPUTextureUsage.STORAGE_BINDING | GPUTextureUsage.COPY_DST,
    });
    if (old) {
      this.flush();
      if (this.recording()) this.held!.work.push({ kind: 'destroy', texture: old });
      else old.destroy();
    }
    this.textures.set(role, made);
    return made;
  }

  /** A kernel library over another folder of WGSL files (tests of the library itself). */
  library(dir: string): KernelLibrary {
    return new KernelLibrary(this.device, dir);
  }

  write(view: BufferView, data: ArrayBufferView): void {
    this.checkAlive();
    if (data.byteLength > view.size) throw new RangeError(`write of ${data.byteLength} bytes into a ${view.size}-byte view`);
    // queue.writeBuffer runs before any command still being encoded, which may read this buffer.
    this.flush();
    if (this.recording()) {
      const copy = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice().buffer;
      this.held!.work.push({ kind: 'write', buffer: view.buffer, offset: view.offset, data: copy });
    } else this.device.queue.writeBuffer(view.buffer, view.offset, data.buffer, data.byteOffset, data.byteLength);
  }

  /** Copies `size` bytes between views, in stream order with the dispatches around it. */
  copy(from: BufferView, to: BufferView, size: number): void {
    this.endPass();
    this.commandEncoder().copyBufferToBuffer(from.buffer, from.offset, to.buffer, to.offset, size);
  }

  /** Copies rows of `bytesPerRow` bytes (a multiple of 256) from a view into a texture's top-left corner, in stream order. */
  copyToTexture(from: BufferView, to: GPUTexture, bytesPerRow: number, size: [number, number]): void {
    this.endPass();
    this.commandEncoder().copyBufferToTexture({ buffer: from.buffer, offset: from.offset, bytesPerRow }, { texture: to }, size);
  }

  /** Submits pending work and reads the view back: the only way data leaves the GPU. */
  async read(view: BufferView): Promise<ArrayBuffer> {
    this.checkAlive();
    this.checkNotRecording('read back');
    const bytes = Math.ceil(view.size / 4) * 4;
    const staging = this.pool.acquire(bytes, GPUBufferUsageFallback('MAP_READ') | GPUBufferUsageFallback('COPY_DST'), 'readback');
    this.endPass();
    this.commandEncoder().copyBufferToBuffer(view.buffer, view.offset, staging, 0, bytes);
    this.flush();
    await this.tuneQueued();
    try {
      await settle(staging.mapAsync(GPUMapMode.READ, 0, bytes));
    } catch (err) {
      await this.throwPendingErrors();
      throw new GpuError(`reading ${formatBytes(bytes)} back failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    const copy = staging.getMappedRange(0, bytes).slice(0, view.size);
    staging.unmap();
    this.pool.release(staging);
    await this.throwPendingErrors();
    return copy;
  }

  // ---- kernels ------------------------------------------------------------------------------

  kernel(file: string, entry: string, overrides: Overrides = {}): Kernel {
    this.checkAlive();
    return this.kernels.get(file, entry, overrides);
  }

  /**
   * Encodes one dispatch (ops, optimizers and loaders call it through launch() in launch.ts).
   * Bindings are given by their WGSL names; each view is checked against
   * the binding's element size and the device's binding limit. Grids wider than 65,535
   * workgroups in x are folded into y: kernels derive their linear index from num_workgroups.
   */
  dispatch(kernel: Kernel, bindings: Record<string, BufferView | GPUTextureView>, uniforms: Uniforms, groups: [number, number?, number?]): void {
    this.checkAlive();
    const [gx, gy = 1, gz = 1] = groups;
    if (gx === 0 || gy === 0 || gz === 0) return;
    const entries: GPUBindGroupEntry[] = [];
    const expected = new Set([...kernel.storage.map((s) => s.name), ...kernel.textures.map((t) => t.name)]);
    for (const name of Object.keys(bindings)) {
      if (!expected.has(name)) throw new GpuError(`${kernel.label}: no storage binding named '${name}' (it has: ${[...expected].join(', ')})`);
    }
    for (const binding of kernel.textures) {
      const view = bindings[binding.name];
      if (!view || 'buffer' in view) throw new GpuError(`${kernel.label}: texture binding '${binding.name}' needs a GPUTextureView`);
      entries.push({ binding: binding.binding, resource: view });
    }
    for (const binding of kernel.storage) {
      const view = bindings[binding.name];
      if (!view || !('buffer' in view)) throw new GpuError(`${kernel.label}: binding '${binding.name}' was not given`);
      if (view.size % binding.elementBytes !== 0 || view.size === 0) {
        throw new GpuError(`${kernel.label}: '${binding.name}' is ${view.size} bytes, not a whole number of ${binding.elementBytes}-byte elements`);
      }
      if (view.size > this.bindingLimit) {
        throw new GpuError(
          `${kernel.label}: '${binding.name}' is ${formatBytes(view.size)}, over the storage binding limit of ${formatBytes(this.bindingLimit)} (its op binds it whole; ops that split their work bind windows)`,
        );
      }
      entries.push({ binding: binding.binding, resource: { buffer: view.buffer, offset: view.offset, size: view.size } });
    }
    if (kernel.uniform) {
      if (this.uniformUsed + UNIFORM_SLOT > UNIFORM_ARENA) this.flush();
      const offset = this.uniformUsed;
      this.packUniforms(kernel, uniforms, offset);
      this.uniformUsed += UNIFORM_SLOT;
      entries.push({ binding: kernel.uniform.binding, resource: { buffer: this.uniformGpu, offset, size: kernel.uniform.size } });
    }
    let [x, y, z] = [gx, gy, gz];
    if (x > MAX_GROUPS) {
      if (y !== 1) throw new GpuError(`${kernel.label}: cannot fold ${x}×${y} workgroups`);
      y = Math.ceil(x / MAX_GROUPS);
      x = Math.ceil(x / y);
    }
    if (y > MAX_GROUPS || z > MAX_GROUPS) throw new GpuError(`${kernel.label}: ${gx}×${gy}×${gz} workgroups exceed the device's grid`);
    if (this.debug) process.stderr.write(`dawnet dispatch ${kernel.label} [${x}, ${y}, ${z}]\n`);
    const group = this.device.createBindGroup({ label: kernel.label, layout: kernel.layout, entries });
    const pass = this.computePass();
    pass.setPipeline(kernel.pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(x, y, z);
    this.lastLabel = kernel.label;
    this.dispatches += 1;
  }

  /** Submits everything encoded so far in one command buffer. */
  flush(): void {
    if (!this.encoder || this.destroyed) return;
    this.endPass();
    const commands = this.encoder.finish({ label: 'dawnet step' });
    if (this.recording()) {
      // Every held part brings its own uniforms: the arena is rewritten before each submit.
      this.held!.work.push({ kind: 'submit', commands, uniforms: this.uniformUsed > 0 ? this.uniformCpu.slice(0, this.uniformUsed) : null });
    } else {
      if (this.uniformUsed > 0) this.device.queue.writeBuffer(this.uniformGpu, 0, this.uniformCpu, 0, this.uniformUsed);
      this.device.queue.submit([commands]);
    }
    this.encoder = null;
    this.uniformUsed = 0;
    this.submits += 1;
    this.pool.recycle();
  }

  /**
   * Holds what follows back from the queue: submits and writes are kept, in order, until
   * advance() gives them to it, stopping at each point() so that the host can read what came
   * before and write what comes after (--syncBN's exchange between devices). Kept work may reuse
   * buffers released before it, as queued work does: the order of the stream is unchanged.
   */
  hold(): void {
    if (this.held) throw new GpuError('hold(): this device already holds work back');
    this.flush();
    this.held = { work: [], next: 0, replaying: false };
  }

  /** While holding: a point where advance() stops, handing over the views' contents as they are there. */
  point(views: BufferView[]): void {
    if (!this.recording()) throw new GpuError('point(): only while holding work back (hold())');
    const sizes = views.map((v) => Math.ceil(v.size / 4) * 4);
    const staging = this.pool.acquire(sizes.reduce((a, b) => a + b, 0), GPUBufferUsageFallback('MAP_READ') | GPUBufferUsageFallback('COPY_DST'), 'exchange');
    this.endPass();
    let at = 0;
    views.forEach((v, i) => {
      this.commandEncoder().copyBufferToBuffer(v.buffer, v.offset, staging, at, sizes[i]!);
      at += sizes[i]!;
    });
    this.flush();
    this.held!.work.push({ kind: 'point', staging, sizes });
  }

  /**
   * Gives the held work to the queue up to the next point and resolves to that point's views'
   * contents; resolves to null once everything held has been queued, which ends holding. Writes
   * made between two advances land at the point, before the work after it.
   */
  async advance(): Promise<ArrayBuffer[] | null> {
    const held = this.held;
    if (!held) return null;
    this.flush();
    held.replaying = true;
    while (held.next < held.work.length && this.held === held) {
      const part = held.work[held.next++]!;
      if (part.kind === 'submit') {
        if (part.uniforms) this.device.queue.writeBuffer(this.uniformGpu, 0, part.uniforms);
        this.device.queue.submit([part.commands]);
      } else if (part.kind === 'write') this.device.queue.writeBuffer(part.buffer, part.offset, part.data);
      else if (part.kind === 'destroy') part.texture.destroy();
      else return this.readPoint(part);
    }
    if (this.held === held) this.held = null;
    await this.throwPendingErrors();
    return null;
  }

  /** Drops work still held (a step that failed while holding): none of it reaches the queue. */
  dropHeld(): void {
    this.endPass();
    this.encoder = null;
    this.uniformUsed = 0;
    this.held = null;
  }

  /** Submits and waits for the GPU to finish, then throws any error Dawn reported meanwhile. */
  async sync(): Promise<void> {
    this.checkNotRecording('wait for');
    this.flush();
    await this.tuneQueued();
    await settle(this.device.queue.onSubmittedWorkDone());
    await this.throwPendingErrors();
  }

  /** Queues a shape's timing (DAWNET_TUNE=1), once per key and process; `time` returns its winner. */
  queueTuning(key: string, time: () => Promise<TunedChoice>): void {
    if (!this.autotune || this.tuningSeen.has(key) || this.tuning.entries[key]) return;
    this.tuningSeen.add(key);
    this.tuningQueue.set(key, time);
  }

  /** Times the queued shapes (their runs submit and sync on their own), records each winner and saves the table. */
  private async tuneQueued(): Promise<void> {
    if (this.tuningNow || this.tuningQueue.size === 0) return;
    this.tuningNow = true;
    try {
      for (const [key, time] of this.tuningQueue) {
        this.tuningQueue.delete(key);
        this.tuning.entries[key] = await time();
      }
      saveTuning(this.tuning);
    } finally {
      this.tuningNow = false;
    }
  }

  destroy(): void {
    if (this.destroyed) return;
    this.flush();
    this.destroyed = true;
    this.device.destroy();
  }

  // ---- internals ----------------------------------------------------------------------------

  private packUniforms(kernel: Kernel, values: Uniforms, offset: number): void {
    const layout = kernel.uniform!;
    const view = new DataView(this.uniformCpu, offset, UNIFORM_SLOT);
    for (let i = 0; i < layout.size; i += 4) view.setUint32(i, 0, true);
    for (const [name, value] of Object.entries(values)) {
      const field = layout.fields.get(name);
      if (!field) throw new GpuError(`${kernel.label}: uniform struct has no field '${name}'`);
      const lanes = typeof value === 'object' ? value : [typeof value === 'boolean' ? Number(value) : value];
      if (lanes.length > field.lanes) throw new GpuError(`${kernel.label}: '${name}' takes ${field.lanes} values, got ${lanes.length}`);
      lanes.forEach((v, i) => {
        const at = field.offset + 4 * i;
        if (field.scalar === 'f32') view.setFloat32(at, v, true);
        else if (field.scalar === 'i32') view.setInt32(at, v, true);
        else {
          if (v < 0 || !Number.isInteger(v)) throw new GpuError(`${kernel.label}: '${name}' must be a non-negative integer, got ${v}`);
          view.setUint32(at, v, true);
        }
      });
    }
  }

  private commandEncoder(): GPUCommandEncoder {
    return (this.encoder ??= this.device.createCommandEncoder({ label: 'dawnet step' }));
  }

  private computePass(): GPUComputePassEncoder {
    return (this.pass ??= this.commandEncoder().beginComputePass({ label: 'dawnet kernels' }));
  }

  private endPass(): void {
    this.pass?.end();
    this.pass = null;
  }

  /** Whether hold() is keeping work back and advance() has not begun to queue it. */
  private recording(): boolean {
    return this.held !== null && !this.held.replaying;
  }

  private checkNotRecording(what: string): void {
    if (this.recording()) throw new GpuError(`cannot ${what} the GPU while a step's work is held back (--syncBN): its results exist only once advance() queues it`);
  }

  private async readPoint({ staging, sizes }: { staging: GPUBuffer; sizes: number[] }): Promise<ArrayBuffer[]> {
    const bytes = sizes.reduce((a, b) => a + b, 0);
    try {
      await settle(staging.mapAsync(GPUMapMode.READ, 0, bytes));
    } catch (err) {
      await this.throwPendingErrors();
      throw new GpuError(`reading an exchange point back failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    const range = staging.getMappedRange(0, bytes);
    let at = 0;
    const parts = sizes.map((n) => range.slice(at, (at += n)));
    staging.unmap();
    this.pool.release(staging);
    return parts;
  }

  private checkAlive(): void {
    if (this.destroyed) throw new GpuError('the dawnet device was destroyed; call init() again');
    if (this.lostReason) throw new DeviceLostError(`the GPU device was lost (${this.lostReason}); last kernel encoded: ${this.lastLabel || 'none'}`);
    if (this.errors.length > 0) this.throwErrors([]);
  }

  private async throwPendingErrors(): Promise<void> {
    const compile = (await Promise.all(this.kernels.compileErrors)).filter((e): e is string => e !== null);
    this.kernels.compileErrors.length = 0;
    if (compile.length > 0 || this.errors.length > 0) this.throwErrors(compile);
    if (this.lostReason) throw new DeviceLostError(`the GPU device was lost (${this.lostReason}); last kernel encoded: ${this.lastLabel || 'none'}`);
  }

  private throwErrors(compile: string[]): never {
    const all = [...compile, ...this.errors];
    this.errors.length = 0;
    throw new GpuError(`WebGPU reported ${all.length} error(s):\n${all.join('\n')}`);
  }
}
