// Running sums of per-step scalars (losses, accuracies) kept on the GPU, so a training loop
// reads back one number per report instead of one per step. A NaN or infinity in any step
// survives into the sum, so checking the mean at report time catches every bad step.
import { noGrad } from '../autograd/tape.js';
import * as F from '../functional.js';
import { checkLabels } from '../ops/losses.js';
import type { Tensor } from '../tensor.js';

export class Meter {
  private sum: Tensor | null = null;
  private count = 0;

  /** Adds a one-element tensor that is the mean of `weight` items (its sum is value · weight). */
  add(value: Tensor, weight = 1): void {
    noGrad(() => {
      const scalar = value.reshape([]);
      const weighted = weight === 1 ? scalar : F.mul(scalar, weight);
      const next = this.sum ? F.add(this.sum, weighted) : F.copy(weighted);
      if (weighted !== scalar) weighted.dispose();
      scalar.dispose();
      this.sum?.dispose();
      this.sum = next.keep();
    });
    this.count += weight;
  }

  get items(): number {
    return this.count;
  }

  /** The mean since the last reset (NaN when empty); one readback. Throws LabelError for bad labels since the last one. */
  async mean(): Promise<number> {
    await checkLabels();
    if (!this.sum || this.count === 0) return Number.NaN;
    return (await this.sum.item()) / this.count;
  }

  reset(): void {
    this.sum?.dispose();
    this.sum = null;
    this.count = 0;
  }
}
