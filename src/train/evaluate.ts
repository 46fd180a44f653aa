// Accuracy of a classifier over a loader, as the RotNet and SESEMI evaluations report it: mean
// cross-entropy, top-1 and (with more than five classes) top-5, in eval mode without gradients,
// read back once at the end.
import { noGrad } from '../autograd/tape.js';
import type { Batch, DataLoader } from '../data/loader.js';
import * as F from '../functional.js';
import { scope } from '../scope.js';
import type { Tensor } from '../tensor.js';
import { Meter } from './meter.js';

export interface Accuracy {
  loss: number;
  top1: number;
  /** Present when there are more than five classes. */
  top5?: number;
  count: number;
}

/**
 * Runs `logits` on every batch of the loader (one epoch) and scores it against `target(batch)`
 * (the class labels, or the rotation labels). The caller puts its modules in eval mode.
 */
export async function evaluate(loader: DataLoader, logits: (images: Tensor) => Tensor, target: (b: Batch) => Tensor = (b) => b.labels): Promise<Accuracy> {
  const meters = { loss: new Meter(), top1: new Meter(), top5: new Meter() };
  let classes = 0;
  for await (const batch of loader) {
    noGrad(() =>
      scope(() => {
        const out = logits(batch.images);
        const labels = target(batch);
        classes = out.shape[1]!;
        meters.loss.add(F.crossEntropy(out, labels), batch.size);
        meters.top1.add(F.topkAccuracy(out, labels, 1), batch.size);
        if (classes > 5) meters.top5.add(F.topkAccuracy(out, labels, 5), batch.size);
      }),
    );
    batch.dispose();
  }
  const result: Accuracy = { loss: await meters.loss.mean(), top1: await meters.top1.mean(), count: meters.top1.items };
  if (classes > 5) result.top5 = await meters.top5.mean();
  for (const m of Object.values(meters)) m.reset();
  return result;
}

/** Class probabilities (softmax) of every image of one epoch of the loader, in loader order, on the host. */
export async function predict(loader: DataLoader, logits: (images: Tensor) => Tensor): Promise<{ probs: Float32Array; classes: number; indices: Int32Array }> {
  const parts: Float32Array[] = [];
  const indices: number[] = [];
  let classes = 0;
  for await (const batch of loader) {
    const probs = noGrad(() => scope(() => F.softmax(logits(batch.images), 1).keep()));
    classes = probs.shape[1]!;
    parts.push(await probs.toArray() as Float32Array);
    probs.dispose();
    indices.push(...batch.indices);
    batch.dispose();
  }
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return { probs: out, classes, indices: Int32Array.from(indices) };
}
