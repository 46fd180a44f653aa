// torch.nn.BatchNorm1d / BatchNorm2d. Training mode normalises with the batch's biased variance
// and updates running_mean / running_var (unbiased) with momentum in the same kernel; eval mode
// uses the running statistics. num_batches_tracked is counted on the GPU (no readback).
import * as F from '../functional.js';
import { tensor } from '../creation.js';
import { addCount } from '../ops/layout.js';
import type { Tensor } from '../tensor.js';
import { constant } from './init.js';
import { Module } from './module.js';

export interface BatchNormOptions {
  eps?: number;
  momentum?: number;
  affine?: boolean;
}

abstract class BatchNorm extends Module {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  readonly numBatchesTracked: Tensor;
  readonly eps: number;
  readonly momentum: number;

  constructor(readonly numFeatures: number, { eps = 1e-5, momentum = 0.1, affine = true }: BatchNormOptions = {}) {
    super();
    this.eps = eps;
    this.momentum = momentum;
    this.weight = this.registerParameter('weight', affine ? constant([numFeatures], 1) : null);
    this.bias = this.registerParameter('bias', affine ? constant([numFeatures], 0) : null);
    this.runningMean = this.registerBuffer('running_mean', constant([numFeatures], 0));
    this.runningVar = this.registerBuffer('running_var', constant([numFeatures], 1));
    this.numBatchesTracked = this.registerBuffer('num_batches_tracked', tensor(new Int32Array(1), []));
  }

  protected abstract checkInput(x: Tensor): void;

  override forward(x: Tensor): Tensor {
    this.checkInput(x);
    if (this.training) addCount(this.numBatchesTracked, 1);
    return F.batchNorm(x, this.runningMean, this.runningVar, this.weight ?? undefined, this.bias ?? undefined, {
      training: this.training,
      momentum: this.momentum,
      eps: this.eps,
    });
  }
}

export class BatchNorm2d extends BatchNorm {
  protected checkInput(x: Tensor): void {
    if (x.ndim !== 4 || x.shape[1] !== this.numFeatures) {
      throw new Error(`BatchNorm2d(${this.numFeatures}): expected (N, ${this.numFeatures}, H, W), got [${x.shape.join(', ')}]`);
    }
  }
}

export class BatchNorm1d extends BatchNorm {
  protected checkInput(x: Tensor): void {
    if ((x.ndim !== 2 && x.ndim !== 3) || x.shape[1] !== this.numFeatures) {
      throw new Error(`BatchNorm1d(${this.numFeatures}): expected (N, ${this.numFeatures}) or (N, ${this.numFeatures}, L), got [${x.shape.join(', ')}]`);
    }
  }
}
