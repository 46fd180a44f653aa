// The Tensor: a float32 (or int32, for labels and indices) array on the GPU, contiguous and
// row-major, with the autograd fields PyTorch users expect (requiresGrad, grad, backward()).
import type { Backend, BufferView } from './gpu/backend.js';
import { backend } from './runtime.js';
import { track, untrack } from './scope.js';
import type { Node } from './autograd/tape.js';
import { backward as runBackward } from './autograd/tape.js';
import * as F from './functional.js';

export type DType = 'float32' | 'int32';
export type Shape = readonly number[];

/**
 * A GPU buffer shared by a tensor and its views; freed when the last one is disposed, into the
 * pool of the device that made it (data-parallel training holds several devices).
 */
class Storage {
  refs = 1;
  readonly gpu: Backend = backend();
  constructor(readonly buffer: GPUBuffer, readonly bytes: number) {}
  retain(): void {
    this.refs += 1;
  }
  release(): void {
    this.refs -= 1;
    if (this.refs === 0) this.gpu.release(this.buffer);
  }
}

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function checkShape(shape: Shape, where: string): number[] {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`${where}: invalid shape [${shape.join(', ')}]`);
  }
  return [...shape];
}

export class Tensor {
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly size: number;
  requiresGrad = false;
  /** Accumulated gradient after backward(), for tensors that require one. */
  grad: Tensor | null = null;
  /** The recorded op that produced this tensor (PyTorch's grad_fn); null for leaves. */
  node: Node | null = null;
  private storage: Storage | null;
  /** Bytes from the start of the storage's buffer: non-zero for a parameter in an optimizer's flat arena. */
  private byteOffset = 0;

  /** Use the creation functions (tensor, zeros, randn…) or Tensor.empty rather than this. */
  constructor(storage: Storage, shape: Shape, dtype: DType) {
    this.storage = storage;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.size = numel(shape);
    track(this);
  }

  /** A tensor with uninitialised contents; kernels fill it. */
  static empty(shape: Shape, dtype: DType = 'float32'): Tensor {
    const dims = checkShape(shape, 'empty');
    const bytes = Math.max(4, numel(dims) * 4);
    return new Tensor(new Storage(backend().alloc(bytes, `tensor[${dims.join('x')}]`), bytes), dims, dtype);
  }

  /** The buffer range holding this tensor's elements, for binding to a kernel. */
  get view(): BufferView {
    const storage = this.live();
    return { buffer: storage.buffer, offset: this.byteOffset, size: Math.max(4, this.size * 4) };
  }

  /** The device holding this tensor's memory. */
  get device(): Backend {
    return this.live().gpu;
  }

  get ndim(): number {
    return this.shape.length;
  }

  get isLeaf(): boolean {
    return this.node === null;
  }

  get isDisposed(): boolean {
    return this.storage === null;
  }

  /** Same data, new shape (one dimension may be -1); shares memory like torch.Tensor.view. */
  reshape(...shape: number[] | [readonly number[]]): Tensor {
    const dims = (Array.isArray(shape[0]) ? shape[0] : shape) as readonly number[];
    return F.reshape(this, dims);
  }

  /** A new tensor object over the same storage (no copy, no graph edge). */
  alias(shape: Shape = this.shape): Tensor {
    const storage = this.live();
    if (numel(shape) !== this.size) throw new Error(`alias: cannot view [${this.shape.join(', ')}] as [${shape.join(', ')}]`);
    storage.retain();
    const view = new Tensor(storage, shape, this.dtype);
    view.byteOffset = this.byteOffset;
    return view;
  }

  /**
   * Indices [start, start + length) of the first dimension as a view (torch.narrow(0, …)), no
   * copy: how launch.ts binds a window of a tensor larger than one binding.
   */
  narrow(start: number, length: number): Tensor {
    const outer = this.shape[0];
    if (outer === undefined || start < 0 || length < 0 || start + length > outer) {
      throw new RangeError(`narrow: rows [${start}, ${start + length}) of [${this.shape.join(', ')}]`);
    }
    const storage = this.live();
    storage.retain();
    const rows = new Tensor(storage, [length, ...this.shape.slice(1)], this.dtype);
    rows.byteOffset = this.byteOffset + (start * this.size * 4) / outer;
    return rows;
  }

  /**
   * Moves this tensor's elements to `byteOffset` (a multiple of 256) inside `storage`, copied in
   * stream order, and keeps pointing there: the optimizers' flat parameter arenas, so that one
   * kernel updates every parameter in place. Views taken before the move keep the old data.
   */
  relocate(storage: Storage, byteOffset: number): void {
    const old = this.live();
    if (byteOffset % 256 !== 0 || byteOffset + this.size * 4 > storage.bytes) {
      throw new RangeError(`relocate: ${this.size * 4} bytes at offset ${byteOffset} do not fit a ${storage.bytes}-byte storage on a 256-byte boundary`);
    }
    const from = this.view;
    storage.retain();
    this.storage = storage;
    this.byteOffset = byteOffset;
    if (this.size > 0) backend().copy(from, this.view, this.size * 4);
    old.release();
  }

  /**
   * Exchanges the memory behind this tensor and `other` (same shape and dtype): data-parallel
   * training points a model's own tensors at a replica's memory on another device for that
   * device's step, then back, so that a recipe's step runs unchanged on every replica.
   */
  swapStorage(other: Tensor): void {
    if (other.size !== this.size || other.dtype !== this.dtype) throw new Error(`swapStorage: ${this} and ${other} differ`);
    [this.storage, other.storage] = [other.live(), this.live()];
    [this.byteOffset, other.byteOffset] = [other.byteOffset, this.byteOffset];
  }

  /** Marks this tensor as a leaf that accumulates .grad in backward(). */
  requiresGrad_(flag = true): this {
    if (flag && this.dtype !== 'float32') throw new Error('requiresGrad_: only float32 tensors can require gradients');
    this.requiresGrad = flag;
    return this;
  }

  /** Keeps the tensor alive past the enclosing scope(s); dispose it yourself. */
  keep(): this {
    untrack(this);
    return this;
  }

  /** Frees the GPU memory (once every view of it is disposed). Safe to call twice. */
  dispose(): void {
    if (!this.storage) return;
    this.storage.release();
    this.storage = null;
    untrack(this);
  }

  /** Waits for the GPU and copies the data out: the only readback. */
  async toArray(): Promise<Float32Array | Int32Array> {
    const bytes = await this.live().gpu.read({ ...this.view, size: this.size * 4 });
    return this.dtype === 'int32' ? new Int32Array(bytes) : new Float32Array(bytes);
  }

  /** The single value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new Error(`item: tensor has ${this.size} elements, not 1`);
    return (await this.toArray())[0]!;
  }

  /** Backpropagates from this tensor; a non-scalar needs the upstream gradient. */
  backward(grad?: Tensor): void {
    runBackward(this, grad);
  }

  /** A copy outside the graph. */
  detach(): Tensor {
    return F.copy(this);
  }

  toString(): string {
    return `Tensor(shape=[${this.shape.join(', ')}], dtype=${this.dtype}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }

  private live(): Storage {
    if (!this.storage) throw new Error(`use of a disposed tensor (shape [${this.shape.join(', ')}])`);
    return this.storage;
  }

  // ---- op methods, as on torch.Tensor ----
  add(other: Tensor | number): Tensor { return F.add(this, other); }
  sub(other: Tensor | number): Tensor { return F.sub(this, other); }
  mul(other: Tensor | number): Tensor { return F.mul(this, other); }
  div(other: Tensor | number): Tensor { return F.div(this, other); }
  neg(): Tensor { return F.neg(this); }
  exp(): Tensor { return F.exp(this); }
  log(): Tensor { return F.log(this); }
  sqrt(): Tensor { return F.sqrt(this); }
  pow(exponent: number): Tensor { return F.pow(this, exponent); }
  relu(): Tensor { return F.relu(this); }
  sigmoid(): Tensor { return F.sigmoid(this); }
  tanh(): Tensor { return F.tanh(this); }
  sum(dim?: number | readonly number[], keepdim = false): Tensor { return F.sum(this, dim, keepdim); }
  mean(dim?: number | readonly number[], keepdim = false): Tensor { return F.mean(this, dim, keepdim); }
  max(dim?: number | readonly number[], keepdim = false): Tensor { return F.max(this, dim, keepdim); }
  matmul(other: Tensor): Tensor { return F.matmul(this, other); }
  softmax(dim = -1): Tensor { return F.softmax(this, dim); }
  logSoftmax(dim = -1): Tensor { return F.logSoftmax(this, dim); }
  flatten(startDim = 1): Tensor { return F.flatten(this, startDim); }
  /** Transpose of the last two dimensions, materialised. */
  t(): Tensor { return F.transpose(this); }
}

export function storageFor(bytes: number, label: string): Storage {
  return new Storage(backend().alloc(bytes, label), bytes);
}
