// What every data source is to the loader (torch.utils.data.Dataset, batched): a fixed number of
// square uint8 images in CHW order, their int32 labels, and a batched read that fills a host
// buffer. Sources held in memory (IDX, CIFAR, a loaded pack) are MemoryDatasets; Subset views a
// chosen list of indices of another data set.
import type { Channels } from './decode.js';

/** One sample a read could not produce (a corrupt or truncated file); the loader drops it. */
export interface ReadFailure {
  /** Position within the read's `indices`. */
  position: number;
}

export interface Dataset {
  readonly length: number;
  readonly channels: Channels;
  /** Images are imageSize × imageSize. */
  readonly imageSize: number;
  /** Class names, index = label; empty for unlabeled data. */
  readonly classes: readonly string[];
  /** Label of each sample; −1 for unlabeled data. */
  readonly labels: Int32Array;
  /** Where sample i comes from (a path, or "file#index"), for messages. */
  source(i: number): string;
  /**
   * Writes samples `indices` back to back into out, each channels·imageSize² bytes (CHW), and
   * reports those that could not be read (their bytes are left as they were).
   */
  read(indices: ArrayLike<number>, out: Uint8Array): Promise<ReadFailure[]>;
  /** Releases worker threads or file handles; the data set may not be read afterwards. */
  close(): Promise<void>;
  /** Emits one warning for images found unreadable since the last call (the loader calls it per epoch). */
  flushWarnings?(): void;
}

export function sampleBytes(d: Pick<Dataset, 'channels' | 'imageSize'>): number {
  return d.channels * d.imageSize * d.imageSize;
}

export function checkIndex(d: Dataset, i: number): void {
  if (!Number.isInteger(i) || i < 0 || i >= d.length) throw new RangeError(`index ${i} is out of range for a data set of ${d.length} images`);
}

/** Images already decoded into one host array (N, C, S, S) uint8. */
export class MemoryDataset implements Dataset {
  readonly length: number;

  constructor(
    readonly pixels: Uint8Array,
    readonly labels: Int32Array,
    readonly classes: readonly string[],
    readonly channels: Channels,
    readonly imageSize: number,
    private readonly where: string,
    /** Per-sample source names (e.g. a pack's original paths); `where#i` when absent. */
    private readonly paths: readonly string[] | null = null,
  ) {
    this.length = labels.length;
    if (pixels.length !== this.length * sampleBytes(this)) {
      throw new Error(`MemoryDataset: ${pixels.length} bytes do not hold ${this.length} images of ${channels}×${imageSize}×${imageSize}`);
    }
  }

  source(i: number): string {
    return this.paths?.[i] ?? `${this.where}#${i}`;
  }

  async read(indices: ArrayLike<number>, out: Uint8Array): Promise<ReadFailure[]> {
    this.readSync(indices, out);
    return [];
  }

  readSync(indices: ArrayLike<number>, out: Uint8Array): void {
    const bytes = sampleBytes(this);
    for (let k = 0; k < indices.length; k++) {
      const i = indices[k]!;
      checkIndex(this, i);
      out.set(this.pixels.subarray(i * bytes, (i + 1) * bytes), k * bytes);
    }
  }

  async close(): Promise<void> {}
}

/** The samples `indices` of another data set, in that order (torch.utils.data.Subset). */
export class Subset implements Dataset {
  readonly labels: Int32Array;
  readonly indices: Int32Array;

  constructor(readonly dataset: Dataset, indices: ArrayLike<number>) {
    this.indices = Int32Array.from(indices);
    for (const i of this.indices) checkIndex(dataset, i);
    this.labels = this.indices.map((i) => dataset.labels[i]!);
  }

  get length(): number {
    return this.indices.length;
  }
  get channels(): Channels {
    return this.dataset.channels;
  }
  get imageSize(): number {
    return this.dataset.imageSize;
  }
  get classes(): readonly string[] {
    return this.dataset.classes;
  }

  source(i: number): string {
    return this.dataset.source(this.indices[i]!);
  }

  read(indices: ArrayLike<number>, out: Uint8Array): Promise<ReadFailure[]> {
    const mapped = new Int32Array(indices.length);
    for (let k = 0; k < indices.length; k++) {
      checkIndex(this, indices[k]!);
      mapped[k] = this.indices[indices[k]!]!;
    }
    return this.dataset.read(mapped, out);
  }

  flushWarnings(): void {
    this.dataset.flushWarnings?.();
  }

  /** Closing a view closes nothing: the underlying data set belongs to whoever opened it. */
  async close(): Promise<void> {}
}

/**
 * Several data sets one after the other (torch.utils.data.ConcatDataset), read as unlabeled:
 * every label −1, no classes (SESEMI's rotation set of training, validation and extra images).
 */
export class UnlabeledConcat implements Dataset {
  readonly length: number;
  readonly labels: Int32Array;
  readonly classes: readonly string[] = [];
  /** Index of the first sample of each part. */
  private readonly starts: number[] = [];

  constructor(readonly parts: readonly Dataset[]) {
    const [first] = parts;
    if (!first) throw new Error('UnlabeledConcat: no data sets');
    let n = 0;
    for (const p of parts) {
      if (p.channels !== first.channels || p.imageSize !== first.imageSize) throw new Error(`UnlabeledConcat: ${p.channels}-channel ${p.imageSize}px images beside ${first.channels}-channel ${first.imageSize}px ones`);
      this.starts.push(n);
      n += p.length;
    }
    this.length = n;
    this.labels = new Int32Array(n).fill(-1);
  }

  get channels(): Channels {
    return this.parts[0]!.channels;
  }
  get imageSize(): number {
    return this.parts[0]!.imageSize;
  }

  /** The part holding sample i and its index there. */
  private locate(i: number): [number, number] {
    checkIndex(this, i);
    let k = this.starts.length - 1;
    while (this.starts[k]! > i) k--;
    return [k, i - this.starts[k]!];
  }

  source(i: number): string {
    const [k, j] = this.locate(i);
    return this.parts[k]!.source(j);
  }

  /** One read per part, the samples of each written to their own positions. */
  async read(indices: ArrayLike<number>, out: Uint8Array): Promise<ReadFailure[]> {
    const bytes = sampleBytes(this);
    const failures: ReadFailure[] = [];
    for (const [n, part] of this.parts.entries()) {
      const positions: number[] = [];
      const local: number[] = [];
      for (let k = 0; k < indices.length; k++) {
        const [p, j] = this.locate(indices[k]!);
        if (p === n) positions.push(k), local.push(j);
      }
      if (positions.length === 0) continue;
      const buffer = new Uint8Array(positions.length * bytes);
      const bad = new Set((await part.read(local, buffer)).map((f) => f.position));
      positions.forEach((k, m) => (bad.has(m) ? failures.push({ position: k }) : out.set(buffer.subarray(m * bytes, (m + 1) * bytes), k * bytes)));
    }
    return failures.sort((x, y) => x.position - y.position);
  }

  flushWarnings(): void {
    for (const p of this.parts) p.flushWarnings?.();
  }

  /** The parts belong to whoever opened them. */
  async close(): Promise<void> {}
}
