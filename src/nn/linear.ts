// torch.nn.Linear: y = x·Wᵀ + b, weight (out_features, in_features).
import * as F from '../functional.js';
import type { Tensor } from '../tensor.js';
import { defaultBias, defaultWeight, type InitOptions } from './init.js';
import { Module } from './module.js';

export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(readonly inFeatures: number, readonly outFeatures: number, { bias = true, ...init }: { bias?: boolean } & InitOptions = {}) {
    super();
    const shape = [outFeatures, inFeatures];
    this.weight = this.registerParameter('weight', defaultWeight(shape, init))!;
    this.bias = this.registerParameter('bias', bias ? defaultBias(shape, outFeatures, init) : null);
  }

  override forward(x: Tensor): Tensor {
    if (x.shape[x.ndim - 1] !== this.inFeatures) {
      throw new Error(`Linear(${this.inFeatures}, ${this.outFeatures}): input [${x.shape.join(', ')}] does not end in ${this.inFeatures} features`);
    }
    return F.linear(x, this.weight, this.bias ?? undefined);
  }
}
