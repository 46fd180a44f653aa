// Flat arenas for the optimizers: a parameter group's parameters moved into one GPU buffer (a
// "chunk"; several when the group exceeds the storage-binding limit), each at a 256-byte-aligned
// offset (minStorageBufferOffsetAlignment) with zero padding, and gradient and state arenas of
// the same layout, so one dispatch updates a chunk in place.
import type { BufferView } from '../gpu/backend.js';
import type { Grid, Split } from '../gpu/launch.js';
import { backend } from '../runtime.js';
import { storageFor, type Tensor } from '../tensor.js';

type Storage = ReturnType<typeof storageFor>;

/** One parameter's place in a chunk. */
export interface Segment {
  readonly param: Tensor;
  /** The parameter's number across all groups (PyTorch's state-dict id). */
  readonly index: number;
  /** Elements from the chunk's start (a multiple of 64: 256 bytes). */
  readonly offset: number;
  readonly size: number;
}

export interface Chunk {
  readonly storage: Storage;
  /** f32 elements, padding included. */
  readonly elements: number;
  /** The gradient arena; padding stays zero. */
  readonly grad: GPUBuffer;
  /** State arenas by PyTorch's names (momentum_buffer, exp_avg, exp_avg_sq), allocated on first use. */
  readonly slots: Map<string, GPUBuffer>;
  readonly segments: readonly Segment[];
  readonly label: string;
}

/** A contiguous range of a chunk that one dispatch updates. */
export interface UpdateRange {
  start: number;
  count: number;
  /** The state age its parameters share (Optimizer.stateKey). */
  key: number;
  indices: number[];
}

const ALIGN = 64;

/**
 * Lays out each group's parameters in chunks of at most `limitBytes` and moves them there
 * (Tensor.relocate: the module keeps its Tensor objects, which now view the chunk).
 */
export function buildArenas(groups: readonly (readonly Tensor[])[], limitBytes: number, label: string): Chunk[][] {
  let index = 0;
  return groups.map((params, g) => {
    const chunks: Chunk[] = [];
    let pending: Segment[] = [];
    let used = 0;
    const close = (): void => {
      if (pending.length > 0) chunks.push(buildChunk(pending, used, `${label} group ${g} chunk ${chunks.length}`));
      pending = [];
      used = 0;
    };
    for (const param of params) {
      const padded = Math.ceil(Math.max(1, param.size) / ALIGN) * ALIGN;
      // A parameter larger than the limit gets a chunk of its own, updated in binding windows (runGrid).
      if ((used + padded) * 4 > limitBytes) close();
      pending.push({ param, index: index++, offset: used, size: param.size });
      used += padded;
    }
    close();
    return chunks;
  });
}

function buildChunk(segments: Segment[], elements: number, label: string): Chunk {
  const gpu = backend();
  const bytes = elements * 4;
  const storage = storageFor(bytes, `${label} parameters`);
  const grad = gpu.alloc(bytes, `${label} gradients`);
  const zeros = new Float32Array(elements);
  gpu.write({ buffer: storage.buffer, offset: 0, size: bytes }, zeros);
  gpu.write({ buffer: grad, offset: 0, size: bytes }, zeros);
  for (const s of segments) s.param.relocate(storage, s.offset * 4);
  return { storage, elements, grad, slots: new Map(), segments, label };
}

/** The whole of one of a chunk's arenas, for binding. */
/**
 * The grid of an update over `run`, or, for a chunk larger than one binding (a parameter larger
 * than the binding ceiling), windows of the chunk's `bindings` with the run's start and count
 * clipped to each window.
 */
export function runGrid(chunk: Chunk, run: { start: number; count: number }, bindings: readonly string[]): Grid | Split {
  if (chunk.elements * 4 <= backend().bindingLimit) return [Math.ceil(run.count / 256)];
  const end = run.start + run.count;
  return {
    extent: chunk.elements,
    bindings,
    uniforms: (w) => {
      const lo = Math.max(run.start, w.start);
      return { start: lo - w.start, count: Math.max(0, Math.min(end, w.start + w.count) - lo) };
    },
    groups: (n) => [Math.ceil(n / 256)],
  };
}

export function arenaView(chunk: Chunk, buffer: GPUBuffer): BufferView {
  return { buffer, offset: 0, size: chunk.elements * 4 };
}

/** Allocates and zeroes the state arenas a chunk lacks (once; later steps allocate nothing). */
export function ensureSlots(chunk: Chunk, names: Iterable<string>): void {
  const gpu = backend();
  for (const name of names) {
    if (chunk.slots.has(name)) continue;
    const buffer = gpu.alloc(chunk.elements * 4, `${chunk.label} ${name}`);
    gpu.write(arenaView(chunk, buffer), new Float32Array(chunk.elements));
    chunk.slots.set(name, buffer);
  }
}

/**
 * Copies every .grad into the chunk's gradient arena (buffer-to-buffer copies in stream order:
 * the tape makes a new .grad tensor every backward, so gradients cannot live in the arena).
 */
export function gatherGradients(chunk: Chunk, kind: string): void {
  const gpu = backend();
  for (const s of chunk.segments) {
    const p = s.param;
    if (p.isDisposed) throw new Error(`${kind}: parameter ${s.index} was disposed while the optimizer still uses it`);
    const view = p.view;
    if (view.buffer !== chunk.storage.buffer || view.offset !== s.offset * 4) throw new Error(`${kind}: parameter ${s.index} no longer lives in this optimizer's arena`);
    const g = p.grad;
    if (!g) continue;
    if (g.isDisposed) throw new Error(`${kind}: the .grad of parameter ${s.index} was disposed but not set to null (use zeroGrad())`);
    if (g.size !== p.size || g.dtype !== 'float32') throw new Error(`${kind}: parameter ${s.index} ${p} has a gradient ${g}`);
    if (s.size > 0) gpu.copy(g.view, { buffer: chunk.grad, offset: s.offset * 4, size: s.size * 4 }, s.size * 4);
  }
}

/** Maximal ranges of consecutive parameters that have a gradient and share a state key. */
export function updateRanges(chunk: Chunk, key: (index: number) => number): UpdateRange[] {
  const out: UpdateRange[] = [];
  let range: UpdateRange | null = null;
  for (const s of chunk.segments) {
    if (!s.param.grad) {
      range = null;
      continue;
    }
    const k = key(s.index);
    if (range && range.key === k) {
      range.count = s.offset + s.size - range.start;
      range.indices.push(s.index);
    } else {
      range = { start: s.offset, count: s.size, key: k, indices: [s.index] };
      out.push(range);
    }
  }
  return out;
}

/** Gives the chunk's buffers back; the parameter storage lives on while parameters view it. */
export function releaseChunk(chunk: Chunk): void {
  const gpu = backend();
  chunk.storage.release();
  gpu.release(chunk.grad);
  for (const buffer of chunk.slots.values()) gpu.release(buffer);
}
