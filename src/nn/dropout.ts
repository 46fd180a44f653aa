// torch.nn.Dropout: zeroes each element with probability p and scales the rest by 1 / (1 − p)
// in training; the identity in eval. The mask comes from the module's seeded generator.
import * as F from '../functional.js';
import { defaultGenerator, type Generator } from '../random.js';
import type { Tensor } from '../tensor.js';
import { Module } from './module.js';

export class Dropout extends Module {
  constructor(readonly p = 0.5, readonly generator: Generator = defaultGenerator) {
    super();
    if (!(p >= 0 && p < 1)) throw new Error(`Dropout: p must be in [0, 1), got ${p}`);
  }

  override forward(x: Tensor): Tensor {
    return F.dropout(x, this.p, this.training, this.generator);
  }
}
