// Clipping by global norm (torch.nn.utils.clip_grad_norm_) over an optimizer's gradient arenas:
// per-workgroup sums of squares, then one workgroup sums them in a fixed order, writes the norm
// to a tensor and the factor min(maxNorm / (norm + 1e-6), 1) to a small buffer that the next
// update kernel multiplies the gradients by: one dispatch per chunk and one more (plus one per
// parameter without a gradient), no readback. A chunk larger than one binding (a parameter past
// the binding ceiling) is summed in windows of whole workgroups, so every partial covers the same
// elements as unsplit and the norm keeps its bits.
import type { BufferView } from '../gpu/backend.js';
import { launch } from '../gpu/launch.js';
import { planWindows, type Window } from '../gpu/windows.js';
import { backend } from '../runtime.js';
import { Tensor } from '../tensor.js';
import { arenaView, runGrid, type Chunk } from './arena.js';

/** Elements one workgroup of grad_norm_partial sums (ITEMS · WG in kernels/optim.wgsl). */
const PER_WORKGROUP = 8 * 256;

/**
 * Windows of a chunk's `groups` workgroups that each bind within the ceiling: all of them when
 * the chunk fits; else windows starting on multiples of PER_WORKGROUP elements (8 KiB, which
 * every device's offset alignment divides), so a ceiling below 8 KiB cannot split the norm.
 */
function workgroupWindows(elements: number, groups: number): Window[] {
  const gpu = backend();
  if (elements * 4 <= gpu.bindingLimit) return [{ start: 0, count: groups }];
  if (gpu.bindingLimit < PER_WORKGROUP * 4) {
    throw new Error(`clipGradNorm: a ${elements}-element parameter arena passes the ${gpu.bindingLimit}-byte binding ceiling, and the norm splits only in windows of ${PER_WORKGROUP * 4} bytes; raise DAWNET_MAX_BINDING`);
  }
  return planWindows(groups, [PER_WORKGROUP * 4], gpu.bindingLimit, gpu.limits.minStorageBufferOffsetAlignment).windows;
}

export class GradNorm {
  /** [norm, factor], bound read-only as `clip_coef` by the update kernels. */
  readonly factor: GPUBuffer;
  private readonly partials: GPUBuffer;
  private readonly partialCount: number;

  constructor(private readonly chunks: readonly Chunk[], label: string) {
    const gpu = backend();
    this.partialCount = chunks.reduce((n, c) => n + Math.ceil(c.elements / PER_WORKGROUP), 0);
    this.partials = gpu.alloc(this.partialCount * 4, `${label} norm partials`);
    this.factor = gpu.alloc(8, `${label} clip factor`);
  }

  get factorView(): BufferView {
    return { buffer: this.factor, offset: 0, size: 8 };
  }

  /** Encodes the norm of the gathered gradients; returns it as a scalar tensor (not read back). */
  encode(maxNorm: number): Tensor {
    const partials = { buffer: this.partials, offset: 0, size: this.partialCount * 4 };
    let offset = 0;
    for (const chunk of this.chunks) {
      const grad = arenaView(chunk, chunk.grad);
      // The arena still holds an older gradient where .grad is null: count it as zero, as
      // PyTorch skips None gradients.
      for (const s of chunk.segments) {
        if (!s.param.grad && s.size > 0) launch('optim', 'grad_zero', { grad_rw: grad }, { start: s.offset, count: s.size }, runGrid(chunk, { start: s.offset, count: s.size }, ['grad_rw']));
      }
      const groups = Math.ceil(chunk.elements / PER_WORKGROUP);
      for (const w of workgroupWindows(chunk.elements, groups)) {
        const start = w.start * PER_WORKGROUP;
        const count = Math.min(chunk.elements, (w.start + w.count) * PER_WORKGROUP) - start;
        const window = { buffer: grad.buffer, offset: grad.offset + start * 4, size: count * 4 };
        launch('optim', 'grad_norm_partial', { grad: window, partials }, { count, partial_offset: offset + w.start }, [w.count]);
      }
      offset += groups;
    }
    const norm = Tensor.empty([]);
    launch(
      'optim',
      'grad_norm_final',
      { partials, norm_out: norm, clip_out: this.factorView },
      { count: this.partialCount, max_norm: maxNorm },
      [1],
    );
    return norm;
  }

  dispose(): void {
    const gpu = backend();
    gpu.release(this.partials);
    gpu.release(this.factor);
  }
}
