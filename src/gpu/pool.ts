// GPU buffers recycled by size class and usage, so a steady-state training loop creates none.
// A released buffer may still be read by commands not yet submitted, so it only becomes
// reusable after the next submit (release → pending → free).

export interface PoolStats {
  /** Bytes of buffers handed out and not yet released. */
  bytesInUse: number;
  /** Bytes of every live GPU buffer the pool owns, in use or waiting for reuse. */
  bytesHeld: number;
  /** Highest bytesInUse seen. */
  peakBytesInUse: number;
  /** GPU buffers created since the pool began; flat in a steady-state loop. */
  buffersCreated: number;
}

/** Rounds up to one of 2^k·{1, 1.25, 1.5, 1.75} so a class wastes at most a fifth. */
export function sizeClass(bytes: number): number {
  const b = Math.max(256, Math.ceil(bytes));
  const pow = 2 ** Math.floor(Math.log2(b));
  for (const step of [1, 1.25, 1.5, 1.75, 2]) {
    const size = pow * step;
    if (size >= b) return size;
  }
  return pow * 2;
}

export class BufferPool {
  private free = new Map<string, GPUBuffer[]>();
  private pending: GPUBuffer[] = [];
  private sizes = new WeakMap<GPUBuffer, string>();
  private stats: PoolStats = { bytesInUse: 0, bytesHeld: 0, peakBytesInUse: 0, buffersCreated: 0 };

  constructor(private device: GPUDevice, private maxBufferSize: number) {}

  acquire(bytes: number, usage: GPUBufferUsageFlags, label: string): GPUBuffer {
    const size = sizeClass(bytes);
    if (size > this.maxBufferSize && bytes <= this.maxBufferSize) return this.create(bytes, usage, label);
    if (bytes > this.maxBufferSize) {
      throw new RangeError(
        `${label}: needs a ${formatBytes(bytes)} buffer, but this device allows at most ${formatBytes(this.maxBufferSize)}`,
      );
    }
    const key = `${usage}:${size}`;
    const buffer = this.free.get(key)?.pop() ?? this.create(size, usage, label);
    this.stats.bytesInUse += buffer.size;
    this.stats.peakBytesInUse = Math.max(this.stats.peakBytesInUse, this.stats.bytesInUse);
    return buffer;
  }

  /** Returns a buffer; it is reused only after the next submit. */
  release(buffer: GPUBuffer): void {
    this.stats.bytesInUse -= buffer.size;
    this.pending.push(buffer);
  }

  /** Called right after a submit: buffers released before it are safe to hand out again. */
  recycle(): void {
    for (const buffer of this.pending) {
      const key = this.sizes.get(buffer)!;
      let list = this.free.get(key);
      if (!list) this.free.set(key, (list = []));
      list.push(buffer);
    }
    this.pending = [];
  }

  /** Destroys every buffer waiting for reuse (not those in use). */
  trim(): void {
    for (const list of this.free.values()) {
      for (const buffer of list) {
        this.stats.bytesHeld -= buffer.size;
        buffer.destroy();
      }
    }
    this.free.clear();
  }

  /** Starts a new peak from what is in use now (the peak of one step). */
  resetPeak(): void {
    this.stats.peakBytesInUse = this.stats.bytesInUse;
  }

  snapshot(): PoolStats {
    return { ...this.stats };
  }

  private create(size: number, usage: GPUBufferUsageFlags, label: string): GPUBuffer {
    const buffer = this.device.createBuffer({ label, size, usage });
    this.sizes.set(buffer, `${usage}:${size}`);
    this.stats.buffersCreated += 1;
    this.stats.bytesHeld += size;
    return buffer;
  }
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}
