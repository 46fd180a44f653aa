// The DataLoader, as torch.utils.data.DataLoader: an async iterator of GPU batches with a seeded
// shuffle, batching and drop_last; a fixed epoch size drawn with repetition; labeled subsets of K
// images per class; and a cycling iterator for a second data set beside the main one (SESEMI's
// joint step). Host batches are read ahead (`prefetch`), in the decoding threads for folders, so
// the GPU never waits on decoding. Each batch is uploaded as uint8 (4 pixels per 32-bit word) and
// converted to float32 on the GPU, fused with the augmentation (kernels/augment.wgsl).
//
// Ownership: every Batch belongs to the code that received it. Call batch.dispose() when the step
// is done with it, or receive it inside scope(), which disposes it at the end.
import { tensor } from '../creation.js';
import { defaultGenerator, Generator } from '../random.js';
import { backend } from '../runtime.js';
import { Tensor } from '../tensor.js';
import { Augment, type AugmentOptions } from './augment.js';
import { sampleBytes, Subset, type Dataset } from './dataset.js';
import { DataError } from './errors.js';

export interface LoaderOptions {
  batchSize: number;
  /** Reshuffle at every epoch (Fisher–Yates from the generator). Default false. */
  shuffle?: boolean;
  /** Drop the last batch when it is not full. Default false. */
  dropLast?: boolean;
  /**
   * Samples per epoch when it is not the data set's length. Without replacement (default), every
   * image appears ⌊epochSize/length⌋ times and, when shuffled, the remainder is a fresh random
   * choice of images each epoch (RotNet's loader takes indices 0…epochSize−1 modulo the length,
   * which on a labelled set sorted by class never shows the last classes when epochSize is below
   * its length); unshuffled, it is the first images, in order. With replacement, each sample
   * is drawn uniformly at random (RandomSampler(replacement=True, num_samples=epochSize)).
   */
  epochSize?: number;
  replacement?: boolean;
  /**
   * Epoch orders draw from it, and it seeds the loader's own augmentation generator (one draw at
   * construction), so results do not depend on how far ahead batches are read. Default: the
   * global generator (manualSeed).
   */
  generator?: Generator;
  /** GPU augmentation fused with the upload; none (conversion to [0, 1] only) by default. */
  transform?: Augment | AugmentOptions;
  /** Host batches read ahead of the one in use. Default 2. */
  prefetch?: number;
}

/** A batch on the host: uint8 CHW samples back to back, padded to whole 32-bit words. */
export interface HostBatch {
  pixels: Uint8Array;
  count: number;
  labels: Int32Array;
  indices: Int32Array;
}

/** A batch on the GPU. It belongs to whoever received it: dispose() it (or let a scope do so). */
export interface Batch {
  /** (N, C, H, W) float32, in [0, 1] before normalisation. */
  images: Tensor;
  /** (N) int32 class labels (−1 for unlabeled data); with rotation 'all', each repeated 4 times. */
  labels: Tensor;
  /** (N) int32 rotation labels 0…3 when the transform rotates; null otherwise. */
  rotationLabels: Tensor | null;
  /** The labels on the host. */
  hostLabels: Int32Array;
  /** Data set index of each of the N samples. */
  indices: Int32Array;
  /** N. */
  size: number;
  dispose(): void;
}

/** Fisher–Yates, from the last position down, j = generator.integer(i + 1). */
export function shuffleInPlace(a: Int32Array, g: Generator): Int32Array {
  for (let i = a.length - 1; i > 0; i--) {
    const j = g.integer(i + 1);
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
  }
  return a;
}

export class DataLoader implements AsyncIterable<Batch> {
  readonly batchSize: number;
  readonly transform: Augment;
  readonly generator: Generator;
  /** The transform's random choices; save its state with the generator's to resume exactly. */
  readonly augmentGenerator: Generator;
  /** Epochs started so far. */
  epoch = 0;
  private readonly options: LoaderOptions;
  private readonly prefetch: number;

  constructor(readonly dataset: Dataset, options: LoaderOptions) {
    const { batchSize, epochSize, prefetch = 2 } = options;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`DataLoader: batchSize must be a positive integer, got ${batchSize}`);
    if (epochSize !== undefined && !(Number.isInteger(epochSize) && epochSize >= 1)) throw new RangeError(`DataLoader: epochSize must be a positive integer, got ${epochSize}`);
    if (!Number.isInteger(prefetch) || prefetch < 1) throw new RangeError(`DataLoader: prefetch must be a positive integer, got ${prefetch}`);
    if (dataset.length === 0) throw new DataError('DataLoader: the data set is empty');
    this.options = options;
    this.batchSize = batchSize;
    this.prefetch = prefetch;
    this.generator = options.generator ?? defaultGenerator;
    this.augmentGenerator = new Generator(this.generator.nextUint32());
    this.transform = options.transform instanceof Augment ? options.transform : new Augment(options.transform ?? {});
    this.transform.layout(dataset.channels, dataset.imageSize, dataset.imageSize);
  }

  /** Samples per epoch. */
  get epochSize(): number {
    return this.options.epochSize ?? this.dataset.length;
  }

  /** Batches per epoch (torch's len(loader)). */
  get length(): number {
    return this.options.dropLast ? Math.floor(this.epochSize / this.batchSize) : Math.ceil(this.epochSize / this.batchSize);
  }

  /** The data set indices of the next epoch, in order; draws from the generator. */
  epochOrder(): Int32Array {
    const n = this.dataset.length;
    const size = this.epochSize;
    if (this.options.replacement) return Int32Array.from({ length: size }, () => this.generator.integer(n));
    const order = Int32Array.from({ length: size }, (_, k) => k % n);
    if (!this.options.shuffle) return order;
    const whole = size - (size % n);
    if (whole < size) order.set(shuffleInPlace(Int32Array.from({ length: n }, (_, i) => i), this.generator).subarray(0, size - whole), whole);
    return shuffleInPlace(order, this.generator);
  }

  /** One epoch of batches on the GPU. */
  [Symbol.asyncIterator](): AsyncGenerator<Batch> {
    return this.uploadAll(this.hostBatches(false));
  }

  /** Epoch after epoch without end (the labeled side of a joint step). */
  cycle(): AsyncGenerator<Batch> {
    return this.uploadAll(this.hostBatches(true));
  }

  /** The host side alone: one epoch (or endless) of uint8 batches, read `prefetch` ahead. */
  async *hostBatches(endless = false): AsyncGenerator<HostBatch> {
    const self = this;
    function* plans(): IterableIterator<Int32Array> {
      do {
        const order = self.epochOrder();
        self.epoch += 1;
        for (let at = 0; at < order.length; at += self.batchSize) {
          const indices = order.subarray(at, Math.min(at + self.batchSize, order.length));
          if (indices.length < self.batchSize && self.options.dropLast) break;
          yield indices;
        }
        if (endless) yield new Int32Array(0);
      } while (endless);
    }
    const queue: Promise<HostBatch>[] = [];
    const source = plans();
    const fill = (): void => {
      while (queue.length < this.prefetch) {
        const next = source.next();
        if (next.done) return;
        const read = next.value.length === 0 ? Promise.resolve(epochMark) : this.readHost(next.value);
        // Failures surface where the batch is awaited; this stops unhandled-rejection noise.
        read.catch(() => undefined);
        queue.push(read);
      }
    };
    try {
      fill();
      while (queue.length > 0) {
        const batch = await queue.shift()!;
        fill();
        if (batch === epochMark) this.dataset.flushWarnings?.();
        else if (batch.count > 0) yield batch;
      }
    } finally {
      this.dataset.flushWarnings?.();
    }
  }

  /** Reads one batch into host memory, dropping samples that could not be read. */
  async readHost(indices: Int32Array): Promise<HostBatch> {
    const bytes = sampleBytes(this.dataset);
    const pixels = new Uint8Array(Math.ceil((indices.length * bytes) / 4) * 4);
    const failures = await this.dataset.read(indices, pixels);
    let labels = indices.map((i) => this.dataset.labels[i]!);
    let kept = Int32Array.from(indices);
    if (failures.length > 0) {
      const bad = new Set(failures.map((f) => f.position));
      let to = 0;
      for (let k = 0; k < indices.length; k++) {
        if (bad.has(k)) continue;
        if (to !== k) pixels.copyWithin(to * bytes, k * bytes, (k + 1) * bytes);
        labels[to] = labels[k]!;
        kept[to] = kept[k]!;
        to += 1;
      }
      labels = labels.slice(0, to);
      kept = kept.slice(0, to);
    }
    return { pixels, count: kept.length, labels, indices: kept };
  }

  /** Uploads a host batch and runs the transform: the GPU side of every batch. */
  upload(host: HostBatch): Batch {
    const { channels, imageSize } = this.dataset;
    const copies = this.transform.copies;
    // The label tensor is written first: every write submits the work encoded before it, and
    // the conversion should go out with the training step that follows.
    const hostLabels = copies === 1 ? host.labels : repeatEach(host.labels, copies);
    const indices = copies === 1 ? host.indices : repeatEach(host.indices, copies);
    const labels = tensor(hostLabels, [hostLabels.length], { dtype: 'int32' });
    const words = Tensor.empty([Math.max(1, Math.ceil((host.count * sampleBytes(this.dataset)) / 4))], 'int32');
    backend().write(words.view, host.pixels.subarray(0, words.size * 4));
    const result = this.transform.applyPacked(words, host.count, channels, imageSize, this.augmentGenerator);
    words.dispose();
    const { images, rotationLabels } = result;
    return {
      images,
      labels,
      rotationLabels,
      hostLabels,
      indices,
      size: hostLabels.length,
      dispose() {
        images.dispose();
        labels.dispose();
        rotationLabels?.dispose();
      },
    };
  }

  private async *uploadAll(hosts: AsyncGenerator<HostBatch>): AsyncGenerator<Batch> {
    for await (const host of hosts) yield this.upload(host);
  }
}

/** [a, a, a, a, b, b, b, b, …] for copies = 4: the labels of a rotation batch's samples. */
function repeatEach(values: Int32Array, copies: number): Int32Array {
  const out = new Int32Array(values.length * copies);
  for (let i = 0; i < out.length; i++) out[i] = values[Math.floor(i / copies)]!;
  return out;
}

const epochMark: HostBatch = { pixels: new Uint8Array(0), count: 0, labels: new Int32Array(0), indices: new Int32Array(0) };

/**
 * Iterates one epoch of `main` with a batch of `beside` at every step, `beside` cycling through
 * its own epochs for as long as needed and carrying on across epochs of `main` (SESEMI's joint
 * step: unlabeled batches with labeled ones beside them).
 */
export class JointLoader implements AsyncIterable<{ main: Batch; beside: Batch }> {
  private cycling: AsyncGenerator<Batch> | null = null;

  constructor(readonly main: DataLoader, readonly beside: DataLoader) {}

  get length(): number {
    return this.main.length;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<{ main: Batch; beside: Batch }> {
    this.cycling ??= this.beside.cycle();
    for await (const main of this.main) {
      const next = await this.cycling.next();
      if (next.done) throw new Error('JointLoader: the cycling loader ended');
      yield { main, beside: next.value };
    }
  }

  /** Stops the cycling side's read-ahead. */
  async close(): Promise<void> {
    await this.cycling?.return(undefined);
    this.cycling = null;
  }
}

export interface SubsetOptions {
  /** 'first': the first K of each class in data set order (RotNet); 'random': K drawn per class. */
  mode?: 'first' | 'random';
  generator?: Generator;
}

/** The indices of each class's images, in data set order; a DataError for unlabeled data. */
export function indicesByClass(dataset: Dataset, where: string): number[][] {
  if (dataset.classes.length === 0) throw new DataError(`${where}: the data set has no labels`);
  const byClass: number[][] = dataset.classes.map(() => []);
  dataset.labels.forEach((label, i) => byClass[label]?.push(i));
  return byClass;
}

/** A labeled subset of K images per class, in data set order. */
export function labeledSubset(dataset: Dataset, perClass: number, options: SubsetOptions = {}): Subset {
  if (!Number.isInteger(perClass) || perClass < 1) throw new RangeError(`labeledSubset: perClass must be a positive integer, got ${perClass}`);
  const chosen: number[] = [];
  indicesByClass(dataset, 'labeledSubset').forEach((members, label) => {
    if (members.length < perClass) {
      throw new DataError(`class '${dataset.classes[label]}' has ${members.length} image(s), fewer than the ${perClass} per class asked for`);
    }
    if ((options.mode ?? 'first') === 'first') chosen.push(...members.slice(0, perClass));
    else chosen.push(...shuffleInPlace(Int32Array.from(members), options.generator ?? defaultGenerator).subarray(0, perClass));
  });
  return new Subset(dataset, chosen.sort((a, b) => a - b));
}
